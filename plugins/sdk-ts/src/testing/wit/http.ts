// `corral:integration/http` in a native test: recorded answers, each given once.
import type { HttpError, Request, Response } from 'corral:integration/http@0.2.0';
import { answerKey, hostError, state } from '../state.js';

type Result<T, E> = { tag: 'ok'; val: T } | { tag: 'err'; val: E };

function answer(req: Request): Result<Response, HttpError> {
  state.requests.push(req);
  const queue = state.answers.get(answerKey(req.method, req.url, req.body));
  const r = queue?.shift();
  if (r) return { tag: 'ok', val: r };
  return { tag: 'err', val: { tag: 'invalid', val: `no recording of ${req.method} ${req.url}` } };
}

export function fetch(req: Request): Response {
  const r = answer(req);
  if (r.tag === 'err') throw hostError(r.val);
  return r.val;
}

export const fetchBatch = (reqs: Request[]): Array<Result<Response, HttpError>> => reqs.map(answer);

/** A body read in pieces from a recorded answer. */
export class Body {
  private offset = 0;
  constructor(private readonly bytes: Uint8Array) {}

  read(max: number): Uint8Array {
    const piece = this.bytes.subarray(this.offset, this.offset + Math.max(1, max));
    this.offset += piece.length;
    return piece;
  }

  [Symbol.dispose](): void {}
}

export function fetchStreaming(req: Request): [Omit<Response, 'body'>, Body] {
  const r = fetch(req);
  return [{ status: r.status, headers: r.headers, url: r.url }, new Body(r.body)];
}
