"""The run's graph through the host: a `JobState` that emits in batches, and reads of this
run's entities and of the previous run's graph."""

from __future__ import annotations

import json

from corral_sdk._host import HOST, HostError
from corral_sdk.errors import IntegrationError

BATCH = 500
BATCH_BYTES = 4 << 20


class GraphFailure(IntegrationError):
    """The host refused a whole batch (denied type, a run limit, or bad input)."""


def _call(f, *args):
    try:
        return f(*args)
    except HostError as e:
        raise GraphFailure(f"graph {e.tag}: {e.value}") from None


class _Buffer:
    def __init__(self) -> None:
        self.items: list[str] = []
        self.size = 0

    def push(self, text: str) -> bool:
        self.items.append(text)
        self.size += len(text)
        return len(self.items) >= BATCH or self.size >= BATCH_BYTES

    def take(self) -> list[str]:
        items, self.items, self.size = self.items, [], 0
        return items


class JobState:
    """What a step emits and reads, as JupiterOne's `jobState`: objects buffered and sent
    in batches, entities before relationships; the step runner flushes what is left."""

    def __init__(self) -> None:
        self._entities = _Buffer()
        self._relationships = _Buffer()
        self.accepted = 0
        self.rejected: list[tuple[int, str, str]] = []

    def add_entity(self, entity: dict) -> dict:
        if self._entities.push(_text(entity)):
            self._flush_entities()
        return entity

    def add_entities(self, entities: list[dict]) -> None:
        for e in entities:
            self.add_entity(e)

    def add_relationship(self, relationship: dict) -> dict:
        if self._relationships.push(_text(relationship)):
            self._flush_relationships()
        return relationship

    def add_relationships(self, relationships: list[dict]) -> None:
        for r in relationships:
            self.add_relationship(r)

    def flush(self) -> None:
        self._flush_entities()
        self._flush_relationships()

    def has_key(self, key: str) -> bool:
        self.flush()
        return HOST.has_key(key)

    def find_entity(self, key: str) -> dict | None:
        self.flush()
        text = _call(HOST.find_entity, key)
        return None if text is None else json.loads(text)

    def iterate_entities(self, type_name: str):
        """Every entity of `type_name` this run emitted, in emission order."""
        self.flush()
        yield from _pages(HOST.list_entities, type_name)

    def previous_object(self, key: str) -> dict | None:
        text = _call(HOST.previous_object, key)
        return None if text is None else json.loads(text)

    def previous_of_type(self, type_name: str):
        yield from _pages(HOST.list_previous, type_name)

    def _flush_entities(self) -> None:
        batch = self._entities.take()
        if batch:
            self._record(_call(HOST.emit, batch, False))

    def _flush_relationships(self) -> None:
        self._flush_entities()
        batch = self._relationships.take()
        if batch:
            self._record(_call(HOST.emit, batch, True))

    def _record(self, report) -> None:
        accepted, rejected = report
        self.accepted += accepted
        self.rejected.extend(rejected)


def _text(obj: dict) -> str:
    # Compact, and strict: NaN and the infinities are not JSON.
    return json.dumps(obj, separators=(",", ":"), allow_nan=False)


def _pages(fetch, type_name: str):
    cursor = 0
    while cursor is not None:
        items, cursor = _call(fetch, type_name, cursor, BATCH)
        for text in items:
            yield json.loads(text)
