// The fake host's state, shared by its WIT modules and the testing API.
import type { Request, Response } from 'corral:integration/http@0.2.0';

export interface Logged {
  level: string;
  message: string;
  fields: Record<string, unknown>;
}

export const state = {
  config: new Map<string, string>(),
  secrets: new Set<string>(),
  instance: ['test-instance', 'Test instance'] as [string, string],
  /** Answers by `METHOD url body`, each given once, in order. */
  answers: new Map<string, Response[]>(),
  requests: [] as Request[],
  /** Emitted objects in order, as [is a relationship, object]. */
  emitted: [] as Array<[boolean, Record<string, unknown>]>,
  keys: new Set<string>(),
  previous: [] as Array<Record<string, unknown>>,
  kv: new Map<string, Uint8Array>(),
  logs: [] as Logged[],
  /** Milliseconds the step asked to wait (the fake does not wait). */
  slept: 0,
};

export function clear(): void {
  state.config.clear();
  state.secrets.clear();
  state.instance = ['test-instance', 'Test instance'];
  state.answers.clear();
  state.requests = [];
  state.emitted = [];
  state.keys.clear();
  state.previous = [];
  state.kv.clear();
  state.logs = [];
  state.slept = 0;
}

const decoder = new TextDecoder();

export const answerKey = (method: string, url: string, body?: Uint8Array): string =>
  `${method} ${url} ${body === undefined ? '' : decoder.decode(body)}`;

/** A WIT import's error, thrown as componentize-js throws it (the value as `payload`). */
export function hostError(payload: unknown): Error {
  const e = new Error(JSON.stringify(payload));
  (e as Error & { payload: unknown }).payload = payload;
  return e;
}
