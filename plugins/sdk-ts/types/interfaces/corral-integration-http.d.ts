declare module 'corral:integration/http@0.2.0' {
  export function fetch(req: Request): Response;
  /**
   * Like `fetch` (same checks, redirects followed by the host), but hands back the
   * body to read as it streams.
   */
  export function fetchStreaming(req: Request): [ResponseHead, Body];
  /**
   * Runs the requests concurrently on the host (bounded by the policy's
   * `maxConcurrentRequests`); results come back in request order.
   */
  export function fetchBatch(reqs: Array<Request>): Array<Result<Response, HttpError>>;
  export interface BasicAuth {
    username: string,
    passwordSecret: string,
  }
  /**
   * Credentials by reference: the guest names a secret config field, the host
   * substitutes its value after the `secret:Use` check for this very request.
   */
  export type Auth = AuthNone | AuthBearer | AuthBasic;
  export interface AuthNone {
    tag: 'none',
  }
  /**
   * `Authorization: Bearer <value of the named secret>`
   */
  export interface AuthBearer {
    tag: 'bearer',
    val: string,
  }
  /**
   * HTTP basic auth with a literal user name and a secret password.
   */
  export interface AuthBasic {
    tag: 'basic',
    val: BasicAuth,
  }
  export interface Request {
    /**
     * `GET`, `POST`, ...
     */
    method: string,
    /**
     * Absolute `http://` or `https://` URL.
     */
    url: string,
    /**
     * Header values may hold `{{secret:NAME}}`, substituted by the host after
     * the policy check. The guest cannot read the value back.
     */
    headers: Array<[string, string]>,
    auth: Auth,
    body?: Uint8Array,
    /**
     * Per-request timeout; the host caps it by the run's deadline.
     */
    timeoutMs?: number,
  }
  export interface Response {
    status: number,
    headers: Array<[string, string]>,
    body: Uint8Array,
    /**
     * The URL that finally answered, after any redirects the host followed.
     */
    url: string,
  }
  export type HttpError = HttpErrorDenied | HttpErrorTimeout | HttpErrorConnect | HttpErrorTooLarge | HttpErrorRateLimited | HttpErrorInvalid;
  /**
   * The policy refused the request; the text names action, resource and rule.
   */
  export interface HttpErrorDenied {
    tag: 'denied',
    val: string,
  }
  export interface HttpErrorTimeout {
    tag: 'timeout',
    val: string,
  }
  export interface HttpErrorConnect {
    tag: 'connect',
    val: string,
  }
  /**
   * The response exceeded `maxResponseBytes` (the limit is given).
   */
  export interface HttpErrorTooLarge {
    tag: 'too-large',
    val: bigint,
  }
  /**
   * A host-side request limit (count, rate or concurrency) was hit.
   */
  export interface HttpErrorRateLimited {
    tag: 'rate-limited',
    val: string,
  }
  export interface HttpErrorInvalid {
    tag: 'invalid',
    val: string,
  }
  /**
   * Status, headers and final URL of a response whose body is read as it streams.
   */
  export interface ResponseHead {
    status: number,
    headers: Array<[string, string]>,
    url: string,
  }
  export type Result<T, E> = { tag: 'ok', val: T } | { tag: 'err', val: E };
  
  export class Body implements Disposable {
    /**
     * This type does not have a public constructor.
     */
    private constructor();
    /**
    * Up to `max` bytes (at least one unless the body has ended); an empty list
    * means the end.
    */
    read(max: number): Uint8Array;
    [Symbol.dispose](): void;
  }
}
