// Requests through the host: credentials by reference, retries that honour the
// provider's Retry-After, paging, many requests at once, bodies read as they stream.
import * as host from 'corral:integration/http@0.2.0';
import type { Auth, Body, HttpError, Request, Response } from 'corral:integration/http@0.2.0';
import { subscribeDuration } from 'wasi:clocks/monotonic-clock@0.2.0';
import { AuthenticationError, HttpFailure, ProviderError, describeHttpError, statusText } from './errors.js';
import { trim } from './text.js';

export type { Auth, Request, Response };

const decoder = new TextDecoder();
const encoder = new TextEncoder();

/** What a request may say besides its URL. */
export interface RequestOptions {
  method?: string;
  headers?: Record<string, string>;
  /** A bearer token: the name of a secret config field, never its value. */
  bearer?: string;
  /** HTTP basic auth: a literal user name and the name of a secret config field. */
  basic?: { username: string; passwordSecret: string };
  /** A JSON body (sent with `content-type: application/json`). */
  json?: unknown;
  body?: Uint8Array | string;
  timeoutMs?: number;
}

/** A request record as the host takes it. */
export function request(url: string, opts: RequestOptions = {}): Request {
  const headers = Object.entries(opts.headers ?? {});
  let body: Uint8Array | undefined;
  if (opts.json !== undefined) {
    body = encoder.encode(JSON.stringify(opts.json));
    if (!headers.some(([k]) => k.toLowerCase() === 'content-type')) {
      headers.push(['content-type', 'application/json']);
    }
  } else if (opts.body !== undefined) {
    body = typeof opts.body === 'string' ? encoder.encode(opts.body) : opts.body;
  }
  let auth: Auth = { tag: 'none' };
  if (opts.bearer !== undefined) auth = { tag: 'bearer', val: opts.bearer };
  if (opts.basic !== undefined) auth = { tag: 'basic', val: opts.basic };
  return { method: opts.method ?? 'GET', url, headers, auth, body, timeoutMs: opts.timeoutMs };
}

/** A response header's value (names are case-insensitive). */
export function header(r: { headers: Array<[string, string]> }, name: string): string | undefined {
  const lower = name.toLowerCase();
  return r.headers.find(([k]) => k.toLowerCase() === lower)?.[1];
}

export const text = (r: Response): string => decoder.decode(r.body);

