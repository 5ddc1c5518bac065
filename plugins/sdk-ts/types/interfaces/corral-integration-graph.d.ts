declare module 'corral:integration/graph@0.2.0' {
  /**
   * Each item is one entity as a JSON object. Objects that break the data model or
   * the grant are rejected one by one; the rest of the batch is stored.
   */
  export function emitEntities(entities: Array<string>): EmitReport;
  /**
   * Each item is one relationship as a JSON object.
   */
  export function emitRelationships(relationships: Array<string>): EmitReport;
  /**
   * An entity this run has emitted, by `_key`.
   */
  export function findEntity(key: string): string | undefined;
  /**
   * Whether any object (entity or relationship) of this run already has this `_key`.
   */
  export function hasKey(key: string): boolean;
  /**
   * Pages through the entities of one `_type` this run has emitted.
   */
  export function listEntities(entityType: string, cursor: number, limit: number): EntityPage;
  /**
   * An object (entity or relationship) of this instance's graph as the previous run
   * left it, by `_key`: what a connector re-emits instead of fetching it again.
   * `graph:Read` of its `_type` applies; `none` when there is no such object (on a
   * first run the previous graph is empty). `denied` once a run of the instance
   * emitted a secret value: the graph it left is not read back.
   */
  export function previousObject(key: string): string | undefined;
  /**
   * Pages through the previous graph's objects (entities or relationships) of one
   * `_type`, in key order; `graph:Read` of the type applies.
   */
  export function listPrevious(typeName: string, cursor: number, limit: number): EntityPage;
  /**
   * Why one object of a batch was not stored.
   */
  export interface Rejection {
    index: number,
    key: string,
    reason: string,
  }
  export interface EmitReport {
    accepted: number,
    rejected: Array<Rejection>,
  }
  export type GraphError = GraphErrorDenied | GraphErrorLimit | GraphErrorInvalid;
  export interface GraphErrorDenied {
    tag: 'denied',
    val: string,
  }
  export interface GraphErrorLimit {
    tag: 'limit',
    val: string,
  }
  export interface GraphErrorInvalid {
    tag: 'invalid',
    val: string,
  }
  export interface EntityPage {
    /**
     * Entities as JSON objects, in emission order.
     */
    entities: Array<string>,
    /**
     * Cursor for the next page, if there is one.
     */
    next?: number,
  }
}
