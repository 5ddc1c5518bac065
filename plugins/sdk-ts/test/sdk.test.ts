// The SDK's own behaviour, natively on its fake host: the rules it shares with the Rust
// SDK (text, JSON, addresses, times, keys), its builders' checks, retries, paging,
// streamed lines and what a failed step keeps.
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import {
  Capabilities,
  DataModelError,
  JobState,
  ProviderError,
  createDirectRelationship,
  createIntegrationEntity,
  defineConnector,
  http,
  parseEpochMs,
  relationshipType,
  standard,
  text,
} from '../src/index.js';
import * as fake from '../src/testing/index.js';

const bytes = (s: string) => new TextEncoder().encode(s);
const response = (body: Uint8Array) => ({ status: 200, headers: [] as Array<[string, string]>, body, url: 'https://api.example.com/x' });

test('text is trimmed and split by Rust rules', () => {
  assert.equal(text.trim('\u0085 a b\u3000'), 'a b');
  assert.equal(text.trim('\ufeffx'), '\ufeffx', 'U+FEFF is not whitespace in Rust');
  assert.deepEqual(text.words('Ada\u0085Lovelace  King'), ['Ada', 'Lovelace', 'King']);
  assert.equal(text.asciiLower('MacOS İ'), 'macos İ');
});

test('JSON is read as strictly as serde_json reads it', () => {
  assert.deepEqual(http.json(response(bytes('{"a":[1,"x"]}'))), { a: [1, 'x'] });
  for (const bad of [
    Uint8Array.from([0xef, 0xbb, 0xbf, ...bytes('{}')]),
    Uint8Array.from([0x22, 0xff, 0x22]),
    bytes('[1e400]'),
    bytes('[1' + '0'.repeat(400) + ']'),
    bytes('["\\ud800"]'),
    bytes('{"\\udc00":1}'),
    bytes('not json'),
  ]) {
    assert.throws(() => http.json(response(bad)), ProviderError);
  }
});

test('addresses, names and times as the Rust SDK gives them', () => {
  assert.equal(standard.parseIp('2001:DB8:0:0:1:0:0:1')?.text, '2001:db8::1:0:0:1');
  assert.equal(standard.parseIp('1:0:0:1:0:0:0:1')?.text, '1:0:0:1::1');
  assert.equal(standard.parseIp('::ffff:10.1.2.3')?.text, '::ffff:10.1.2.3');
  assert.equal(standard.parseIp('fe80::1%en0')?.text, 'fe80::1');
  assert.equal(standard.parseIp('01.2.3.4'), undefined, 'no octal-looking octets');
  const a = new standard.Addresses();
  ['10.0.0.2', '8.8.8.8', '::ffff:192.168.1.1', 'garbage'].forEach((x) => a.add(x));
  assert.deepEqual(a.properties(), {
    ipv4Addresses: ['10.0.0.2', '8.8.8.8'],
    ipv6Addresses: ['::ffff:192.168.1.1'],
    publicIpAddresses: ['8.8.8.8'],
    privateIpAddresses: ['10.0.0.2', '::ffff:192.168.1.1'],
  });
  assert.equal(standard.macAddress('14-7D-DA-4F-73-10'), '14:7d:da:4f:73:10');
  assert.deepEqual(standard.splitName(' Mary Ann  Smith '), ['Mary', 'Ann Smith']);
  assert.equal(standard.osType('Mac OS X'), 'darwin');
  assert.equal(parseEpochMs('2024-01-02 03:04:05.678912+01:00'), Date.UTC(2024, 0, 2, 2, 4, 5, 678));
  assert.equal(parseEpochMs('2024-01-02'), Date.UTC(2024, 0, 2));
  for (const bad of ['', '2024-13-01', '2024-01-02T25:00', '２０２４-01-02', 'yesterday']) {
    assert.equal(parseEpochMs(bad), undefined, bad);
  }
});

