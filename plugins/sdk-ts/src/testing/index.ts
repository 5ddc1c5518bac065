// A fake host for native unit tests of step code: config values and secrets, HTTP answers
// (given one by one, or read from a `corral run --record` recording), and what the steps
// asked for, emitted and logged. The SDK's test runner (`corral-sdk test`) bundles tests
// with these modules in place of the WIT imports.
//
// What the fake does not do, which a real run (`corral plugin test`) does: the policy and
// `secret:Use` (every recorded request is answered); the data-model rules other than
// duplicate keys; manifest defaults for unset config fields; waiting (a retry's delay is
// added to `slept()` instead).
import { readFileSync } from 'node:fs';
import type { Request, Response } from 'corral:integration/http@0.2.0';
import { answerKey, clear, state, type Logged } from './state.js';

export type { Logged };

/** Forgets everything: config, answers, requests, emitted objects, kv and logs. */
export const reset = (): void => clear();

/** A plain config field's value. */
export function config(name: string, value: string): void {
  state.config.set(name, value);
}

/** A secret field that has a value (the plugin never reads it). */
export function secret(name: string): void {
  state.secrets.add(name);
}

export function instance(id: string, name: string): void {
  state.instance = [id, name];
}

const encoder = new TextEncoder();

/** One answer to `method url` (no request body), given once. */
export function answer(method: string, url: string, status: number, body: string | Uint8Array, headers: Array<[string, string]> = [['content-type', 'application/json']]): void {
  const bytes = typeof body === 'string' ? encoder.encode(body) : body;
  push(answerKey(method, url), { status, headers, body: bytes, url });
}

function push(key: string, response: Response): void {
  const queue = state.answers.get(key) ?? [];
  queue.push(response);
  state.answers.set(key, queue);
}

function bytesOf(v: unknown): Uint8Array | undefined {
  if (typeof v === 'string') return encoder.encode(v);
  const list = (v as { bytes?: unknown } | null)?.bytes;
  return Array.isArray(list) ? Uint8Array.from(list as number[]) : undefined;
}

/** The answers of a recording (one exchange per line), each given once, in order; how
 * many were read. A line that is not an exchange is an error naming it. */
export function recording(path: string): number {
  const lines = readFileSync(path, 'utf8').split('\n');
  let n = 0;
  lines.forEach((line, i) => {
    if (line.trim() === '') return;
    const e = JSON.parse(line) as Record<string, unknown>;
    const body = bytesOf(e.body);
    const requestBody = e.requestBody === undefined ? undefined : bytesOf(e.requestBody);
    if (typeof e.method !== 'string' || typeof e.url !== 'string' || typeof e.status !== 'number' || !body || !Array.isArray(e.headers)) {
      throw new Error(`${path}: line ${i + 1}: not an exchange`);
    }
    const url = typeof e.finalUrl === 'string' ? e.finalUrl : e.url;
    push(answerKey(e.method, e.url, requestBody), {
      status: e.status,
      headers: e.headers as Array<[string, string]>,
      body,
      url,
    });
    n++;
  });
  return n;
}

/** The previous run's graph, for `previousObject` and `previousOfType`. */
export function previous(objects: Array<Record<string, unknown>>): void {
  state.previous = objects;
}

export const requests = (): Request[] => [...state.requests];
export const entities = (): Array<Record<string, unknown>> => state.emitted.filter(([r]) => !r).map(([, o]) => o);
export const relationships = (): Array<Record<string, unknown>> => state.emitted.filter(([r]) => r).map(([, o]) => o);
export const logs = (): Logged[] => [...state.logs];
/** Milliseconds the code under test asked to wait. */
export const slept = (): number => state.slept;
/** Answers given that no request asked for (`METHOD url body` of each). */
export const unused = (): string[] => [...state.answers].flatMap(([k, q]) => q.map(() => k.trimEnd()));
