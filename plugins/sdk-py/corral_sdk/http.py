"""Requests through the host: credentials by reference, retries that honour the provider's
Retry-After, paging, many requests at once, bodies read as they stream."""

from __future__ import annotations

import json as _json
import math
import time
from dataclasses import dataclass
from urllib.parse import quote

from corral_sdk._host import HOST, HostError
from corral_sdk.errors import AuthenticationError, HttpFailure, ProviderError, describe_http_error, status_text


def request(url: str, *, method: str = "GET", headers: dict | None = None, bearer: str | None = None,
            basic: tuple[str, str] | None = None, json=None, body: bytes | None = None,
            timeout_ms: int | None = None) -> dict:
    """A request. `bearer` names a secret config field (never its value); `basic` is a
    literal user name and the name of a secret field."""
    hdrs = list((headers or {}).items())
    if json is not None:
        body = _json.dumps(json).encode()
        if not any(k.lower() == "content-type" for k, _ in hdrs):
            hdrs.append(("content-type", "application/json"))
    auth = ("bearer", bearer) if bearer is not None else ("basic", *basic) if basic is not None else None
    return {"method": method, "url": url, "headers": hdrs, "auth": auth, "body": body, "timeout_ms": timeout_ms}


def header(response: dict, name: str) -> str | None:
    lower = name.lower()
    return next((v for k, v in response["headers"] if k.lower() == lower), None)


def json_of(response: dict):
    """The body as JSON; garbage is a `ProviderError` naming the URL."""
    try:
        return _json.loads(response["body"], parse_constant=_no_constant)
    except ValueError as e:
        raise ProviderError(f"{response['url']}: the provider answered something that is not JSON ({e})") from None


def _no_constant(name: str):
    # `NaN` and `Infinity` are not JSON (Python reads them unless told not to).
    raise ValueError(f"{name} is not a JSON value")


def ok(response: dict) -> dict:
    """The response if its status is 2xx, else a `ProviderError` in JupiterOne's shape."""
    if 200 <= response["status"] < 300:
        return response
    raise ProviderError.status(response["url"], response["status"])


@dataclass(frozen=True)
class Retry:
    max_attempts: int = 10
    base_delay: float = 0.25
    max_delay: float = 30.0
    retry_server_errors: bool = True


DEFAULT_RETRY = Retry()
NO_RETRY = Retry(max_attempts=1)


def _retry_after(response: dict) -> float | None:
    for name in ("retry-after", "ratelimit-reset", "x-ratelimit-reset"):
        v = header(response, name)
        try:
            secs = float(v.strip()) if v is not None else None
        except ValueError:
            secs = None
        if secs is not None and math.isfinite(secs) and secs >= 0:
            return secs
    return None


def _delay_for(retry: Retry, outcome, attempt: int) -> float | None:
    """Seconds to wait before retrying, or `None` when the outcome is final. The provider's
    delay is a floor, never a reason to retry sooner than the backoff."""
    if attempt + 1 >= retry.max_attempts:
        return None
    backoff = min(retry.base_delay * 2 ** min(attempt, 16), retry.max_delay)
    if isinstance(outcome, HostError):
        return backoff if outcome.tag in ("timeout", "connect") else None
    status = outcome["status"]
    if status == 429 or (status >= 500 and retry.retry_server_errors):
        return min(max(_retry_after(outcome) or backoff, backoff), retry.max_delay)
    return None


def fetch(req: dict, retry: Retry = DEFAULT_RETRY) -> dict:
    """One request, retried per `retry`; a non-2xx answer not retried is returned for the
    caller to judge, a host refusal or transport failure raised as `HttpFailure`."""
    attempt = 0
    while True:
        try:
            outcome = HOST.fetch(req)
        except HostError as e:
            outcome = e
        delay = _delay_for(retry, outcome, attempt)
        if delay is None:
            if isinstance(outcome, HostError):
                raise HttpFailure(outcome.tag, outcome.value)
            return outcome
        time.sleep(delay)
        attempt += 1


