// `corral:integration/kv` in a native test.
import { hostError, state } from '../state.js';

export const get = (key: string): Uint8Array | undefined => state.kv.get(key);

export function set(key: string, value: Uint8Array): void {
  if (key === '') throw hostError({ tag: 'invalid', val: 'empty key' });
  state.kv.set(key, value);
}

export const delete_ = (key: string): boolean => state.kv.delete(key);
export { delete_ as delete };
