// Standard data-model properties in the shapes JupiterOne's class schemas require: lists
// where a schema wants an array of strings, values that pass its formats (e-mail, IP, MAC,
// host name), and `null` where the provider has nothing. Every helper reads provider text
// and never invents a value. (The same rules as the Rust SDK's `standard` module.)
import { asciiLower, trim, words as splitWords } from './text.js';

/** `v`, or `null` when it is `undefined`: a property the schema requires, `null` allowed. */
export const orNull = <T>(v: T | undefined): T | null => (v === undefined ? null : v);

/** The non-blank strings of `items`, de-duplicated in order; `null` when none. */
export function stringList(items: Iterable<string | undefined>): string[] | null {
  const out: string[] = [];
  for (const s of items) {
    if (s !== undefined && trim(s) !== '' && !out.includes(s)) out.push(s);
  }
  return out.length > 0 ? out : null;
}

const LOCAL_CHARS = "!#$%&'*+/=?^_`{|}~-";

/** A DNS label: letters and digits, hyphens only inside, at most 63 characters. */
function dnsLabel(l: string): boolean {
  return /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/.test(l);
}

/** Whether `s` passes the data model's `email` format. */
export function isEmail(s: string): boolean {
  const at = s.indexOf('@');
  if (at < 0) return false;
  const local = s.slice(0, at);
  const labels = s.slice(at + 1).split('.');
  const atomOk = (a: string) => a !== '' && [...a].every((c) => /[A-Za-z0-9]/.test(c) || LOCAL_CHARS.includes(c));
  return local.split('.').every(atomOk) && labels.length >= 2 && labels.every(dnsLabel);
}

/** The addresses of `items` that pass the `email` format, trimmed and de-duplicated;
 * `null` when none (`User.email`). */
export function emailList(items: Iterable<string | undefined>): string[] | null {
  const out: string[] = [];
  for (const raw of items) {
    const s = raw === undefined ? undefined : trim(raw);
    if (s !== undefined && isEmail(s) && !out.includes(s)) out.push(s);
  }
  return out.length > 0 ? out : null;
}

/** The part of an address before the `@`: JupiterOne's `shortLoginId`. */
export function emailLocalPart(email: string): string | undefined {
  const e = trim(email);
  return isEmail(e) ? e.slice(0, e.indexOf('@')) : undefined;
}

/** A full name split into the first word and the rest (`Mary Ann Smith`: `Mary`,
 * `Ann Smith`). */
export function splitName(full: string): [string | undefined, string | undefined] {
  const words = splitWords(full);
  return [words[0], words.length > 1 ? words.slice(1).join(' ') : undefined];
}

/** An IP address: its version and canonical text. */
export interface Ip {
  v: 4 | 6;
  bytes: number[];
  text: string;
}

function parseV4(t: string): number[] | undefined {
  const parts = t.split('.');
  if (parts.length !== 4) return undefined;
  const out: number[] = [];
  for (const p of parts) {
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p) || Number(p) > 255) return undefined;
    out.push(Number(p));
  }
  return out;
}

function parseGroups(part: string, allowV4Tail: boolean): number[] | undefined {
  if (part === '') return [];
  const pieces = part.split(':');
  const out: number[] = [];
  for (let i = 0; i < pieces.length; i++) {
    const p = pieces[i];
    if (allowV4Tail && i === pieces.length - 1 && p.includes('.')) {
      const v4 = parseV4(p);
      if (!v4) return undefined;
      out.push((v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3]);
    } else if (/^[0-9A-Fa-f]{1,4}$/.test(p)) {
      out.push(parseInt(p, 16));
    } else {
      return undefined;
    }
  }
  return out;
}

function parseV6(t: string): number[] | undefined {
  const halves = t.split('::');
  if (halves.length > 2) return undefined;
  let groups: number[];
  if (halves.length === 2) {
    const head = parseGroups(halves[0], false);
    const tail = parseGroups(halves[1], true);
    if (!head || !tail || head.length + tail.length > 7) return undefined;
    groups = [...head, ...new Array(8 - head.length - tail.length).fill(0), ...tail];
  } else {
    const all = parseGroups(t, true);
    if (!all || all.length !== 8) return undefined;
    groups = all;
  }
  return groups.flatMap((g) => [g >> 8, g & 0xff]);
}

function v6Text(b: number[]): string {
  const groups = Array.from({ length: 8 }, (_, i) => (b[2 * i] << 8) | b[2 * i + 1]);
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    return `::ffff:${b.slice(12).join('.')}`;
  }
  // The longest run of two or more zero groups (the first of equals) becomes `::`.
  let [best, bestLen] = [-1, 1];
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
    i = j;
  }
  const hex = (gs: number[]) => gs.map((g) => g.toString(16)).join(':');
  if (best < 0) return hex(groups);
  return `${hex(groups.slice(0, best))}::${hex(groups.slice(best + bestLen))}`;
}

/** An IP address from provider text: trimmed, without an IPv6 zone (`%en0`). */
export function parseIp(text: string): Ip | undefined {
  const t = trim(text).split('%')[0];
  const v4 = parseV4(t);
  if (v4) return { v: 4, bytes: v4, text: v4.join('.') };
  const v6 = parseV6(t);
  return v6 ? { v: 6, bytes: v6, text: v6Text(v6) } : undefined;
}

/** Whether `ip` is internal rather than public: IPv4 private, shared (100.64/10),
 * loopback, link-local, unspecified or broadcast; IPv6 loopback, unspecified,
 * unique-local, link-local, and an IPv4-mapped address by its IPv4 part. */
