// Errors a step throws, and how each reaches the host as the WIT `step-error`.
import type { StepError } from 'corral:integration/connector@0.2.0';
import type { HttpError } from 'corral:integration/http@0.2.0';

/** An error with the `step-error` case it is reported as. */
export class IntegrationError extends Error {
  constructor(
    message: string,
    readonly kind: StepError['tag'] = 'other',
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** The provider refused the credentials. */
export class AuthenticationError extends IntegrationError {
  constructor(message: string) {
    super(message, 'authentication');
  }
}

/** The instance config is missing or malformed. */
export class ConfigError extends IntegrationError {
  constructor(message: string) {
    super(message, 'config');
  }
}

/** The provider failed, answered an error status, or answered garbage. */
export class ProviderError extends IntegrationError {
  constructor(message: string) {
    super(message, 'provider');
  }

  /** JupiterOne's `PROVIDER_API_ERROR` shape: "Provider API failed at URL: STATUS TEXT". */
  static status(url: string, status: number): ProviderError {
    return new ProviderError(`Provider API failed at ${url}: ${status} ${statusText(status)}`.trimEnd());
  }
}

/** The host refused or failed a request (denial, limit, transport). */
export class HttpFailure extends IntegrationError {
  constructor(readonly error: HttpError) {
    super(describeHttpError(error), 'other');
  }
}

/** An object that breaks the data model, refused where it is built. */
export class DataModelError extends IntegrationError {
  constructor(message: string) {
    super(message, 'other');
  }
}

export function describeHttpError(e: HttpError): string {
  switch (e.tag) {
    case 'denied':
      return `denied: ${e.val}`;
    case 'timeout':
      return `timeout: ${e.val}`;
    case 'connect':
      return `connect: ${e.val}`;
    case 'too-large':
      return `response larger than ${e.val} bytes`;
    case 'rate-limited':
      return `rate limited by host: ${e.val}`;
    case 'invalid':
      return `invalid request: ${e.val}`;
  }
}

const STATUS_TEXT: Record<number, string> = {
  200: 'OK',
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  408: 'Request Timeout',
  409: 'Conflict',
  413: 'Payload Too Large',
  422: 'Unprocessable Entity',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

/** The reason phrase of common statuses, as providers' error messages quote it. */
export function statusText(status: number): string {
  return STATUS_TEXT[status] ?? '';
}

/** Anything a step threw, as the `step-error` the host records. */
export function toStepError(e: unknown): StepError {
  if (e instanceof IntegrationError) {
    return { tag: e.kind, val: e.message } as StepError;
  }
  if (e instanceof Error) {
    return { tag: 'other', val: `${e.name}: ${e.message}` };
  }
  return { tag: 'other', val: String(e) };
}
