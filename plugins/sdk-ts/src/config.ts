// The instance's config: plain fields by value, secret fields only by name.
import * as host from 'corral:integration/config@0.2.0';
import { ConfigError } from './errors.js';
import { asciiLower, trim } from './text.js';

/** A plain config field's value (`undefined` when unset). A secret field is a `ConfigError`:
 * its value never reaches the plugin; name it in a request's `auth` instead. */
export function get(name: string): string | undefined {
  try {
    return host.get(name);
  } catch {
    throw new ConfigError(`${name} is a secret: it can only be sent by reference`);
  }
}

/** A plain field that must be set and not blank. */
export function required(name: string): string {
  const v = get(name);
  if (v === undefined || trim(v) === '') {
    throw new ConfigError(`config field ${name} is required`);
  }
  return v;
}

/** Whether a flag field reads `"true"` (the host hands every field over as text). */
export function isOn(name: string): boolean {
  const v = get(name);
  return v !== undefined && asciiLower(trim(v)) === 'true';
}

/** Whether a secret field has a value, without revealing it. */
export const hasSecret = (name: string): boolean => host.hasSecret(name);
export const instanceId = (): string => host.instanceId();
export const instanceName = (): string => host.instanceName();
