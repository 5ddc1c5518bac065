declare module 'corral:integration/config@0.2.0' {
  /**
   * A non-secret config field of this instance, if set.
   */
  export function get(name: string): string | undefined;
  /**
   * Whether a secret field has a value, without revealing it.
   */
  export function hasSecret(name: string): boolean;
  export function instanceId(): string;
  export function instanceName(): string;
  export type ConfigError = ConfigErrorSecret;
  /**
   * The field is a secret: its value is only usable by reference in `http`.
   */
  export interface ConfigErrorSecret {
    tag: 'secret',
    val: string,
  }
}
