// The port's conversions and steps, natively: the SDK's fake host answers from the Rust
// connector's recording (recordings/ links to plugins/kandji/tests/replay/recordings).
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { JobState, logger } from 'corral-sdk';
import * as fake from 'corral-sdk/testing';
import * as convert from '../src/convert.js';
import * as steps from '../src/steps.js';

test('a device without a name is named by its serial, else its id', () => {
  const device = convert.deviceEntity({ device_id: 'dev-0000000001', device_name: '  ', serial_number: 'C02X' }, {});
  assert.equal(typeof device, 'object');
  assert.equal((device as Record<string, unknown>).name, 'C02X');
  const bare = convert.deviceEntity({ device_id: 'dev-0000000002', device_name: '' }, {}) as Record<string, unknown>;
  assert.equal(bare.name, 'dev-0000000002');
  assert.equal(convert.deviceEntity({ device_name: 'no id' }, {}), 'device without a device_id');
});

test('an app is keyed by its bundle id, else its app id; without either it has no entity', () => {
  assert.equal(convert.appKey({ bundle_id: 'com.acme.app', app_id: '7' }), 'kandji_app:com.acme.app');
  assert.equal(convert.appKey({ bundle_id: 'No value', app_id: '7' }), 'kandji_app:7');
  assert.equal(convert.appEntity({ bundle_id: '' }), undefined);
  const edge = convert.deviceAppRelationship('dev-0000000001', { bundle_id: 'com.acme.app', app_id: '7', creation_date: '2024-01-02T03:04:05Z' });
  assert.equal(edge?._key, 'dev-0000000001|has|kandji_app:7');
  assert.equal(edge?.createdOn, Date.UTC(2024, 0, 2, 3, 4, 5));
});

test('the steps emit the recorded tenant', () => {
  fake.reset();
  fake.config('apiUrl', 'http://127.0.0.1:47101/api/v1/');
  fake.secret('accessToken');
  assert.ok(fake.recording('recordings/kandji-replay.jsonl') > 0);
  steps.validate();
  for (const step of [steps.fetchAccount, steps.fetchDevices, steps.fetchDeviceApps, steps.fetchDeviceUsers]) {
    const jobState = new JobState();
    step({ jobState, logger });
    jobState.flush();
  }
  const byType = new Map<string, number>();
  for (const o of [...fake.entities(), ...fake.relationships()]) {
    byType.set(String(o._type), (byType.get(String(o._type)) ?? 0) + 1);
  }
  assert.equal(byType.get('kandji_device'), 10);
  assert.equal(byType.get('kandji_account_has_device'), 10);
  assert.deepEqual(fake.unused(), [], 'every recorded answer was asked for');
  assert.ok(fake.requests().every((r) => r.auth.tag === 'bearer' && r.auth.val === 'accessToken'));
});
