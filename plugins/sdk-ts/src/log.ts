// The run log: leveled lines with typed fields, rate-limited and size-capped by the host.
import { log as hostLog } from 'corral:integration/log@0.2.0';
import type { FieldValue, Level } from 'corral:integration/log@0.2.0';

/** A field's value: kept with its type in the run log. */
export type LogValue = string | number | bigint | boolean | null | undefined;

function fieldValue(v: LogValue): FieldValue {
  if (typeof v === 'boolean') return { tag: 'boolean', val: v };
  if (typeof v === 'bigint') return { tag: 'integer', val: BigInt.asIntN(64, v) };
  if (typeof v === 'number') {
    return Number.isSafeInteger(v) ? { tag: 'integer', val: BigInt(v) } : { tag: 'float', val: v };
  }
  return { tag: 'text', val: v == null ? '' : String(v) };
}

function write(level: Level, message: string, fields: Record<string, LogValue> = {}): void {
  hostLog(
    level,
    message,
    Object.entries(fields).map(([k, v]) => [k, fieldValue(v)]),
  );
}

/** Leveled logging, as `context.logger` of a JupiterOne step. */
export const logger = {
  trace: (message: string, fields?: Record<string, LogValue>) => write('trace', message, fields),
  debug: (message: string, fields?: Record<string, LogValue>) => write('debug', message, fields),
  info: (message: string, fields?: Record<string, LogValue>) => write('info', message, fields),
  warn: (message: string, fields?: Record<string, LogValue>) => write('warn', message, fields),
  error: (message: string, fields?: Record<string, LogValue>) => write('error', message, fields),
};