test('builders refuse what the host would, at the call site', () => {
  const entity = (assign: Record<string, unknown>) =>
    createIntegrationEntity({ entityData: { assign: { _key: 'acme-widget-1', _type: 'acme_widget', _class: 'Configuration', ...assign } } });
  assert.throws(() => entity({ _key: 'short' }), (e: unknown) => e instanceof DataModelError && /shorter than 10/.test(e.message));
  assert.throws(() => entity({ _key: 'k'.repeat(4097) }), /longer than 4096 bytes/);
  assert.throws(() => entity({ _type: 'Acme-Widget' }), /_type "Acme-Widget"/);
  assert.throws(() => entity({ _class: 'Gadget' }), /"Gadget" is not a known data-model class/);

  fake.reset();
  const e = entity({ name: 'x'.repeat(5000), nested: { a: 1 }, seenOn: '2024-01-01', tags: ['a', 1], ok: [1, 2] });
  assert.equal(e.name, 'acme-widget-1', 'a name the host would refuse is the key');
  assert.equal(e.displayName, 'acme-widget-1');
  assert.deepEqual(Object.keys(e).sort(), ['_class', '_key', '_type', 'displayName', 'name', 'ok']);
  assert.equal(fake.logs().filter((l) => l.level === 'warn').length, 4);

  const provider = JSON.parse('{"__proto__": "x", "id": "7"}') as Record<string, unknown>;
  const withProto = entity({ ...provider, name: 'seven' });
  assert.equal(Object.getPrototypeOf(withProto), Object.prototype);
  assert.equal(JSON.parse(JSON.stringify(withProto)).__proto__, 'x');

  const edge = createDirectRelationship({
    _class: 'HAS',
    from: { _key: 'acme-account-1', _type: 'acme_account' },
    to: { _key: 'acme-widget-1', _type: 'acme_widget' },
    properties: { _key: 'overridden?', size: 3 },
  });
  assert.equal(edge._key, 'acme-account-1|has|acme-widget-1');
  assert.equal(edge._type, 'acme_account_has_widget');
  assert.equal(relationshipType('HAS', 'a_b', 'a_b_c'), 'a_b_has_c');
  assert.throws(() => createDirectRelationship({ _class: 'has', from: edge, to: edge }), DataModelError);
});

test('a 429 is retried after what Retry-After asks; offset paging advances by rows', () => {
  fake.reset();
  const url = 'https://api.example.com/things?offset=0';
  fake.answer('GET', url, 429, '', [['retry-after', '2']]);
  fake.answer('GET', url, 200, '[1,2]');
  fake.answer('GET', 'https://api.example.com/things?offset=2', 200, '[3]');
  fake.answer('GET', 'https://api.example.com/things?offset=3', 200, '[]');
  const rows: number[] = [];
  http.forEachOffsetPage(
    (offset) => http.getJson<number[]>(`https://api.example.com/things?offset=${offset}`, { bearer: 'token' }),
    (page) => rows.push(...page),
  );
  assert.deepEqual(rows, [1, 2, 3]);
  assert.equal(fake.slept(), 2000);
  assert.equal(fake.requests().length, 4, 'the 429, its retry, two more pages');
  assert.deepEqual(fake.unused(), []);
});

test('streamed lines are split across pieces, CRLF and empty lines handled', () => {
  fake.reset();
  fake.answer('GET', 'https://api.example.com/export', 200, 'a\r\n\nbb' + 'c'.repeat(70_000) + '\nlast');
  const lines = [...http.lines(http.request('https://api.example.com/export'))];
  assert.deepEqual(lines.map((l) => l.slice(0, 3)), ['a', 'bbc', 'las']);
  assert.equal(lines[1].length, 70_002);
  fake.answer('GET', 'https://api.example.com/gone', 404, 'nope');
  assert.throws(() => [...http.lines(http.request('https://api.example.com/gone'))], /404 Not Found/);
});

test('a failing step keeps what it emitted before its error', () => {
  fake.reset();
  const connector = defineConnector({
    id: 'acme',
    name: 'Acme',
    version: '0.1.0',
    description: 'd',
    config: [],
    capabilities: new Capabilities(),
    steps: [
      {
        id: 'widgets',
        name: 'Widgets',
        entities: [],
        relationships: [],
        executionHandler({ jobState }) {
          jobState.addEntity(createIntegrationEntity({ entityData: { assign: { _key: 'acme-widget-1', _type: 'acme_widget', _class: 'Configuration', name: 'w' } } }));
          throw new ProviderError('page 2 failed');
        },
      },
    ],
  });
  assert.throws(
    () => connector.runStep('widgets'),
    (e: unknown) => (e as { payload?: unknown }).payload !== undefined && JSON.stringify((e as { payload: unknown }).payload) === '{"tag":"provider","val":"page 2 failed"}',
  );
  assert.deepEqual(fake.entities().map((e) => e._key), ['acme-widget-1']);
  assert.throws(() => connector.runStep('nope'), (e: unknown) => JSON.stringify((e as { payload: unknown }).payload) === '{"tag":"config","val":"unknown step nope"}');
  assert.equal(JSON.parse(connector.manifest().capabilities).permissions.length, 0);
  const job = new JobState();
  assert.equal(job.findEntity('acme-widget-1')?.name, 'w');
});
