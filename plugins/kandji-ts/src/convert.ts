// Kandji API objects to JupiterOne entities and relationships: pure functions, tested
// natively. The mapping is the Rust `kandji` connector's, property for property.
import { createDirectRelationship, createIntegrationEntity, props, standard, parseEpochMs, text } from 'corral-sdk';
import type { GraphObject } from 'corral-sdk';

const { allowed: scalar, at, firstReadable, pluck, readable } = props;

export const ACCOUNT_TYPE = 'kandji_account';
export const DEVICE_TYPE = 'kandji_device';
export const APP_TYPE = 'kandji_app';
export const USER_TYPE = 'kandji_user';
export const ACCOUNT_KEY = 'kandji-account';
/** The account's `vendor` (the data model's `Account` requires one). */
export const VENDOR = 'Kandji';

type Json = unknown;
type Obj = Record<string, Json>;

const isObject = (v: Json): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v);

export function accountEntity(): GraphObject {
  return createIntegrationEntity({
    entityData: {
      source: { id: ACCOUNT_KEY, name: 'Kandji Account' },
      assign: {
        _key: ACCOUNT_KEY,
        _type: ACCOUNT_TYPE,
        _class: 'Account',
        id: ACCOUNT_KEY,
        name: 'Kandji Account',
        displayName: 'Kandji Account',
        vendor: VENDOR,
      },
    },
  });
}

/** The name a person can recognise a device by: `device_name`, else its serial number,
 * else its id (real tenants have devices named `""`). */
export const deviceName = (d: Json, id: string): string => firstReadable(d, ['device_name', 'serial_number']) ?? id;

/** A string, else `null` (a required `Device` property typed `string | null`). */
const textOrNull = (v: Json): string | null => (typeof v === 'string' ? v : null);
const strOf = (v: Json, field: string): string | undefined => {
  const x = at(v, field);
  return typeof x === 'string' ? x : undefined;
};
const timeOf = (v: Json, field: string): number | undefined => parseEpochMs(strOf(v, field));

/** The Apple operating system a Kandji `platform` runs. */
function osName(platform: string | undefined): string | undefined {
  switch (platform) {
    case 'Mac':
      return 'macOS';
    case 'iPhone':
    case 'iPod':
      return 'iOS';
    case 'iPad':
      return 'iPadOS';
    case 'AppleTV':
      return 'tvOS';
    case 'AppleVision':
    case 'Vision':
      return 'visionOS';
    default:
      return undefined;
  }
}

/** `osName`, `osType`, `osDetails` (`macOS 12.0.1 (21A559)`); `null` where unknown. */
function osProperties(d: Json, x: Json): Obj {
  const name = osName(strOf(d, 'platform'));
  const kind = name === undefined ? undefined : standard.osType(name);
  const version = readable(at(x, 'general', 'system_version')) ?? readable(at(d, 'os_version'));
  let details: string | undefined;
  if (name !== undefined && version !== undefined) details = version.startsWith(name) ? version : `${name} ${version}`;
  else details = name ?? version;
  return { osName: standard.orNull(name), osType: standard.orNull(kind), osDetails: standard.orNull(details) };
}

/** The addresses, MAC, host name and FQDN the `Device` schema requires, from the
 * details' `network` section. */
function networkProperties(x: Json): Obj {
  const net = (f: string): string | undefined => {
    const v = at(x, 'network', f);
    return typeof v === 'string' ? v : undefined;
  };
  const addresses = new standard.Addresses();
  for (const f of ['ip_address', 'public_ip']) {
    const ip = net(f);
    if (ip !== undefined) addresses.add(ip);
  }
  const local = net('local_hostname');
  return {
    ...addresses.properties(),
    macAddresses: standard.stringList(standard.macAddresses([net('mac_address')])),
    hostname: standard.orNull(local === undefined ? undefined : standard.hostname(local)),
    fqdn: null,
  };
}

/** Device list fields copied unchanged: [property, field]. */
const LIST_FIELDS: Array<[string, string]> = [
  ['blueprintId', 'blueprint_id'],
  ['blueprintName', 'blueprint_name'],
  ['mdmEnabled', 'mdm_enabled'],
  ['agentInstalled', 'agent_installed'],
  ['isMissing', 'is_missing'],
  ['isRemoved', 'is_removed'],
  ['agentVersion', 'agent_version'],
];