/** Decodes UTF-8 strictly: invalid bytes and a byte-order mark are errors, as in Rust. */
const strictDecoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Text that may parse to a value JSON cannot hold: a `\\uD800`-`\\uDFFF` escape, an
 * exponent of three digits or more, or 300 digits in a row (past a double's range). */
const SUSPECT = /\\u[dD][89a-fA-F]|[eE][+-]?[0-9]{3}|[0-9]{300}/;

/** A parsed value JSON (and the Rust SDK) cannot hold: a number out of range
 * (`1e400`) or a string with an unpaired surrogate (`"\ud800"`). */
function strictValue(key: string, v: unknown): unknown {
  if (!wellFormed(key)) throw new Error('a key with an unpaired surrogate');
  if (typeof v === 'number' && !Number.isFinite(v)) throw new Error('a number out of range');
  if (typeof v === 'string' && !wellFormed(v)) throw new Error('a string with an unpaired surrogate');
  return v;
}

const wellFormed = (s: string): boolean =>
  typeof (s as { isWellFormed?: () => boolean }).isWellFormed === 'function'
    ? (s as unknown as { isWellFormed: () => boolean }).isWellFormed()
    : !/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(s);

/** The body as JSON, read as strictly as the Rust SDK reads it (so a connector's graph
 * does not depend on its language); garbage is a `ProviderError` naming the URL. */
export function json<T = unknown>(r: Response): T {
  try {
    const text = strictDecoder.decode(r.body);
    // Only an escaped surrogate or a long exponent can give what JSON may not hold (the
    // strict decoding rules out the rest): the value-by-value check runs only then.
    return (SUSPECT.test(text) ? JSON.parse(text, strictValue) : JSON.parse(text)) as T;
  } catch (e) {
    throw new ProviderError(`${r.url}: the provider answered something that is not JSON (${String(e)})`);
  }
}

/** The response if its status is 2xx, else a `ProviderError` in JupiterOne's shape. */
export function ok(r: Response): Response {
  if (r.status >= 200 && r.status < 300) return r;
  throw ProviderError.status(r.url, r.status);
}

/** When and how long to retry. */
export interface Retry {
  /** Attempts in all, the first included. */
  maxAttempts: number;
  /** Delay before the second attempt, in ms; doubled after each further one. */
  baseDelayMs: number;
  /** Cap on any one delay, Retry-After included, in ms. */
  maxDelayMs: number;
  /** Retry 5xx answers (429 is always retried). */
  retryServerErrors: boolean;
}

export const DEFAULT_RETRY: Readonly<Retry> = {
  maxAttempts: 10,
  baseDelayMs: 250,
  maxDelayMs: 30_000,
  retryServerErrors: true,
};

/** Never retry: for validation calls, where any failure is final. */
export const NO_RETRY: Readonly<Retry> = { ...DEFAULT_RETRY, maxAttempts: 1 };

type Outcome = { ok: true; response: Response } | { ok: false; error: HttpError };

/** Waits `ms` milliseconds on the host's clock (JavaScript has no blocking sleep). */
export function sleep(ms: number): void {
  if (!(ms > 0)) return;
  subscribeDuration(BigInt(Math.ceil(Math.min(ms, 3_600_000))) * 1_000_000n).block();
}

/** `Retry-After` in seconds, or Kandji-style `ratelimit-reset`: the least the provider
 * asks to wait, in ms. */
function retryAfterMs(r: Response): number | undefined {
  for (const name of ['retry-after', 'ratelimit-reset', 'x-ratelimit-reset']) {
    const v = header(r, name);
    if (v === undefined || !/^[+]?[0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?$/.test(trim(v))) continue;
    const secs = Number(trim(v));
    if (Number.isFinite(secs) && secs >= 0) return secs * 1000;
  }
  return undefined;
}

/** How long to wait before retrying this outcome, or `undefined` when it is final. The
 * provider's delay is a floor, never a reason to retry sooner than the backoff. */
function delayFor(retry: Retry, outcome: Outcome, attempt: number): number | undefined {
  if (attempt + 1 >= retry.maxAttempts) return undefined;
  const backoff = Math.min(retry.baseDelayMs * 2 ** Math.min(attempt, 16), retry.maxDelayMs);
  if (!outcome.ok) {
    return outcome.error.tag === 'timeout' || outcome.error.tag === 'connect' ? backoff : undefined;
  }
  const r = outcome.response;
  const retried = r.status === 429 || (r.status >= 500 && retry.retryServerErrors);
  if (!retried) return undefined;
  return Math.min(Math.max(retryAfterMs(r) ?? backoff, backoff), retry.maxDelayMs);
}

function attempt(req: Request): Outcome {
  try {
    return { ok: true, response: host.fetch(req) };
  } catch (e) {
    return { ok: false, error: hostError(e) };
  }
}

/** The `http-error` a host call failed with (componentize-js throws it as `payload`). */
function hostError(e: unknown): HttpError {
  const payload = (e as { payload?: HttpError } | null)?.payload;
  if (payload && typeof payload === 'object' && 'tag' in payload) return payload;
  return { tag: 'invalid', val: String(e) };
}

/** One request, retried per `retry`. A non-2xx answer that is not retried (or still fails
 * after the last attempt) is returned for the caller to judge; a host refusal or a
 * transport failure is thrown as `HttpFailure`. */
export function fetch(req: Request, retry: Retry = DEFAULT_RETRY): Response {
  for (let n = 0; ; n++) {
    const outcome = attempt(req);
    const delay = delayFor(retry, outcome, n);
    if (delay === undefined) {
      if (outcome.ok) return outcome.response;
      throw new HttpFailure(outcome.error);
    }
    sleep(delay);
  }
}

/** `GET url` (retried), its status checked, its body parsed as JSON. */
export function getJson<T = unknown>(url: string, opts: RequestOptions = {}, retry: Retry = DEFAULT_RETRY): T {
  return json<T>(ok(fetch(request(url, opts), retry)));
}

/** Many requests at once through the host's batch fetch (bounded by the policy's
 * `maxConcurrentRequests`), in request order. Those that need a retry are sent again
 * together, after the longest delay any of them asked for. Each result is a response or
 * an `HttpFailure`. */
export function fetchAll(reqs: Request[], retry: Retry = DEFAULT_RETRY): Array<Response | HttpFailure> {
  const results: Array<Response | HttpFailure | undefined> = reqs.map(() => undefined);
  let pending = reqs.map((_, i) => i);
  for (let n = 0; pending.length > 0; n++) {
    const answers = host.fetchBatch(pending.map((i) => reqs[i]));
    const again: number[] = [];
    let wait = 0;
    pending.forEach((i, j) => {
      const a = answers[j];
      const outcome: Outcome = a.tag === 'ok' ? { ok: true, response: a.val } : { ok: false, error: a.val };
      const delay = delayFor(retry, outcome, n);
      if (delay === undefined) {
        results[i] = outcome.ok ? outcome.response : new HttpFailure(outcome.error);
      } else {
        again.push(i);
        wait = Math.max(wait, delay);
      }
    });
    if (again.length > 0) sleep(wait);
    pending = again;
  }
  return results as Array<Response | HttpFailure>;
}

/** The validation call most connectors make: one request whose failure means the
 * credentials (or the URL) are wrong: JupiterOne's "Provider authentication failed at
 * URL: …" as an `AuthenticationError`. */
export function checkCredentials(
  req: Request,
  passes: (status: number) => boolean = (s) => s >= 200 && s < 300,
  retry: Retry = DEFAULT_RETRY,
): Response {
  let r: Response;
  try {
    r = fetch(req, retry);
  } catch (e) {
    const why = e instanceof HttpFailure ? describeHttpError(e.error) : String(e);
    throw new AuthenticationError(`Provider authentication failed at ${req.url}: ${why}`);
  }
  if (!passes(r.status)) {
    const why = `${r.status} ${statusText(r.status)}`.trimEnd();
    throw new AuthenticationError(`Provider authentication failed at ${req.url}: ${why}`);
  }
  return r;
}

/** Offset paging: `page(offset)` returns a page's rows; paging advances by the rows
 * received (a provider that caps the page below the size asked loses none) and ends at
 * the first empty page. `each` gets each non-empty page. */
export function forEachOffsetPage<T>(page: (offset: number) => T[], each: (rows: T[]) => void): void {
  for (let offset = 0; ; ) {
    const rows = page(offset);
    if (rows.length === 0) return;
    offset += rows.length;
    each(rows);
  }
}

/** Cursor paging: `page(cursor)` returns rows and the next cursor; paging ends when the
 * provider gives none, or gives the cursor it was just asked for (it would loop). */
export function forEachCursorPage<T>(
  page: (cursor: string | undefined) => { rows: T[]; next?: string | null },
  each: (rows: T[]) => void,
): void {
  let cursor: string | undefined;
  for (;;) {
    const { rows, next } = page(cursor);
    if (rows.length > 0) each(rows);
    if (next == null || next === '' || next === cursor) return;
    cursor = next;
  }
}

/** Percent-encodes a query or path value (RFC 3986 unreserved characters kept). */
export function encodeQueryValue(v: string): string {
  return encodeURIComponent(v).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** Longest line `lines` accepts before giving up on a body, in bytes. */
export const MAX_LINE_BYTES = 16 << 20;

/** The lines of a streamed body (JSONL exports), read a piece at a time so the whole body
 * is never in memory. Empty lines are skipped; a trailing `\r` is removed. The request is
 * retried on its head (429, 5xx, connection failures) before any of its body is read. */
export function* lines(req: Request, retry: Retry = DEFAULT_RETRY): Generator<string> {
  const body = openStream(req, retry);
  try {
    yield* readLines(body);
  } finally {
    close(body);
  }
}

function openStream(req: Request, retry: Retry): Body {
  for (let n = 0; ; n++) {
    let outcome: Outcome;
    let body: Body | undefined;
    try {
      const [head, b] = host.fetchStreaming(req);
      body = b;
      outcome = { ok: true, response: { ...head, body: new Uint8Array() } };
    } catch (e) {
      outcome = { ok: false, error: hostError(e) };
    }
    const delay = delayFor(retry, outcome, n);
    if (delay === undefined) {
      if (!outcome.ok) throw new HttpFailure(outcome.error);
      const status = outcome.response.status;
      if (status < 200 || status >= 300) {
        if (body) close(body);
        throw ProviderError.status(outcome.response.url, status);
      }
      return body as Body;
    }
    if (body) close(body);
    sleep(delay);
  }
}

/** Drops the host's body now rather than when the engine collects it (where the engine
 * has `Symbol.dispose`, which the bindings give resources). */
function close(body: Body): void {
  const dispose = (Symbol as { dispose?: symbol }).dispose;
  const drop = dispose === undefined ? undefined : (body as unknown as Record<symbol, unknown>)[dispose];
  if (typeof drop === 'function') drop.call(body);
}

/** Joins byte pieces into one array. */
function concat(pieces: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(pieces.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of pieces) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** The body's lines. The part of a line read so far is kept as pieces and joined once,
 * when its end arrives, so a long line costs its length, not its length squared. */
function* readLines(body: Body): Generator<string> {
  let partial: Uint8Array[] = [];
  let partialBytes = 0;
  for (;;) {
    let chunk: Uint8Array;
    try {
      chunk = body.read(64 << 10);
    } catch (e) {
      throw new HttpFailure(hostError(e));
    }
    if (chunk.length === 0) break;
    let start = 0;
    for (let nl = chunk.indexOf(10); nl >= 0; nl = chunk.indexOf(10, start)) {
      const line = trimCr(decoder.decode(concat([...partial, chunk.subarray(start, nl)])));
      [partial, partialBytes, start] = [[], 0, nl + 1];
      if (line !== '') yield line;
    }
    if (start < chunk.length) {
      partial.push(chunk.slice(start));
      partialBytes += chunk.length - start;
    }
    if (partialBytes > MAX_LINE_BYTES) {
      throw new ProviderError(`a line longer than ${MAX_LINE_BYTES} bytes`);
    }
  }
  const rest = trimCr(decoder.decode(concat(partial)));
  if (rest !== '') yield rest;
}

const trimCr = (s: string): string => (s.endsWith('\r') ? s.slice(0, -1) : s);
