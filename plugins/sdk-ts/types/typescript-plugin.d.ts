/// <reference path="./interfaces/corral-integration-config.d.ts" />
/// <reference path="./interfaces/corral-integration-connector.d.ts" />
/// <reference path="./interfaces/corral-integration-graph.d.ts" />
/// <reference path="./interfaces/corral-integration-http.d.ts" />
/// <reference path="./interfaces/corral-integration-kv.d.ts" />
/// <reference path="./interfaces/corral-integration-log.d.ts" />
/// <reference path="./interfaces/wasi-clocks-monotonic-clock.d.ts" />
/// <reference path="./interfaces/wasi-io-poll.d.ts" />
declare module 'corral:integration/typescript-plugin@0.2.0' {
  export type * as CorralIntegrationConfig020 from 'corral:integration/config@0.2.0'; // import corral:integration/config@0.2.0
  export type * as CorralIntegrationGraph020 from 'corral:integration/graph@0.2.0'; // import corral:integration/graph@0.2.0
  export type * as CorralIntegrationHttp020 from 'corral:integration/http@0.2.0'; // import corral:integration/http@0.2.0
  export type * as CorralIntegrationKv020 from 'corral:integration/kv@0.2.0'; // import corral:integration/kv@0.2.0
  export type * as CorralIntegrationLog020 from 'corral:integration/log@0.2.0'; // import corral:integration/log@0.2.0
  export type * as WasiClocksMonotonicClock020 from 'wasi:clocks/monotonic-clock@0.2.0'; // import wasi:clocks/monotonic-clock@0.2.0
  export type * as WasiIoPoll020 from 'wasi:io/poll@0.2.0'; // import wasi:io/poll@0.2.0
  export * as connector from 'corral:integration/connector@0.2.0'; // export corral:integration/connector@0.2.0
}