/** Detail sections: [property prefix, section, [property, field][]]. */
const DETAIL_SECTIONS: Array<[string, string, Array<[string, string]>]> = [
  ['general', 'general', [
    ['systemVersion', 'system_version'],
    ['bootVolume', 'boot_volume'],
    ['timeSinceBoot', 'time_since_boot'],
    ['lastUser', 'last_user'],
    ['blueprintName', 'blueprint_name'],
    ['blueprintUuid', 'blueprint_uuid'],
  ]],
  ['mdm', 'mdm', [
    ['mdmEnabled', 'mdm_enabled'],
    ['installDate', 'install_date'],
    ['lastCheckIn', 'last_check_in'],
    ['mdmEnabledUser', 'mdm_enabled_user'],
  ]],
  ['activationLock', 'activation_lock', [
    ['bypassCodeFailed', 'bypass_code_failed'],
    ['userActivationLockEnabled', 'user_activation_lock_enabled'],
    ['deviceActivationLockEnabled', 'device_activation_lock_enabled'],
    ['activationLockAllowedWhileSupervised', 'activation_lock_allowed_while_supervised'],
    ['activationLockSupported', 'activation_lock_supported'],
  ]],
  ['filevault', 'filevault', [
    ['filevaultEnabled', 'filevault_enabled'],
    ['filevaultRecoverykeyType', 'filevault_recoverykey_type'],
    ['filevaultPrkEscrowed', 'filevault_prk_escrowed'],
    ['filevaultNextRotation', 'filevault_next_rotation'],
    ['filevaultRegenRequired', 'filevault_regen_required'],
  ]],
  ['kandjiAgent', 'kandji_agent', [
    ['agentInstalled', 'agent_installed'],
    ['installDate', 'install_date'],
    ['lastCheckIn', 'last_check_in'],
    ['agentVersion', 'agent_version'],
  ]],
  ['hardwareOverview', 'hardware_overview', [
    ['modelName', 'model_name'],
    ['modelIdentifier', 'model_identifier'],
    ['processorName', 'processor_name'],
    ['processorSpeed', 'processor_speed'],
    ['numberOfProcessors', 'number_of_processors'],
    ['totalNumberOfCores', 'total_number_of_cores'],
    ['memory', 'memory'],
  ]],
  ['network', 'network', [
    ['localHostname', 'local_hostname'],
    ['ipAddress', 'ip_address'],
    ['publicIp', 'public_ip'],
  ]],
];

/** A device from its list item `d` and its details `x`; a string when it has no id. */
export function deviceEntity(d: Json, x: Json): GraphObject | string {
  const id = readable(at(d, 'device_id'));
  if (id === undefined) return 'device without a device_id';
  const platform = strOf(d, 'platform');
  const user = at(d, 'user');
  const userField = (f: string): Json => (isObject(user) ? (at(user, f) ?? null) : null);
  const lastCheckin = timeOf(d, 'last_check_in');
  const p: Obj = {
    id,
    deviceId: standard.stringList([id]),
    name: deviceName(d, id),
    make: 'Apple Inc.',
    model: textOrNull(at(d, 'model')),
    serial: textOrNull(at(d, 'serial_number')),
    serialNumber: scalar(at(d, 'serial_number')),
    category: textOrNull(at(d, 'platform')),
    platform: platform === 'Mac' ? 'darwin' : 'ios',
    osVersion: textOrNull(at(d, 'os_version')),
    encrypted: typeof at(x, 'filevault', 'filevault_enabled') === 'boolean' ? at(x, 'filevault', 'filevault_enabled') : undefined,
    lastCheckinOn: lastCheckin,
    lastSeenOn: standard.orNull(lastCheckin),
    'user.id': userField('id'),
    'user.name': userField('name'),
    'user.email': userField('email'),
    'user.isArchived': userField('is_archived'),
    firstEnrollmentOn: timeOf(d, 'first_enrollment'),
    lastEnrollmentOn: timeOf(d, 'last_enrollment'),
  };
  for (const [prop, field] of LIST_FIELDS) p[prop] = scalar(at(d, field));
  // `Device.assetTag` is a list in the data model.
  const tag = readable(at(d, 'asset_tag'));
  p.assetTag = tag === undefined ? undefined : [tag];
  Object.assign(p, osProperties(d, x), networkProperties(x));
  for (const [prefix, section, fields] of DETAIL_SECTIONS) {
    for (const [prop, field] of fields) p[`${prefix}.${prop}`] = scalar(at(x, section, field));
  }
  for (const [suffix, field] of [['Id', 'id'], ['Name', 'name'], ['Email', 'email'], ['IsArchived', 'is_archived']]) {
    p[`general.assignedUser${suffix}`] = scalar(at(x, 'general', 'assigned_user', field));
  }
  const mac = scalar(at(x, 'network', 'mac_address'));
  Object.assign(p, {
    macAddress: mac,
    'network.macAddress': mac,
    volumes: pluck(at(x, 'volumes'), 'identifier'),
    'users.regularUsers': pluck(at(x, 'users', 'regular_users'), 'uid'),
    'users.systemUsers': pluck(at(x, 'users', 'system_users'), 'uid'),
    installedProfiles: pluck(at(x, 'installed_profiles'), 'uuid'),
  });
  return createIntegrationEntity({
    entityData: {
      source: { ...(isObject(d) ? d : {}), ...(isObject(x) ? x : {}) },
      assign: { _key: id, _type: DEVICE_TYPE, _class: 'Device', ...p },
    },
  });
}

