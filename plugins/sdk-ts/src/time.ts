// Timestamps to epoch milliseconds, as JupiterOne's `parseTimePropertyValue` gives them:
// RFC 3339 / ISO 8601 date-times with `T` or a space, any number of fractional digits
// (truncated to milliseconds), `Z`, `±HH:MM`, `±HHMM` or `±HH` offsets; no offset is UTC,
// a bare date is midnight UTC. Anything else is `undefined`. (The same rules as the Rust
// SDK's, so a connector's `…On` properties agree whichever language it is written in.)

import { trim } from './text.js';

/** `s` as epoch milliseconds; `undefined` for an empty, non-ASCII or unparsable value. */
export function parseEpochMs(s: unknown): number | undefined {
  if (typeof s !== 'string') return undefined;
  const t = trim(s);
  if (t.length < 10 || !/^[\x00-\x7f]*$/.test(t)) return undefined;
  const days = parseDate(t.slice(0, 10));
  if (days === undefined) return undefined;
  const rest = t.slice(10);
  if (rest === '') return days * 86_400_000;
  if (!'Tt '.includes(rest[0])) return undefined;
  const time = parseTimeAndOffset(rest.slice(1));
  return time === undefined ? undefined : days * 86_400_000 + time[0] - time[1];
}

function digits(s: string | undefined): number | undefined {
  return s !== undefined && /^[0-9]+$/.test(s) ? Number(s) : undefined;
}

function parseDate(d: string): number | undefined {
  if (d[4] !== '-' || d[7] !== '-') return undefined;
  const [year, month, day] = [digits(d.slice(0, 4)), digits(d.slice(5, 7)), digits(d.slice(8, 10))];
  if (year === undefined || month === undefined || day === undefined) return undefined;
  if (month < 1 || month > 12 || day < 1 || day > 31) return undefined;
  return daysFromCivil(year, month, day);
}

/** `HH:MM[:SS[.fff…]]` then an optional offset: [ms into the day, offset ms]. */
function parseTimeAndOffset(t: string): [number, number] | undefined {
  const split = t.search(/[Zz+-]/);
  const clock = split < 0 ? t : t.slice(0, split);
  const zone = split < 0 ? '' : t.slice(split);
  const parts = splitN(clock, ':', 3);
  const hour = digits(parts[0]);
  const minute = digits(parts[1]);
  if (hour === undefined || minute === undefined) return undefined;
  let second = 0;
  let millis = 0;
  if (parts[2] !== undefined) {
    const m = /^([^.,]*)(?:[.,](.*))?$/.exec(parts[2]);
    const whole = digits(m?.[1]);
    const frac = fractionMs(m?.[2] ?? '');
    if (whole === undefined || frac === undefined) return undefined;
    [second, millis] = [whole, frac];
  }
  if (hour > 24 || minute > 59 || second > 60) return undefined;
  const offset = parseOffsetMs(zone);
  if (offset === undefined) return undefined;
  return [((hour * 60 + minute) * 60 + second) * 1000 + millis, offset];
}

function splitN(s: string, sep: string, n: number): string[] {
  const parts = s.split(sep);
  return parts.length <= n ? parts : [...parts.slice(0, n - 1), parts.slice(n - 1).join(sep)];
}

function fractionMs(frac: string): number | undefined {
  if (frac === '') return 0;
  if (!/^[0-9]+$/.test(frac)) return undefined;
  return [...frac.slice(0, 3)].reduce((ms, c, i) => ms + Number(c) * [100, 10, 1][i], 0);
}

function parseOffsetMs(zone: string): number | undefined {
  if (zone === '' || zone === 'Z' || zone === 'z') return 0;
  const sign = zone.startsWith('-') ? -1 : 1;
  const body = zone.slice(1).replaceAll(':', '');
  let h: number | undefined;
  let m: number | undefined = 0;
  if (body.length === 2) h = digits(body);
  else if (body.length === 4) [h, m] = [digits(body.slice(0, 2)), digits(body.slice(2))];
  if (h === undefined || m === undefined) return undefined;
  return sign * (h * 60 + m) * 60_000;
}

/** Days since 1970-01-01 for a proleptic Gregorian date (Howard Hinnant's algorithm). */
function daysFromCivil(y0: number, m: number, d: number): number {
  const y = m <= 2 ? y0 - 1 : y0;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const mp = (m + 9) % 12;
  const doy = Math.floor((153 * mp + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146_097 + doe - 719_468;
}
