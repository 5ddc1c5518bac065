declare module 'corral:integration/kv@0.2.0' {
  export function get(key: string): Uint8Array | undefined;
  /**
   * Replaces any value under `key`.
   */
  export function set(key: string, value: Uint8Array): void;
  /**
   * Whether there was a value to delete.
   */
  export { _delete as delete };
  function _delete(key: string): boolean;
  export type KvError = KvErrorLimit | KvErrorInvalid;
  /**
   * A bound was reached; the text names it.
   */
  export interface KvErrorLimit {
    tag: 'limit',
    val: string,
  }
  /**
   * The key is empty or not text the host accepts.
   */
  export interface KvErrorInvalid {
    tag: 'invalid',
    val: string,
  }
}
