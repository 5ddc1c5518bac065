// `corral:integration/log` in a native test: lines kept for the test to read.
import type { FieldValue, Level } from 'corral:integration/log@0.2.0';
import { state } from '../state.js';

export function log(level: Level, message: string, fields: Array<[string, FieldValue]>): void {
  state.logs.push({ level, message, fields: Object.fromEntries(fields.map(([k, v]) => [k, v.val])) });
}
