// The data-model rules the host holds every emitted object to, checked where an object is
// built so a mistake is an error at its call site, not a rejection later in the run log.
import { CLASSES } from './classes.js';
import { DataModelError } from './errors.js';

export const MIN_KEY_CHARS = 10;
export const MAX_KEY_BYTES = 4096;
export const MAX_STRING_CHARS = 4096;
const MAX_TYPE_CHARS = 128;
const MAX_CLASSES = 8;

/** A graph object ready to emit: a flat JSON object. */
export type GraphObject = Record<string, unknown>;

const encoder = new TextEncoder();

/** Why the host would refuse `key` as a `_key`, or `undefined`. */
export function keyProblem(key: unknown): string | undefined {
  if (typeof key !== 'string') return '_key must be a string';
  if ([...key].length < MIN_KEY_CHARS) return `_key ${JSON.stringify(key)} is shorter than ${MIN_KEY_CHARS} characters`;
  if (encoder.encode(key).length > MAX_KEY_BYTES) return `_key is longer than ${MAX_KEY_BYTES} bytes`;
  return undefined;
}

/** Why the host would refuse `type` as a `_type` (it names output files), or `undefined`. */
export function typeProblem(type: unknown): string | undefined {
  if (typeof type !== 'string') return '_type must be a string';
  if (!/^[a-z0-9][a-z0-9_]*$/.test(type) || type.length > MAX_TYPE_CHARS) {
    return `_type ${JSON.stringify(type)} must be 1-${MAX_TYPE_CHARS} of a-z, 0-9, '_', starting with a letter or digit`;
  }
  return undefined;
}

/** Whether `cls` is one of the data model's entity classes. */
export const knownClass = (cls: string): boolean => Object.prototype.hasOwnProperty.call(CLASSES, cls);

/** The header checks of an entity: key, type and known classes. Throws `DataModelError`. */
export function checkEntityHeader(key: unknown, type: unknown, classes: string[]): void {
  const where = typeof key === 'string' ? ` (entity ${JSON.stringify(key)})` : '';
  const problem =
    keyProblem(key) ??
    typeProblem(type) ??
    (classes.length === 0 || classes.length > MAX_CLASSES ? `_class must name 1-${MAX_CLASSES} classes` : undefined) ??
    classes
      .filter((c) => !knownClass(c))
      .map((c) => `_class ${JSON.stringify(c)} is not a known data-model class`)[0];
  if (problem) throw new DataModelError(problem + where);
}

/** The properties `cls` requires that `obj` lacks (JupiterOne's schema check). */
export function missingRequired(obj: GraphObject, cls: string): string[] {
  return (CLASSES[cls] ?? []).filter((p) => !(p in obj));
}

function kind(v: unknown): string | undefined {
  if (typeof v === 'string' || typeof v === 'boolean') return typeof v;
  if (typeof v === 'number') return Number.isFinite(v) ? 'number' : undefined;
  return undefined;
}

const tooLong = (s: string): boolean => s.length > MAX_STRING_CHARS && [...s].length > MAX_STRING_CHARS;

function arrayShapeProblem(items: unknown[]): string | undefined {
  let first: string | undefined;
  for (const item of items) {
    const k = kind(item);
    if (k === undefined) return 'an array holding null or a nested value';
    first ??= k;
    if (first !== k) return 'an array mixing types';
  }
  return undefined;
}

/** Why the host would refuse `value` as any property's value, or `undefined`. */
export function valueProblem(value: unknown): string | undefined {
  if (value === null || typeof value === 'boolean') return undefined;
  if (typeof value === 'string') return tooLong(value) ? 'a string longer than 4096 characters' : undefined;
  if (typeof value === 'number') return Number.isFinite(value) ? undefined : 'a number JSON cannot hold';
  if (Array.isArray(value)) {
    return (
      arrayShapeProblem(value) ??
      (value.some((i) => typeof i === 'string' && tooLong(i))
        ? 'an array holding a string longer than 4096 characters'
        : undefined)
    );
  }
  if (value === undefined) return 'undefined (leave the property out instead)';
  return 'a nested object';
}

/** Why the host would refuse an object holding property `name` with `value`: the value
 * rules, and a `…On` property must be a time in epoch milliseconds (an integer). */
export function propertyProblem(name: string, value: unknown): string | undefined {
  const problem = valueProblem(value);
  if (problem) return problem;
  if (name.endsWith('On') && !(value === null || Number.isSafeInteger(value))) {
    return 'a time property (`…On`) that is not epoch milliseconds';
  }
  return undefined;
}

/** Whether `v` has a property's shape: a primitive, `null`, or a flat array of one
 * primitive type. */
export function hasPropertyShape(v: unknown): boolean {
  if (v === null || kind(v) !== undefined) return true;
  return Array.isArray(v) && arrayShapeProblem(v) === undefined;
}
