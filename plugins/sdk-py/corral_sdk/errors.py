"""Errors a step raises, each reported to the host as the WIT `step-error` case it names."""

from __future__ import annotations


class IntegrationError(Exception):
    """An error with the `step-error` case it is reported as."""

    kind = "other"


class AuthenticationError(IntegrationError):
    """The provider refused the credentials."""

    kind = "authentication"


class ConfigError(IntegrationError):
    """The instance config is missing or malformed."""

    kind = "config"


class ProviderError(IntegrationError):
    """The provider failed, answered an error status, or answered garbage."""

    kind = "provider"

    @classmethod
    def status(cls, url: str, status: int) -> "ProviderError":
        """JupiterOne's `PROVIDER_API_ERROR` shape: "Provider API failed at URL: STATUS TEXT"."""
        return cls(f"Provider API failed at {url}: {status} {status_text(status)}".rstrip())


class HttpFailure(IntegrationError):
    """The host refused or failed a request (denial, limit, transport)."""

    def __init__(self, tag: str, value: object):
        super().__init__(describe_http_error(tag, value))
        self.tag = tag
        self.value = value


class DataModelError(IntegrationError):
    """An object that breaks the data model, refused where it is built."""


def describe_http_error(tag: str, value: object) -> str:
    if tag == "too-large":
        return f"response larger than {value} bytes"
    if tag == "rate-limited":
        return f"rate limited by host: {value}"
    if tag == "invalid":
        return f"invalid request: {value}"
    return f"{tag}: {value}"


_STATUS_TEXT = {
    200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
    408: "Request Timeout", 409: "Conflict", 413: "Payload Too Large",
    422: "Unprocessable Entity", 429: "Too Many Requests", 500: "Internal Server Error",
    502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout",
}


def status_text(status: int) -> str:
    """The reason phrase of common statuses, as providers' error messages quote it."""
    return _STATUS_TEXT.get(status, "")
