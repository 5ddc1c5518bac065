// Builders for JupiterOne's entity and direct-relationship shapes, as its SDK makes them:
// `_class` an array, `_rawData` as `[{name: "default", rawData}]`, `displayName` falling
// back to `name`, a relationship's `_type` `<fromType>_<class>_<toType without the shared
// prefix>` and `_key` `<fromKey>|<class>|<toKey>`.
//
// The builders check the header (key, type, classes) and throw a `DataModelError` at the
// call site; a property the host would refuse the whole object for is left out with a
// warning naming the object and the property, so the record itself is still stored.
import { checkEntityHeader, keyProblem, propertyProblem, type GraphObject } from './datamodel.js';
import { DataModelError } from './errors.js';
import { logger } from './log.js';

export type { GraphObject };

/** What `createIntegrationEntity` takes, as in JupiterOne's SDK. */
export interface EntityInput {
  entityData: {
    /** The provider's object, kept as `_rawData` (unless empty). */
    source?: unknown;
    /** `_key`, `_type`, `_class` (a class or a list) and the properties. A property set
     * to `undefined` is left out. */
    assign: { _key: string; _type: string; _class: string | string[] } & Record<string, unknown>;
  };
}

/** An entity: header checked, properties held to the host's rules, `displayName` falling
 * back to `name`. Throws `DataModelError` for a bad key, type or class. */
export function createIntegrationEntity(input: EntityInput): GraphObject {
  const { source, assign } = input.entityData;
  const classes = Array.isArray(assign._class) ? [...assign._class] : [assign._class];
  checkEntityHeader(assign._key, assign._type, classes);
  const obj: GraphObject = {};
  for (const [k, v] of Object.entries(assign)) {
    if (v !== undefined) put(obj, k, v);
  }
  obj._class = classes;
  conform(obj);
  if (!truthy(obj.displayName) && truthy(obj.name)) obj.displayName = obj.name;
  if (!isEmpty(source)) obj._rawData = [{ name: 'default', rawData: source }];
  return obj;
}

/** One end of a direct relationship: an entity, or its key and type. */
export type End = GraphObject | { _key: string; _type: string };

export interface RelationshipInput {
  _class: string;
  from: End;
  to: End;
  /** Replaces the default `<fromKey>|<class>|<toKey>` key. */
  _key?: string;
  properties?: Record<string, unknown>;
}

/** A direct relationship between two entities of this run. */
export function createDirectRelationship(input: RelationshipInput): GraphObject {
  const cls = input._class;
  if (!/^[A-Z_]+$/.test(cls)) {
    throw new DataModelError(`relationship _class ${JSON.stringify(cls)} must be one upper-case verb such as HAS`);
  }
  const from = endOf(input.from, 'from');
  const to = endOf(input.to, 'to');
  const key = input._key ?? relationshipKey(cls, from.key, to.key);
  const problem = keyProblem(key);
  if (problem) throw new DataModelError(`${problem} (relationship ${from.key} ${cls} ${to.key})`);
  const obj: GraphObject = { displayName: cls };
  for (const [k, v] of Object.entries(input.properties ?? {})) {
    if (v !== undefined) put(obj, k, v);
  }
  // The header is the builder's, whatever the properties held.
  Object.assign(obj, {
    _key: key,
    _type: relationshipType(cls, from.type, to.type),
    _class: cls,
    _fromEntityKey: from.key,
    _toEntityKey: to.key,
  });
  conform(obj);
  return obj;
}

/** Sets an own property, whatever its name: a provider's `"__proto__"` key (spread into
 * `assign`) is a property like any other, never the object's prototype. */
function put(obj: GraphObject, key: string, value: unknown): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}

function endOf(end: End, which: string): { key: string; type: string } {
  const key = end._key;
  const type = end._type;
  if (typeof key !== 'string' || key === '' || typeof type !== 'string' || type === '') {
    throw new DataModelError(`relationship's ${which} end needs a _key and a _type`);
  }
  return { key, type };
}

/** The `_type` JupiterOne gives a direct relationship: `kandji_account` HAS
 * `kandji_device` is `kandji_account_has_device`. */
export function relationshipType(cls: string, fromType: string, toType: string): string {
  const from = fromType.split('_');
  const to = toType.split('_');
  let shared = 0;
  while (shared + 1 < to.length && from[shared] === to[shared]) shared++;
  const rest = to.slice(shared).join('_');
  return `${fromType}_${cls.toLowerCase()}_${rest}`;
}

export const relationshipKey = (cls: string, fromKey: string, toKey: string): string =>
  `${fromKey}|${cls.toLowerCase()}|${toKey}`;

/** The provider's object an entity carries as `_rawData`, if any. */
export function rawData(obj: GraphObject): unknown {
  const raw = obj._rawData;
  return Array.isArray(raw) ? (raw[0] as { rawData?: unknown } | undefined)?.rawData : undefined;
}

/** Most warnings `conform` logs in one run; after them, one saying the rest are not. */
export const MAX_WARNINGS = 50;
let warned = 0;

/** A property `conform` changed, and why. */
export interface LeftOut {
  property: string;
  reason: string;
  /** `"_key"` when a `name` was replaced by the key; else the property was left out. */
  replacedBy?: '_key';
}

/** Holds `obj`'s properties (not the underscored ones) to the host's rules, which refuse
 * the whole object for one bad property: a bad property is left out (a `name` is replaced
 * by the `_key`, which the host requires), with a warning; never cut or cleaned, which
 * would read as the provider's whole value. */
export function conform(obj: GraphObject): LeftOut[] {
  const changes: LeftOut[] = [];
  const key = typeof obj._key === 'string' ? obj._key : '';
  for (const [property, value] of Object.entries(obj)) {
    if (property.startsWith('_')) continue;
    const reason = propertyProblem(property, value);
    if (reason === undefined) continue;
    if (property === 'name' && key !== '') {
      obj.name = key;
      changes.push({ property, reason, replacedBy: '_key' });
    } else {
      delete obj[property];
      changes.push({ property, reason });
    }
    warn(key, property, reason, property === 'name' && key !== '');
  }
  return changes;
}

function warn(key: string, property: string, reason: string, replaced: boolean): void {
  warned++;
  if (warned > MAX_WARNINGS + 1) return;
  if (warned === MAX_WARNINGS + 1) {
    logger.warn('further properties left out for the host\'s rules are not logged', { logged: MAX_WARNINGS });
    return;
  }
  const message = replaced
    ? 'name replaced by the key: the host would reject the record for it'
    : 'property left out: the host would reject the record for it';
  logger.warn(message, { key, property, reason });
}

function truthy(v: unknown): boolean {
  return !(v === undefined || v === null || v === false || v === '' || v === 0);
}

function isEmpty(v: unknown): boolean {
  if (v === undefined || v === null) return true;
  return typeof v === 'object' && !Array.isArray(v) && Object.keys(v as object).length === 0;
}