def get_json(url: str, retry: Retry = DEFAULT_RETRY, **options):
    """`GET url` (retried), its status checked, its body parsed as JSON."""
    return json_of(ok(fetch(request(url, **options), retry)))


def fetch_all(reqs: list[dict], retry: Retry = DEFAULT_RETRY) -> list:
    """Many requests at once through the host's batch fetch, in request order; each a
    response or an `HttpFailure`. Those needing a retry are sent again together."""
    results: list = [None] * len(reqs)
    pending = list(range(len(reqs)))
    attempt = 0
    while pending:
        answers = HOST.fetch_batch([reqs[i] for i in pending])
        again, wait = [], 0.0
        for i, outcome in zip(pending, answers):
            delay = _delay_for(retry, outcome, attempt)
            if delay is None:
                results[i] = HttpFailure(outcome.tag, outcome.value) if isinstance(outcome, HostError) else outcome
            else:
                again.append(i)
                wait = max(wait, delay)
        if again:
            time.sleep(wait)
        pending = again
        attempt += 1
    return results


def check_credentials(req: dict, passes=lambda s: 200 <= s < 300, retry: Retry = DEFAULT_RETRY) -> dict:
    """One request whose failure means the credentials (or URL) are wrong: JupiterOne's
    "Provider authentication failed at URL: ..." as an `AuthenticationError`."""
    try:
        r = fetch(req, retry)
    except HttpFailure as e:
        raise AuthenticationError(f"Provider authentication failed at {req['url']}: {describe_http_error(e.tag, e.value)}") from None
    if not passes(r["status"]):
        why = f"{r['status']} {status_text(r['status'])}".rstrip()
        raise AuthenticationError(f"Provider authentication failed at {req['url']}: {why}")
    return r


def offset_pages(page):
    """Offset paging: `page(offset)` returns a page's rows; advances by the rows received
    (a provider capping pages below the size asked loses none); ends at an empty page."""
    offset = 0
    while True:
        rows = page(offset)
        if not rows:
            return
        offset += len(rows)
        yield rows


def cursor_pages(page):
    """Cursor paging: `page(cursor)` returns `(rows, next)`; ends when there is no next
    cursor, or the provider hands back the one it was just given."""
    cursor = None
    while True:
        rows, nxt = page(cursor)
        if rows:
            yield rows
        if nxt in (None, "") or nxt == cursor:
            return
        cursor = nxt


def encode_query_value(v: str) -> str:
    """Percent-encodes a query or path value (RFC 3986 unreserved characters kept)."""
    return quote(v, safe="-_.~")


MAX_LINE_BYTES = 16 << 20


def lines(req: dict, retry: Retry = DEFAULT_RETRY):
    """The lines of a streamed body (JSONL exports), read a piece at a time; empty lines
    skipped, a trailing CR removed. Retried on its head before any body is read."""
    attempt = 0
    while True:
        try:
            head, read = HOST.fetch_streaming(req)
            outcome = head
        except HostError as e:
            outcome, read = e, None
        delay = _delay_for(retry, outcome, attempt)
        if delay is None:
            break
        time.sleep(delay)
        attempt += 1
    if isinstance(outcome, HostError):
        raise HttpFailure(outcome.tag, outcome.value)
    ok(outcome)
    buf = b""
    while True:
        try:
            chunk = read(64 << 10)
        except HostError as e:
            raise HttpFailure(e.tag, e.value) from None
        if not chunk:
            break
        buf += chunk
        *complete, buf = buf.split(b"\n")
        for line in complete:
            text = line.decode("utf-8", "replace").removesuffix("\r")
            if text:
                yield text
        if len(buf) > MAX_LINE_BYTES:
            raise ProviderError(f"a line longer than {MAX_LINE_BYTES} bytes")
    rest = buf.decode("utf-8", "replace").removesuffix("\r")
    if rest:
        yield rest
