// Text rules shared with the Rust SDK, so a connector's graph does not depend on its
// language: Rust's `trim` and `split_whitespace` use Unicode's White_Space property, which
// differs from JavaScript's `trim` and `\s` (U+0085 is whitespace in Rust, U+FEFF is not).

/** One White_Space character, as Rust's `char::is_whitespace` has it. */
const WS = '\\t\\n\\v\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const EDGES = new RegExp(`^[${WS}]+|[${WS}]+$`, 'g');
const RUNS = new RegExp(`[${WS}]+`);

/** `s` without leading and trailing whitespace, as Rust's `str::trim`. */
export const trim = (s: string): string => s.replace(EDGES, '');

/** The words of `s`, as Rust's `split_whitespace`. */
export const words = (s: string): string[] => s.split(RUNS).filter((w) => w !== '');

/** `s` with ASCII letters lowered only, as Rust's `to_ascii_lowercase`. */
export const asciiLower = (s: string): string => s.replace(/[A-Z]/g, (c) => c.toLowerCase());
