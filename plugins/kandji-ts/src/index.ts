// The Kandji connector in TypeScript: devices, their apps and users from the Kandji MDM
// API, the same config, steps and graph as the Rust `kandji` connector.
//
// Steps (a DAG): fetch-account → fetch-devices → {fetch-device-apps, fetch-device-users}.
import { Capabilities, defineConnector } from 'corral-sdk';
import { ACCOUNT_TYPE, APP_TYPE, DEVICE_TYPE, USER_TYPE } from './convert.js';
import * as steps from './steps.js';

export const connector = defineConnector({
  id: 'kandji-ts',
  name: 'Kandji (TypeScript)',
  version: '0.1.0',
  description: 'Devices, apps and users from the Kandji Apple MDM API',
  config: [
    { name: 'apiUrl', description: 'Organisation API URL, e.g. https://acme.api.kandji.io/api/v1/' },
    { name: 'accessToken', description: 'Kandji API token (bearer)', secret: true },
    {
      name: 'incremental',
      description: 'Accepted as the Rust connector accepts it; this port fetches every device on every run',
      optional: true,
      default: 'false',
    },
  ],
  // GET to the configured API only; the token only to that API.
  capabilities: new Capabilities()
    .http(['GET'], '{{config.apiUrl}}*')
    .secret('accessToken', '{{config.apiUrl}}*')
    .graph('type:kandji_*')
    .limit('requestsPerSecond', 50)
    .limit('requestsPerHour', 10_000)
    .limit('maxConcurrentRequests', 8),
  validate: steps.validate,
  steps: [
    {
      id: 'fetch-account',
      name: 'Fetch Account',
      entities: [{ resourceName: 'Account', _type: ACCOUNT_TYPE, _class: 'Account' }],
      relationships: [],
      executionHandler: steps.fetchAccount,
    },
    {
      id: 'fetch-devices',
      name: 'Fetch Devices',
      entities: [{ resourceName: 'Device', _type: DEVICE_TYPE, _class: 'Device' }],
      relationships: [{ _type: 'kandji_account_has_device', _class: 'HAS', sourceType: ACCOUNT_TYPE, targetType: DEVICE_TYPE }],
      dependsOn: ['fetch-account'],
      executionHandler: steps.fetchDevices,
    },
    {
      id: 'fetch-device-apps',
      name: 'Fetch Device Apps',
      entities: [{ resourceName: 'App', _type: APP_TYPE, _class: 'Application' }],
      relationships: [{ _type: 'kandji_device_has_app', _class: 'HAS', sourceType: DEVICE_TYPE, targetType: APP_TYPE }],
      dependsOn: ['fetch-devices'],
      executionHandler: steps.fetchDeviceApps,
    },
    {
      id: 'fetch-device-users',
      name: 'Fetch Device Users',
      entities: [{ resourceName: 'User', _type: USER_TYPE, _class: 'User' }],
      relationships: [{ _type: 'kandji_device_has_user', _class: 'HAS', sourceType: DEVICE_TYPE, targetType: USER_TYPE }],
      dependsOn: ['fetch-devices'],
      executionHandler: steps.fetchDeviceUsers,
    },
  ],
});
