// A connector as the host sees it (the WIT `connector` export), declared the way a
// JupiterOne integration is: config fields, steps with `dependsOn`, each step an
// `executionHandler` given a `jobState`.
import type * as wit from 'corral:integration/connector@0.2.0';
import { Capabilities } from './capabilities.js';
import { ConfigError, toStepError } from './errors.js';
import { JobState } from './graph.js';
import { logger } from './log.js';

export interface ConfigField {
  name: string;
  description: string;
  /** A credential: never handed to the plugin, only named in requests. */
  secret?: boolean;
  optional?: boolean;
  /** Used when the instance does not set the field (plain fields only). */
  default?: string;
}

export interface StepEntity {
  resourceName: string;
  _type: string;
  _class: string;
}

export interface StepRelationship {
  _type: string;
  _class: string;
  sourceType: string;
  targetType: string;
  /** A mapped relationship (to entities another integration owns). */
  mapped?: boolean;
}

/** What a step's handler is given. */
export interface StepContext {
  jobState: JobState;
  logger: typeof logger;
}

export interface Step {
  id: string;
  name: string;
  entities: StepEntity[];
  relationships: StepRelationship[];
  dependsOn?: string[];
  executionHandler: (context: StepContext) => void;
}

export interface ConnectorDefinition {
  /** The plugin id operators name in `corral.toml`. */
  id: string;
  name: string;
  version: string;
  description: string;
  config: ConfigField[];
  capabilities: Capabilities;
  steps: Step[];
  /** Checks config and credentials, usually with one cheap authenticated request. */
  validate?: (context: StepContext) => void;
  /** Steps to skip for this config (say, ones that need an optional credential). */
  disabledSteps?: () => string[];
}

/** The WIT `connector` export. */
export interface ConnectorExport {
  manifest(): wit.PluginManifest;
  validate(): void;
  disabledSteps(): string[];
  runStep(stepId: string): void;
}

/** The `connector` export a component needs:
 * `export const connector = defineConnector({...})`. */
export function defineConnector(def: ConnectorDefinition): ConnectorExport {
  return {
    manifest: () => manifestOf(def),
    validate: () => run(def.validate ?? (() => {})),
    disabledSteps: () => def.disabledSteps?.() ?? [],
    runStep: (stepId: string) => {
      const step = def.steps.find((s) => s.id === stepId);
      run(
        step?.executionHandler ??
          (() => {
            throw new ConfigError(`unknown step ${stepId}`);
          }),
      );
    },
  };
}

/** Runs a handler with a fresh `jobState` and sends what it left buffered, also when it
 * failed (what a step emitted before its error is kept, as in the Rust SDK); the error
 * leaves as the `step-error` the host records (componentize-js lifts a thrown `payload`).
 * A failed send is the step's error only when the handler itself succeeded. */
function run(handler: (context: StepContext) => void): void {
  const jobState = new JobState();
  let failure: unknown;
  let failed = false;
  try {
    handler({ jobState, logger });
  } catch (e) {
    [failure, failed] = [e, true];
  }
  try {
    jobState.flush();
  } catch (e) {
    if (!failed) [failure, failed] = [e, true];
  }
  if (failed) {
    const err = new Error(failure instanceof Error ? failure.message : String(failure));
    (err as Error & { payload: wit.StepError }).payload = toStepError(failure);
    throw err;
  }
}

export function manifestOf(def: ConnectorDefinition): wit.PluginManifest {
  return {
    id: def.id,
    version: def.version,
    name: def.name,
    description: def.description,
    configFields: def.config.map((f) => ({
      name: f.name,
      secret: f.secret ?? false,
      optional: f.optional ?? false,
      description: f.description,
      defaultValue: f.default,
    })),
    steps: def.steps.map((s) => ({
      id: s.id,
      name: s.name,
      entities: s.entities.map((e) => ({ resourceName: e.resourceName, typeName: e._type, className: e._class })),
      relationships: s.relationships.map((r) => ({
        typeName: r._type,
        className: r._class,
        sourceType: r.sourceType,
        targetType: r.targetType,
        mapped: r.mapped ?? false,
      })),
      dependsOn: s.dependsOn ?? [],
    })),
    capabilities: JSON.stringify(def.capabilities),
  };
}
