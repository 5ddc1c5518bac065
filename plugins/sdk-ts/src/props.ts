// Reading provider JSON into data-model properties.
import { MAX_STRING_CHARS, hasPropertyShape } from './datamodel.js';
import { trim } from './text.js';

type Json = unknown;

/** The value if it has a property's shape (`null` included): a primitive, or a flat array
 * of one primitive type; objects and mixed or nested arrays give `undefined` (they stay
 * in `_rawData`). */
export function allowed(v: Json): Json | undefined {
  return v !== undefined && hasPropertyShape(v) ? v : undefined;
}

/** `v[field]` if it has a property's shape and is not `null`. */
export function plain(v: Json, field: string): Json | undefined {
  const x = at(v, field);
  return x === null ? undefined : allowed(x);
}

/** `list[].field` as one flat array: the items whose `field` is a string, number or
 * boolean, in order. `undefined` when `list` is not an array or the values mix types. */
export function pluck(list: Json, field: string): Json[] | undefined {
  if (!Array.isArray(list)) return undefined;
  const values = list
    .map((i) => at(i, field))
    .filter((v) => typeof v === 'string' || typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v)));
  return hasPropertyShape(values) ? values : undefined;
}

/** A string a person can read as a name: not empty, not only whitespace, at most 4096
 * characters, kept as the provider wrote it. */
export function readable(v: Json): string | undefined {
  return typeof v === 'string' && readableText(v) ? v : undefined;
}

export function readableText(s: string): boolean {
  return trim(s) !== '' && !(s.length > MAX_STRING_CHARS && [...s].length > MAX_STRING_CHARS);
}

/** The first `readable` value of `fields` in `v`, in order (a name fallback chain). */
export function firstReadable(v: Json, fields: string[]): string | undefined {
  for (const f of fields) {
    const r = readable(at(v, f));
    if (r !== undefined) return r;
  }
  return undefined;
}

/** `v.a.b.c` for a path of fields; `undefined` where an object is missing. */
export function at(v: Json, ...path: string[]): Json | undefined {
  let cur: Json = v;
  for (const p of path) {
    if (cur === null || typeof cur !== 'object' || Array.isArray(cur)) return undefined;
    if (!Object.prototype.hasOwnProperty.call(cur, p)) return undefined;
    cur = (cur as Record<string, Json>)[p];
  }
  return cur;
}
