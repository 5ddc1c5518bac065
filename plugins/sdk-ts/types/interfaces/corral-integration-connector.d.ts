declare module 'corral:integration/connector@0.2.0' {
  /**
   * Must not reach out: the host calls it with nothing granted.
   */
  export function manifest(): PluginManifest;
  /**
   * Checks config and credentials (usually one cheap authenticated request).
   */
  export function validate(): void;
  /**
   * Steps to skip for this config (for example, ones that need an optional credential).
   */
  export function disabledSteps(): Array<string>;
  export function runStep(stepId: string): void;
  export interface ConfigField {
    name: string,
    secret: boolean,
    optional: boolean,
    description: string,
    /**
     * Used when the instance does not set the field (non-secret fields only).
     */
    defaultValue?: string,
  }
  export interface EntityType {
    resourceName: string,
    typeName: string,
    className: string,
  }
  export interface RelationshipType {
    typeName: string,
    className: string,
    sourceType: string,
    targetType: string,
    /**
     * A mapped relationship (to entities another integration owns).
     */
    mapped: boolean,
  }
  export interface Step {
    id: string,
    name: string,
    entities: Array<EntityType>,
    relationships: Array<RelationshipType>,
    dependsOn: Array<string>,
  }
  export interface PluginManifest {
    /**
     * Plugin id, as named in `corral.toml` (`plugin = "kandji"`).
     */
    id: string,
    version: string,
    name: string,
    description: string,
    configFields: Array<ConfigField>,
    steps: Array<Step>,
    /**
     * Requested capabilities: a policy document in corral's policy grammar (JSON).
     */
    capabilities: string,
  }
  export type StepError = StepErrorAuthentication | StepErrorConfig | StepErrorProvider | StepErrorOther;
  /**
   * Credentials were refused by the provider.
   */
  export interface StepErrorAuthentication {
    tag: 'authentication',
    val: string,
  }
  /**
   * The instance config is missing or malformed.
   */
  export interface StepErrorConfig {
    tag: 'config',
    val: string,
  }
  /**
   * The provider failed or answered garbage.
   */
  export interface StepErrorProvider {
    tag: 'provider',
    val: string,
  }
  export interface StepErrorOther {
    tag: 'other',
    val: string,
  }
}
