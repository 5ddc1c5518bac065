"""The one boundary between the SDK and the host, in plain Python values.

In a component the calls go to the WIT imports (componentize-py's `wit_world`); natively,
where there is no `wit_world`, to the fake host of `corral_sdk.testing`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class HostError(Exception):
    """A WIT error variant: its case (`denied`, `timeout`, ...) and its text."""

    tag: str
    value: object

    def __str__(self) -> str:
        return f"{self.tag}: {self.value}"


def _tag(case: object) -> str:
    # componentize-py names a variant case `<Type>_<Case>` (`HttpError_TooLarge`).
    name = type(case).__name__.split("_", 1)[-1].rstrip("_")
    return "".join("-" + c.lower() if c.isupper() and i else c.lower() for i, c in enumerate(name))


class _Component:
    """The WIT imports of a component."""

    def __init__(self) -> None:
        from componentize_py_types import Err
        from wit_world.imports import config, graph, http, kv, log

        self.Err, self.config, self.graph, self.http, self.kv, self.log = Err, config, graph, http, kv, log

    def _call(self, f, *args):
        try:
            return f(*args)
        except self.Err as e:
            raise HostError(_tag(e.value), e.value.value) from None

    # config
    def config_get(self, name: str) -> str | None:
        return self._call(self.config.get, name)

    def has_secret(self, name: str) -> bool:
        return self.config.has_secret(name)

    def instance_id(self) -> str:
        return self.config.instance_id()

    def instance_name(self) -> str:
        return self.config.instance_name()

    # http
    def _request(self, req: dict):
        h = self.http
        auth = req.get("auth")
        if auth is None:
            wit_auth = h.Auth_None_()
        elif auth[0] == "bearer":
            wit_auth = h.Auth_Bearer(auth[1])
        else:
            wit_auth = h.Auth_Basic(h.BasicAuth(username=auth[1], password_secret=auth[2]))
        return h.Request(
            method=req["method"],
            url=req["url"],
            headers=list(req.get("headers", [])),
            auth=wit_auth,
            body=req.get("body"),
            timeout_ms=req.get("timeout_ms"),
        )

    @staticmethod
    def _response(r) -> dict:
        return {"status": r.status, "headers": list(r.headers), "body": bytes(r.body), "url": r.url}

    def fetch(self, req: dict) -> dict:
        return self._response(self._call(self.http.fetch, self._request(req)))

    def fetch_batch(self, reqs: list[dict]) -> list:
        out = []
        for r in self.http.fetch_batch([self._request(q) for q in reqs]):
            if type(r).__name__ == "Ok":
                out.append(self._response(r.value))
            else:
                out.append(HostError(_tag(r.value), r.value.value))
        return out

    def fetch_streaming(self, req: dict):
        head, body = self._call(self.http.fetch_streaming, self._request(req))
        head = {"status": head.status, "headers": list(head.headers), "body": b"", "url": head.url}
        return head, (lambda n: bytes(self._call(body.read, n)))

    # graph
    def emit(self, objects: list[str], relationships: bool):
        f = self.graph.emit_relationships if relationships else self.graph.emit_entities
        report = self._call(f, objects)
        return report.accepted, [(r.index, r.key, r.reason) for r in report.rejected]

    def find_entity(self, key: str) -> str | None:
        return self._call(self.graph.find_entity, key)

    def has_key(self, key: str) -> bool:
        return self.graph.has_key(key)

    def list_entities(self, type_name: str, cursor: int, limit: int):
        page = self._call(self.graph.list_entities, type_name, cursor, limit)
        return list(page.entities), page.next

    def previous_object(self, key: str) -> str | None:
        return self._call(self.graph.previous_object, key)

    def list_previous(self, type_name: str, cursor: int, limit: int):
        page = self._call(self.graph.list_previous, type_name, cursor, limit)
        return list(page.entities), page.next

    # log
    def log_line(self, level: str, message: str, fields: dict) -> None:
        lg = self.log

        def value(v):
            if isinstance(v, bool):
                return lg.FieldValue_Boolean(v)
            if isinstance(v, int) and -(2**63) <= v < 2**63:
                return lg.FieldValue_Integer(v)
            if isinstance(v, float):
                return lg.FieldValue_Float(v)
            return lg.FieldValue_Text("" if v is None else str(v))

        lg.log(lg.Level[level.upper()], message, [(k, value(v)) for k, v in fields.items()])

    # kv
    def kv_get(self, key: str) -> bytes | None:
        v = self.kv.get(key)
        return None if v is None else bytes(v)

    def kv_set(self, key: str, value: bytes) -> None:
        self._call(self.kv.set, key, value)

    def kv_delete(self, key: str) -> bool:
        return self.kv.delete(key)

    # connector
    def step_error(self, kind: str, message: str) -> Exception:
        from wit_world.exports import connector

        case = {
            "authentication": connector.StepError_Authentication,
            "config": connector.StepError_Config,
            "provider": connector.StepError_Provider,
        }.get(kind, connector.StepError_Other)
        return self.Err(case(message))


def _host():
    try:
        return _Component()
    except ImportError:
        from corral_sdk import testing

        return testing.FAKE


HOST = _host()