export function accountDeviceRelationship(deviceKey: string): GraphObject {
  return createDirectRelationship({
    _class: 'HAS',
    from: { _key: ACCOUNT_KEY, _type: ACCOUNT_TYPE },
    to: { _key: deviceKey, _type: DEVICE_TYPE },
  });
}

/** The app's bundle id, unless it is empty, blank, `"No value"` or missing. */
function bundleId(app: Json): string | undefined {
  const b = readable(at(app, 'bundle_id'));
  return b === 'No value' ? undefined : b;
}

/** The app's key id: its bundle id, else its `app_id`. */
export const appKeyId = (app: Json): string | undefined => bundleId(app) ?? readable(at(app, 'app_id'));

export function appKey(app: Json): string | undefined {
  const id = appKeyId(app);
  return id === undefined ? undefined : `kandji_app:${id}`;
}

/** `app_name`, else its process name, else its bundle id, else its path, else its key id. */
export const appName = (app: Json): string | undefined =>
  firstReadable(app, ['app_name', 'process']) ?? bundleId(app) ?? readable(at(app, 'path')) ?? appKeyId(app);

export function appEntity(app: Json): GraphObject | undefined {
  const key = appKey(app);
  if (key === undefined) return undefined;
  return createIntegrationEntity({
    entityData: {
      source: app,
      assign: {
        _key: key,
        _type: APP_TYPE,
        _class: 'Application',
        name: appName(app),
        bundleId: scalar(at(app, 'bundle_id')),
        appStoreVendable: scalar(at(app, 'app_store_vendable')),
        deviceBasedVpp: scalar(at(app, 'device_based_vpp')),
        source: scalar(at(app, 'source')),
        process: scalar(at(app, 'process')),
      },
    },
  });
}

/** Device HAS app, keyed by the per-device `app_id` (else the app's key id). */
export function deviceAppRelationship(deviceId: string, app: Json): GraphObject | undefined {
  const toKey = appKey(app);
  const edgeId = readable(at(app, 'app_id')) ?? appKeyId(app);
  if (toKey === undefined || edgeId === undefined) return undefined;
  return createDirectRelationship({
    _class: 'HAS',
    from: { _key: deviceId, _type: DEVICE_TYPE },
    to: { _key: toKey, _type: APP_TYPE },
    _key: `${deviceId}|has|kandji_app:${edgeId}`,
    properties: {
      id: scalar(at(app, 'app_id')),
      signature: scalar(at(app, 'signature')),
      bundleSize: scalar(at(app, 'bundle_size')),
      path: scalar(at(app, 'path')),
      version: scalar(at(app, 'version')),
      createdOn: timeOf(app, 'creation_date'),
      updatedOn: timeOf(app, 'modification_date'),
    },
  });
}

/** The user a stored device names in `user.*`: a numeric or non-blank text id. */
export function userEntity(device: GraphObject): GraphObject | undefined {
  const id = device['user.id'];
  let idText: string;
  if (typeof id === 'number') idText = String(id);
  else if (typeof id === 'string' && text.trim(id) !== '') idText = id;
  else return undefined;
  const field = (f: string): Json => device[f] ?? null;
  const fullName = readable(device['user.name']);
  const email = readable(device['user.email']);
  const [first, last] = fullName === undefined ? [undefined, undefined] : standard.splitName(fullName);
  return createIntegrationEntity({
    entityData: {
      source: { id, name: field('user.name'), email: field('user.email'), is_archived: field('user.isArchived') },
      assign: {
        _key: `kandji_user:${idText}`,
        _type: USER_TYPE,
        _class: 'User',
        id: `kandji_user:${idText}`,
        name: fullName ?? email ?? idText,
        email: standard.emailList([email]),
        isArchived: field('user.isArchived'),
        username: standard.stringList([email]),
        shortLoginId: standard.stringList([email === undefined ? undefined : standard.emailLocalPart(email)]),
        firstName: standard.orNull(first),
        lastName: standard.orNull(last),
        active: true,
      },
    },
  });
}

export function deviceUserRelationship(deviceKey: string, userKey: string): GraphObject {
  return createDirectRelationship({
    _class: 'HAS',
    from: { _key: deviceKey, _type: DEVICE_TYPE },
    to: { _key: userKey, _type: USER_TYPE },
  });
}
