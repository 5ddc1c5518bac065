// `corral:integration/graph` in a native test: keys are checked for duplicates; the rest
// of the data-model rules are the host's (`corral plugin test` runs the real one).
import type { EmitReport, EntityPage } from 'corral:integration/graph@0.2.0';
import { hostError, state } from '../state.js';

function emit(objects: string[], relationship: boolean): EmitReport {
  const report: EmitReport = { accepted: 0, rejected: [] };
  objects.forEach((text, index) => {
    let o: unknown;
    try {
      o = JSON.parse(text);
    } catch {
      o = undefined;
    }
    if (o === null || typeof o !== 'object' || Array.isArray(o)) {
      report.rejected.push({ index, key: '', reason: 'not a JSON object' });
      return;
    }
    const obj = o as Record<string, unknown>;
    const key = typeof obj._key === 'string' ? obj._key : '';
    if (key === '') report.rejected.push({ index, key, reason: 'no _key' });
    else if (state.keys.has(key)) report.rejected.push({ index, key, reason: 'duplicate _key' });
    else {
      state.keys.add(key);
      state.emitted.push([relationship, obj]);
      report.accepted++;
    }
  });
  return report;
}

export const emitEntities = (objects: string[]): EmitReport => emit(objects, false);
export const emitRelationships = (objects: string[]): EmitReport => emit(objects, true);
export const hasKey = (key: string): boolean => state.keys.has(key);

export function findEntity(key: string): string | undefined {
  const found = state.emitted.find(([rel, o]) => !rel && o._key === key);
  return found ? JSON.stringify(found[1]) : undefined;
}

function page(objects: Array<Record<string, unknown>>, cursor: number, limit: number): EntityPage {
  if (limit === 0) throw hostError({ tag: 'invalid', val: 'limit must be at least 1' });
  const slice = objects.slice(cursor, cursor + limit);
  const next = cursor + slice.length < objects.length ? cursor + slice.length : undefined;
  return { entities: slice.map((o) => JSON.stringify(o)), next };
}

export const listEntities = (type: string, cursor: number, limit: number): EntityPage =>
  page(
    state.emitted.filter(([rel, o]) => !rel && o._type === type).map(([, o]) => o),
    cursor,
    limit,
  );

export function previousObject(key: string): string | undefined {
  const found = state.previous.find((o) => o._key === key);
  return found ? JSON.stringify(found) : undefined;
}

export const listPrevious = (type: string, cursor: number, limit: number): EntityPage =>
  page(
    state.previous.filter((o) => o._type === type).sort((a, b) => (String(a._key) < String(b._key) ? -1 : 1)),
    cursor,
    limit,
  );
