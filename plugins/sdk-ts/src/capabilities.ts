// What a plugin asks the host for: a policy document in corral's policy grammar.

/** The limits a plugin may ask for (the operator's policy can only lower them). */
export type Limit =
  | 'memoryMiB'
  | 'timeoutSeconds'
  | 'maxRequests'
  | 'requestsPerSecond'
  | 'requestsPerMinute'
  | 'requestsPerHour'
  | 'maxConcurrentRequests'
  | 'maxResponseBytes'
  | 'maxEntities'
  | 'maxRelationships'
  | 'maxGraphBytes'
  | 'maxRawDataBytes'
  | 'maxConcurrentSteps'
  | 'maxInFlightBytes';

interface Statement {
  effect: 'ALLOW';
  actions: string[];
  resources: string[];
  condition?: unknown;
}

/** Builds the capability request: each call adds one ALLOW statement or one limit. */
export class Capabilities {
  private readonly permissions: Statement[] = [];
  private readonly limits: Record<string, number | string> = {};

  /** HTTP `methods` to URLs matching `urlGlob` (`{{config.apiUrl}}*`). */
  http(methods: string[], urlGlob: string): this {
    if (methods.length > 0) this.allow(methods.map((m) => `http:${m.toUpperCase()}`), urlGlob);
    return this;
  }

  /** Using the secret field `name`, only in requests to URLs matching `urlGlob`. */
  secret(name: string, urlGlob: string): this {
    return this.allow(['secret:Use'], `secret:${name}`, { stringLike: { 'http:url': urlGlob } });
  }

  /** Emitting and reading objects whose `_type` matches `typeGlob` (`type:acme_*`). */
  graph(typeGlob: string): this {
    return this.allow(['graph:EmitEntity', 'graph:EmitRelationship', 'graph:Read'], typeGlob);
  }

  limit(limit: Limit, value: number): this {
    this.limits[limit] = value;
    return this;
  }

  /** The runs sharing a provider quota (templated, `acme:{{config.apiUrl}}`). */
  quotaKey(key: string): this {
    this.limits.quotaKey = key;
    return this;
  }

  toJSON(): unknown {
    return Object.keys(this.limits).length > 0
      ? { permissions: this.permissions, limits: this.limits }
      : { permissions: this.permissions };
  }

  private allow(actions: string[], resource: string, condition?: unknown): this {
    const statement: Statement = { effect: 'ALLOW', actions, resources: [resource] };
    if (condition !== undefined) statement.condition = condition;
    this.permissions.push(statement);
    return this;
  }
}
