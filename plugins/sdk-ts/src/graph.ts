// The run's graph through the host: a `jobState` that emits in batches, and reads of this
// run's entities and of the previous run's graph.
import * as host from 'corral:integration/graph@0.2.0';
import type { EmitReport, EntityPage, GraphError, Rejection } from 'corral:integration/graph@0.2.0';
import type { GraphObject } from './datamodel.js';
import { IntegrationError } from './errors.js';

export type { Rejection };

/** Objects sent to the host in one call, at most. */
const BATCH = 500;
/** Characters of JSON (UTF-16 units: at most three UTF-8 bytes each) sent in one call, at
 * most; a few large objects fill a batch sooner. */
const BATCH_BYTES = 4 << 20;

/** The host refused a whole batch (denied type, a run limit, or bad input). */
export class GraphFailure extends IntegrationError {
  constructor(readonly error: GraphError) {
    super(`graph ${error.tag}: ${error.val}`, 'other');
  }
}

function graphError(e: unknown): GraphFailure {
  const payload = (e as { payload?: GraphError } | null)?.payload;
  if (payload && typeof payload === 'object' && 'tag' in payload) return new GraphFailure(payload);
  return new GraphFailure({ tag: 'invalid', val: String(e) });
}

function call<T>(f: () => T): T {
  try {
    return f();
  } catch (e) {
    throw graphError(e);
  }
}

class Buffer {
  items: string[] = [];
  bytes = 0;

  push(json: string): boolean {
    this.items.push(json);
    this.bytes += json.length;
    return this.items.length >= BATCH || this.bytes >= BATCH_BYTES;
  }

  take(): string[] {
    const items = this.items;
    this.items = [];
    this.bytes = 0;
    return items;
  }
}

/** What a step emits and reads, as JupiterOne's `jobState`. Objects are buffered and sent
 * in batches; entities always before relationships, so a relationship finds its ends. The
 * step runner flushes what is left when the step returns. */
export class JobState {
  private entities = new Buffer();
  private relationships = new Buffer();
  /** Objects the host stored. */
  accepted = 0;
  /** Objects the host refused one by one (it logs each with its reason). */
  readonly rejected: Rejection[] = [];

  addEntity(entity: GraphObject): GraphObject {
    if (this.entities.push(JSON.stringify(entity))) this.flushEntities();
    return entity;
  }

  addEntities(entities: GraphObject[]): GraphObject[] {
    entities.forEach((e) => this.addEntity(e));
    return entities;
  }

  addRelationship(relationship: GraphObject): GraphObject {
    if (this.relationships.push(JSON.stringify(relationship))) this.flushRelationships();
    return relationship;
  }

  addRelationships(relationships: GraphObject[]): GraphObject[] {
    relationships.forEach((r) => this.addRelationship(r));
    return relationships;
  }

  /** Sends everything buffered. */
  flush(): void {
    this.flushEntities();
    this.flushRelationships();
  }

  /** Whether any object of this run (sent or still buffered) has this `_key`. */
  hasKey(key: string): boolean {
    this.flush();
    return host.hasKey(key);
  }

  /** An entity this run emitted, by `_key`. */
  findEntity(key: string): GraphObject | undefined {
    this.flush();
    const json = call(() => host.findEntity(key));
    return json === undefined ? undefined : parse(json);
  }

  /** Calls `each` with every entity of `_type` this run emitted, in emission order. */
  iterateEntities(filter: { _type: string }, each: (entity: GraphObject) => void): void {
    this.flush();
    for (const e of pages(filter._type, host.listEntities)) each(e);
  }

  /** An object of the previous run's graph, by `_key` (`undefined` on a first run). */
  previousObject(key: string): GraphObject | undefined {
    const json = call(() => host.previousObject(key));
    return json === undefined ? undefined : parse(json);
  }

  /** The previous run's objects (entities or relationships) of one `_type`, in key order. */
  previousOfType(type: string): Iterable<GraphObject> {
    return pages(type, host.listPrevious);
  }

  private flushEntities(): void {
    const batch = this.entities.take();
    if (batch.length > 0) this.record(call(() => host.emitEntities(batch)));
  }

  private flushRelationships(): void {
    this.flushEntities();
    const batch = this.relationships.take();
    if (batch.length > 0) this.record(call(() => host.emitRelationships(batch)));
  }

  private record(report: EmitReport): void {
    this.accepted += report.accepted;
    this.rejected.push(...report.rejected);
  }
}

function parse(json: string): GraphObject {
  try {
    return JSON.parse(json) as GraphObject;
  } catch (e) {
    throw new IntegrationError(`graph: the host returned an object that is not JSON: ${String(e)}`);
  }
}

type PageFn = (type: string, cursor: number, limit: number) => EntityPage;

function* pages(type: string, fetch: PageFn): Generator<GraphObject> {
  for (let cursor: number | undefined = 0; cursor !== undefined; ) {
    const at: number = cursor;
    const page = call(() => fetch(type, at, BATCH));
    for (const json of page.entities) yield parse(json);
    cursor = page.next;
  }
}
