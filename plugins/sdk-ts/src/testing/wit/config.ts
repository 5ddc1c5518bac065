// `corral:integration/config` in a native test.
import { hostError, state } from '../state.js';

export function get(name: string): string | undefined {
  if (state.secrets.has(name)) throw hostError({ tag: 'secret', val: name });
  return state.config.get(name);
}
export const hasSecret = (name: string): boolean => state.secrets.has(name);
export const instanceId = (): string => state.instance[0];
export const instanceName = (): string => state.instance[1];
