"""A fake host for native unit tests of step code: config values and secrets, HTTP answers
(given one by one, or read from a `corral run --record` recording), and what the steps
asked for, emitted and logged. Natively (no `wit_world`) the SDK's calls come here.

What the fake does not do, which a real run (`corral plugin test`) does: the policy and
`secret:Use` (every recorded request is answered); the data-model rules other than
duplicate keys; manifest defaults for unset config fields; waiting is real.
"""

from __future__ import annotations

import json
from collections import defaultdict, deque

from corral_sdk._host import HostError


class FakeHost:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.config: dict[str, str] = {}
        self.secrets: set[str] = set()
        self.instance = ("test-instance", "Test instance")
        self.answers: dict[tuple, deque] = defaultdict(deque)
        self.requests: list[dict] = []
        self.emitted: list[tuple[bool, dict]] = []
        self.keys: set[str] = set()
        self.previous: list[dict] = []
        self.kv: dict[str, bytes] = {}
        self.logs: list[tuple[str, str, dict]] = []

    # config
    def config_get(self, name):
        if name in self.secrets:
            raise HostError("secret", name)
        return self.config.get(name)

    def has_secret(self, name):
        return name in self.secrets

    def instance_id(self):
        return self.instance[0]

    def instance_name(self):
        return self.instance[1]

    # http
    def fetch(self, req):
        self.requests.append(req)
        queue = self.answers.get((req["method"], req["url"], req.get("body")))
        if not queue:
            raise HostError("invalid", f"no recording of {req['method']} {req['url']}")
        return queue.popleft()

    def fetch_batch(self, reqs):
        out = []
        for r in reqs:
            try:
                out.append(self.fetch(r))
            except HostError as e:
                out.append(e)
        return out

    def fetch_streaming(self, req):
        r = self.fetch(req)
        body = [r["body"]]

        def read(n):
            piece, body[0] = body[0][: max(1, n)], body[0][max(1, n):]
            return piece

        return dict(r, body=b""), read

    # graph
    def emit(self, objects, relationships):
        accepted, rejected = 0, []
        for i, text in enumerate(objects):
            obj = json.loads(text)
            key = obj.get("_key") if isinstance(obj, dict) else None
            if not isinstance(key, str) or not key:
                rejected.append((i, "", "no _key"))
            elif key in self.keys:
                rejected.append((i, key, "duplicate _key"))
            else:
                self.keys.add(key)
                self.emitted.append((relationships, obj))
                accepted += 1
        return accepted, rejected

    def find_entity(self, key):
        return next((json.dumps(o) for rel, o in self.emitted if not rel and o["_key"] == key), None)

    def has_key(self, key):
        return key in self.keys

    @staticmethod
    def _page(objects, cursor, limit):
        items = objects[cursor:cursor + limit]
        nxt = cursor + len(items) if cursor + len(items) < len(objects) else None
        return [json.dumps(o) for o in items], nxt

    def list_entities(self, type_name, cursor, limit):
        return self._page([o for rel, o in self.emitted if not rel and o.get("_type") == type_name], cursor, limit)

    def previous_object(self, key):
        return next((json.dumps(o) for o in self.previous if o.get("_key") == key), None)

    def list_previous(self, type_name, cursor, limit):
        objs = sorted((o for o in self.previous if o.get("_type") == type_name), key=lambda o: o["_key"])
        return self._page(objs, cursor, limit)

    # log, kv
    def log_line(self, level, message, fields):
        self.logs.append((level, message, dict(fields)))

    def kv_get(self, key):
        return self.kv.get(key)

    def kv_set(self, key, value):
        if not key:
            raise HostError("invalid", "empty key")
        self.kv[key] = bytes(value)

    def kv_delete(self, key):
        return self.kv.pop(key, None) is not None

    # connector
    def step_error(self, kind, message):
        return StepFailed(kind, message)


class StepFailed(Exception):
    """A step's error as the host would record it (natively)."""

    def __init__(self, kind: str, message: str):
        super().__init__(f"{kind}: {message}")
        self.kind = kind
        self.message = message


FAKE = FakeHost()


def reset() -> None:
    """Forgets everything: config, answers, requests, emitted objects, kv and logs."""
    FAKE.reset()


def config(name: str, value: str) -> None:
    FAKE.config[name] = value


def secret(name: str) -> None:
    """A secret field that has a value (the plugin never reads it)."""
    FAKE.secrets.add(name)


def answer(method: str, url: str, status: int, body: str | bytes, headers=(("content-type", "application/json"),)) -> None:
    """One answer to `method url` (no request body), given once."""
    data = body.encode() if isinstance(body, str) else body
    FAKE.answers[(method, url, None)].append({"status": status, "headers": list(headers), "body": data, "url": url})


def _bytes(v):
    if isinstance(v, str):
        return v.encode()
    if isinstance(v, dict) and isinstance(v.get("bytes"), list):
        return bytes(v["bytes"])
    return None


def recording(path: str) -> int:
    """The answers of a recording (one exchange per line), each given once, in order; how
    many were read. A line that is not an exchange is an error naming it."""
    n = 0
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f, 1):
            if not line.strip():
                continue
            e = json.loads(line)
            body = _bytes(e.get("body"))
            if not (isinstance(e.get("method"), str) and isinstance(e.get("url"), str)
                    and isinstance(e.get("status"), int) and body is not None):
                raise ValueError(f"{path}: line {i}: not an exchange")
            request_body = _bytes(e["requestBody"]) if "requestBody" in e else None
            FAKE.answers[(e["method"], e["url"], request_body)].append({
                "status": e["status"],
                "headers": [tuple(h) for h in e.get("headers", [])],
                "body": body,
                "url": e.get("finalUrl", e["url"]),
            })
            n += 1
    return n


def previous(objects: list[dict]) -> None:
    FAKE.previous = list(objects)


def requests() -> list[dict]:
    return list(FAKE.requests)


def entities() -> list[dict]:
    return [o for rel, o in FAKE.emitted if not rel]


def relationships() -> list[dict]:
    return [o for rel, o in FAKE.emitted if rel]


def logs() -> list[tuple[str, str, dict]]:
    return list(FAKE.logs)


def unused() -> list[str]:
    """Answers given that no request asked for."""
    return [f"{m} {u}" for (m, u, _), q in FAKE.answers.items() for _ in q]
