/// <reference path="../types/typescript-plugin.d.ts" />
/// <reference path="../types/runtime.d.ts" />
// corral's TypeScript SDK: write a connector as a JupiterOne integration is written, built
// into a sandboxed WebAssembly component with componentize-js.
export { Capabilities, type Limit } from './capabilities.js';
export { CLASSES, DATA_MODEL_VERSION } from './classes.js';
export * as config from './config.js';
export {
  defineConnector,
  manifestOf,
  type ConfigField,
  type ConnectorDefinition,
  type ConnectorExport,
  type Step,
  type StepContext,
} from './connector.js';
export * as datamodel from './datamodel.js';
export {
  createDirectRelationship,
  createIntegrationEntity,
  conform,
  rawData,
  relationshipKey,
  relationshipType,
  type End,
  type EntityInput,
  type GraphObject,
  type RelationshipInput,
} from './entity.js';
export {
  AuthenticationError,
  ConfigError,
  DataModelError,
  HttpFailure,
  IntegrationError,
  ProviderError,
} from './errors.js';
export { GraphFailure, JobState } from './graph.js';
export * as http from './http.js';
export * as kv from './kv.js';
export { logger } from './log.js';
export * as props from './props.js';
export * as standard from './standard.js';
export * as text from './text.js';
export { parseEpochMs } from './time.js';
