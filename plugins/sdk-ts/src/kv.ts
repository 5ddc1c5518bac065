// The run's key/value store: what one step leaves for a later one (empty when a run starts).
import * as host from 'corral:integration/kv@0.2.0';
import { IntegrationError } from './errors.js';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export const getBytes = (key: string): Uint8Array | undefined => host.get(key);

export function setBytes(key: string, value: Uint8Array): void {
  try {
    host.set(key, value);
  } catch (e) {
    const err = (e as { payload?: { val?: string } }).payload;
    throw new IntegrationError(`kv: ${key}: ${err?.val ?? String(e)}`);
  }
}

export const remove = (key: string): boolean => host.delete(key);

/** A value stored with `setJson`; `undefined` when there is none. */
export function getJson<T>(key: string): T | undefined {
  const bytes = host.get(key);
  if (bytes === undefined) return undefined;
  try {
    return JSON.parse(decoder.decode(bytes)) as T;
  } catch (e) {
    throw new IntegrationError(`kv: ${key} does not hold JSON: ${String(e)}`);
  }
}

export function setJson(key: string, value: unknown): void {
  setBytes(key, encoder.encode(JSON.stringify(value)));
}
