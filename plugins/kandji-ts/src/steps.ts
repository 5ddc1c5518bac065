// The steps' I/O: requests through the host, entities out through the graph.
import { ConfigError, DataModelError, HttpFailure, ProviderError, config, http, logger, text } from 'corral-sdk';
import type { JobState, StepContext } from 'corral-sdk';
import * as convert from './convert.js';

const TOKEN = 'accessToken';
/** The reference's page of the device list. */
const PAGE_SIZE = 100;
/** Devices whose details or apps are requested in one batch. */
const BATCH = 100;

function missingConfig(): ConfigError {
  return new ConfigError(
    'Config requires all of {apiUrl, accessToken}, you can check this via access page in settings or contact support.',
  );
}

/** `apiUrl`, with the trailing slash the reference silently requires. */
function apiUrl(): string {
  let url: string | undefined;
  try {
    url = config.get('apiUrl');
  } catch {
    throw new ConfigError('apiUrl must not be a secret');
  }
  if (url === undefined || text.trim(url) === '') throw missingConfig();
  return url.endsWith('/') ? url : `${url}/`;
}

const get = (url: string) => http.request(url, { bearer: TOKEN });

export function validate(): void {
  const base = apiUrl();
  if (!config.hasSecret(TOKEN)) throw missingConfig();
  http.checkCredentials(get(`${base}devices?limit=1`));
}

export function fetchAccount({ jobState }: StepContext): void {
  jobState.addEntity(convert.accountEntity());
}

/** What `make` built, or `undefined` with a warning when the SDK refused it for the data
 * model (a key the host would reject, say a provider id of a few characters): the record
 * is skipped, as the host would reject it, and the step goes on. */
function built<T>(what: string, make: () => T): T | undefined {
  try {
    return make();
  } catch (e) {
    if (!(e instanceof DataModelError)) throw e;
    logger.warn(`skipping ${what}`, { reason: e.message });
    return undefined;
  }
}

/** The device's id, unless it is missing, empty or blank. */
function deviceId(d: unknown): string | undefined {
  const id = (d as { device_id?: unknown } | null)?.device_id;
  return typeof id === 'string' && text.trim(id) !== '' ? id : undefined;
}

function okJson(r: http.Response): unknown {
  return http.json(http.ok(r));
}

/** `GET devices/{id}/{what}` for each id, concurrently. A device that answers 404 was
 * deleted since it was listed: a warning and `undefined`, not a failed step. */
function fetchPerDevice(base: string, ids: string[], what: string): unknown[] {
  const reqs = ids.map((id) => get(`${base}devices/${http.encodeQueryValue(id)}/${what}`));
  return http.fetchAll(reqs).map((r, i) => {
    if (r instanceof HttpFailure) throw r;
    if (r.status === 404) {
      logger.warn('device disappeared during the run; skipped', { device_id: ids[i], url: r.url, what });
      return undefined;
    }
    return okJson(r);
  });
}

export function fetchDevices({ jobState }: StepContext): void {
  const base = apiUrl();
  const hasAccount = jobState.hasKey(convert.ACCOUNT_KEY);
  const seen = new Set<string>();
  let fetched = 0;
  http.forEachOffsetPage(
    (offset) => {
      const page = okJson(http.fetch(get(`${base}devices?offset=${offset}&limit=${PAGE_SIZE}`)));
      if (!Array.isArray(page)) throw new ProviderError('devices: expected a JSON array');
      return page as unknown[];
    },
    (page) => {
      // Offset paging over a changing list can repeat a device. A device without an id
      // has no key that could not collide with another's: a warning, no request.
      const fresh = page.filter((d) => {
        const id = deviceId(d);
        if (id === undefined) {
          logger.warn('skipping device without a device_id');
          return false;
        }
        if (seen.has(id)) return false;
        seen.add(id);
        return true;
      });
      fetched += fresh.length;
      const details: unknown[] = [];
      for (let i = 0; i < fresh.length; i += BATCH) {
        const chunk = fresh.slice(i, i + BATCH).map((d) => deviceId(d) ?? '');
        details.push(...fetchPerDevice(base, chunk, 'details'));
      }
      fresh.forEach((d, i) => {
        if (details[i] === undefined) return;
        const entity = built('device', () => convert.deviceEntity(d, details[i]));
        if (entity === undefined) return;
        if (typeof entity === 'string') {
          logger.warn('skipping device', { reason: entity });
          return;
        }
        jobState.addEntity(entity);
        if (hasAccount) jobState.addRelationship(convert.accountDeviceRelationship(entity._key as string));
      });
    },
  );
  logger.info('devices listed', { fetched, unchanged: 0, appsRequestsToCome: fetched });
}

/** Every stored device's id, in emission order. */
function storedDeviceIds(jobState: JobState): string[] {
  const ids: string[] = [];
  jobState.iterateEntities({ _type: convert.DEVICE_TYPE }, (e) => {
    if (typeof e.id === 'string' && e.id !== '') ids.push(e.id);
  });
  return ids;
}

/** Every device's apps, fetched and emitted a batch at a time, in device order (an app
 * entity is its first device's install). */
export function fetchDeviceApps({ jobState }: StepContext): void {
  const base = apiUrl();
  const ids = storedDeviceIds(jobState);
  const appsSeen = new Set<string>();
  for (let i = 0; i < ids.length; i += BATCH) {
    const chunk = ids.slice(i, i + BATCH);
    fetchPerDevice(base, chunk, 'apps').forEach((body, j) => {
      if (body === undefined) return;
      const apps = (body as { apps?: unknown } | null)?.apps;
      // Install keys start with their device's: unique per device, so the set of seen
      // edges is per device and does not grow with the tenant.
      const edgesSeen = new Set<string>();
      for (const app of Array.isArray(apps) ? apps : []) {
        emitApp(jobState, chunk[j], app, appsSeen, edgesSeen);
      }
    });
  }
}

/** First seen wins for the app entity; each distinct edge key is emitted once. */
function emitApp(jobState: JobState, deviceId: string, app: unknown, appsSeen: Set<string>, edgesSeen: Set<string>): void {
  const entity = built('app', () => convert.appEntity(app));
  const edge = built('app', () => convert.deviceAppRelationship(deviceId, app));
  if (entity === undefined || edge === undefined) {
    logger.warn('skipping app without an id', { device_id: deviceId });
    return;
  }
  const key = entity._key as string;
  if (!appsSeen.has(key)) {
    appsSeen.add(key);
    jobState.addEntity(entity);
  }
  const edgeKey = edge._key as string;
  if (!edgesSeen.has(edgeKey)) {
    edgesSeen.add(edgeKey);
    jobState.addRelationship(edge);
  }
}

export function fetchDeviceUsers({ jobState }: StepContext): void {
  const usersSeen = new Set<string>();
  jobState.iterateEntities({ _type: convert.DEVICE_TYPE }, (device) => {
    const user = built('user', () => convert.userEntity(device));
    if (user === undefined) return;
    const userKey = user._key as string;
    if (!usersSeen.has(userKey)) {
      usersSeen.add(userKey);
      jobState.addEntity(user);
    }
    jobState.addRelationship(convert.deviceUserRelationship(device._key as string, userKey));
  });
}