export function isPrivateIp(ip: Ip): boolean {
  const b = ip.bytes;
  if (ip.v === 4) {
    const [a, c] = [b[0], b[1]];
    return (
      a === 10 ||
      (a === 172 && c >= 16 && c < 32) ||
      (a === 192 && c === 168) ||
      a === 127 ||
      (a === 169 && c === 254) ||
      b.every((x) => x === 0) ||
      b.every((x) => x === 255) ||
      (a === 100 && c >= 64 && c < 128)
    );
  }
  if (b.slice(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff) {
    return isPrivateIp({ v: 4, bytes: b.slice(12), text: '' });
  }
  const first = (b[0] << 8) | b[1];
  const zeroTo = (n: number) => b.slice(0, n).every((x) => x === 0);
  return (zeroTo(15) && b[15] === 1) || zeroTo(16) || (first & 0xfe00) === 0xfc00 || (first & 0xff80) === 0xfe80;
}

/** A device's addresses sorted into the four lists the `Device` schema requires. */
export class Addresses {
  ipv4: string[] = [];
  ipv6: string[] = [];
  public: string[] = [];
  private: string[] = [];

  /** Adds `text` if it is an IP address (in its canonical form); whether it was. */
  add(text: string): boolean {
    const ip = parseIp(text);
    if (!ip) return false;
    const push = (list: string[]) => {
      if (!list.includes(ip.text)) list.push(ip.text);
    };
    push(ip.v === 4 ? this.ipv4 : this.ipv6);
    push(isPrivateIp(ip) ? this.private : this.public);
    return true;
  }

  /** The four properties, each a list or `null` when empty. */
  properties(): Record<'ipv4Addresses' | 'ipv6Addresses' | 'publicIpAddresses' | 'privateIpAddresses', string[] | null> {
    const orNullList = (l: string[]) => (l.length > 0 ? [...l] : null);
    return {
      ipv4Addresses: orNullList(this.ipv4),
      ipv6Addresses: orNullList(this.ipv6),
      publicIpAddresses: orNullList(this.public),
      privateIpAddresses: orNullList(this.private),
    };
  }
}

/** A MAC address as the schema writes it (`14:7d:da:4f:73:10`), from colon-, hyphen- or
 * dot-delimited or bare hex; `undefined` when it is not 6 bytes of hex. */
export function macAddress(text: string): string | undefined {
  const t = trim(text);
  let hex: string;
  if (/^[0-9A-Fa-f]{2}([:-][0-9A-Fa-f]{2}){5}$/.test(t)) hex = t.replace(/[:-]/g, '');
  else if (/^[0-9A-Fa-f]{4}(\.[0-9A-Fa-f]{4}){2}$/.test(t)) hex = t.replace(/\./g, '');
  else if (/^[0-9A-Fa-f]{12}$/.test(t)) hex = t;
  else return undefined;
  return hex.toLowerCase().match(/../g)!.join(':');
}

/** The MAC addresses of `items` in the schema's form, de-duplicated in order. */
export function macAddresses(items: Iterable<string | undefined>): string[] {
  const out: string[] = [];
  for (const s of items) {
    const m = s === undefined ? undefined : macAddress(s);
    if (m !== undefined && !out.includes(m)) out.push(m);
  }
  return out;
}

/** The first label of a host name (`web01` of `web01.corp.example.com`) when it is 2-63
 * letters, digits and inner hyphens; an IP address is not a host name. */
export function hostname(name: string): string | undefined {
  const n = trim(name);
  if (parseIp(n)) return undefined;
  const label = n.split('.')[0];
  return label.length >= 2 && dnsLabel(label) ? label : undefined;
}

/** `name` if it is a fully qualified domain name the `Device` schema accepts. */
export function fqdn(name: string): string | undefined {
  const n = trim(name);
  const labels = n.split('.');
  const tld = labels[labels.length - 1];
  const hosts = labels.slice(0, -1);
  const ok =
    n.length >= 4 &&
    n.length <= 253 &&
    hosts.length > 0 &&
    /^[A-Za-z]{2,63}$/.test(tld) &&
    asciiLower(tld) !== 'local' &&
    hosts.every(dnsLabel);
  return ok ? n : undefined;
}

const LINUX = ['linux', 'ubuntu', 'debian', 'centos', 'rhel', 'fedora', 'suse', 'opensuse', 'alpine', 'gentoo', 'raspbian', 'mint', 'kali', 'rocky', 'almalinux', 'amzn'];
const UNIX = ['freebsd', 'openbsd', 'netbsd', 'dragonfly', 'solaris', 'sunos', 'aix', 'unix', 'illumos'];

/** The `Device.osType` an operating system's name stands for: `darwin`, `ios`, `windows`,
 * `android`, `chromeos`, `linux`, `unix`, else `other`; `undefined` for blank text. */
export function osType(text: string): string | undefined {
  const t = asciiLower(trim(text));
  if (t === '') return undefined;
  const words = t.split(/[^a-z0-9]+/).filter((w) => w !== '');
  const has = (s: string) => t.includes(s);
  const word = (w: string) => words.includes(w);
  if (has('windows')) return 'windows';
  if (has('android')) return 'android';
  if (has('chrome os') || has('chromeos') || has('chromium os')) return 'chromeos';
  if (has('macos') || has('mac os') || has('os x') || word('osx') || word('darwin')) return 'darwin';
  if (['ipados', 'tvos', 'watchos', 'visionos', 'iphone', 'ipad'].some(word) || (word('ios') && !has('cisco'))) return 'ios';
  if (LINUX.some(word) || has('red hat')) return 'linux';
  if (UNIX.some(word) || has('hp-ux')) return 'unix';
  return 'other';
}
