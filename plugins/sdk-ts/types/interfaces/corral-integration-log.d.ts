declare module 'corral:integration/log@0.2.0' {
  /**
   * Rate-limited and size-capped by the host.
   */
  export function log(level: Level, message: string, fields: Array<[string, FieldValue]>): void;
  /**
   * # Variants
   * 
   * ## `"trace"`
   * 
   * ## `"debug"`
   * 
   * ## `"info"`
   * 
   * ## `"warn"`
   * 
   * ## `"error"`
   */
  export type Level = 'trace' | 'debug' | 'info' | 'warn' | 'error';
  /**
   * A field's value, kept with its type in the run log.
   */
  export type FieldValue = FieldValueText | FieldValueInteger | FieldValueFloat | FieldValueBoolean;
  export interface FieldValueText {
    tag: 'text',
    val: string,
  }
  export interface FieldValueInteger {
    tag: 'integer',
    val: bigint,
  }
  /**
   * Not a number and the infinities are logged as text.
   */
  export interface FieldValueFloat {
    tag: 'float',
    val: number,
  }
  export interface FieldValueBoolean {
    tag: 'boolean',
    val: boolean,
  }
}
