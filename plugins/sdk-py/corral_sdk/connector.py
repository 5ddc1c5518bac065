"""A connector as the host sees it (the WIT `connector` export), declared the way a
JupiterOne integration is: config fields, steps with `depends_on`, each step a handler
given a `JobState`."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Callable

from corral_sdk._host import HOST
from corral_sdk.capabilities import Capabilities
from corral_sdk.errors import ConfigError, IntegrationError
from corral_sdk.graph import JobState


@dataclass
class ConfigField:
    name: str
    description: str
    secret: bool = False
    optional: bool = False
    default: str | None = None


@dataclass
class Step:
    id: str
    name: str
    handler: Callable[[JobState], None]
    entities: list[tuple[str, str, str]] = field(default_factory=list)
    """(resource name, `_type`, `_class`) of each entity type the step emits."""
    relationships: list[tuple[str, str, str, str]] = field(default_factory=list)
    """(`_type`, `_class`, source type, target type) of each relationship type."""
    depends_on: list[str] = field(default_factory=list)


@dataclass
class Definition:
    id: str
    name: str
    version: str
    description: str
    config: list[ConfigField]
    capabilities: Capabilities
    steps: list[Step]
    validate: Callable[[], None] | None = None
    disabled_steps: Callable[[], list[str]] | None = None


def _run(handler, *args) -> None:
    """Runs a handler with a fresh `JobState` and sends what it left buffered, also when it
    failed (what a step emitted before its error is kept, as in the Rust SDK). A failed
    send is the step's error only when the handler itself succeeded."""
    job = JobState()
    failure = None
    try:
        handler(job, *args) if args else handler(job)
    except Exception as e:  # a bug in the step too: reported, never a trap
        failure = e
    try:
        job.flush()
    except Exception as e:
        failure = failure or e
    if failure is None:
        return
    if isinstance(failure, IntegrationError):
        raise HOST.step_error(failure.kind, str(failure)) from None
    raise HOST.step_error("other", f"{type(failure).__name__}: {failure}") from None


def manifest_of(d: Definition):
    from wit_world.exports import connector as c

    return c.PluginManifest(
        id=d.id,
        version=d.version,
        name=d.name,
        description=d.description,
        config_fields=[c.ConfigField(f.name, f.secret, f.optional, f.description, f.default) for f in d.config],
        steps=[
            c.Step(
                id=s.id,
                name=s.name,
                entities=[c.EntityType(*e) for e in s.entities],
                relationships=[c.RelationshipType(t, cl, src, dst, False) for t, cl, src, dst in s.relationships],
                depends_on=list(s.depends_on),
            )
            for s in d.steps
        ],
        capabilities=json.dumps(d.capabilities.to_json()),
    )


def define_connector(d: Definition):
    """The class componentize-py exports: `Connector = define_connector(Definition(...))`
    in the app module."""

    def _unknown(_job, step_id):
        raise ConfigError(f"unknown step {step_id}")

    class Connector:
        definition = d

        def manifest(self):
            return manifest_of(d)

        def validate(self) -> None:
            _run(lambda _job: d.validate() if d.validate else None)

        def disabled_steps(self) -> list[str]:
            return list(d.disabled_steps()) if d.disabled_steps else []

        def run_step(self, step_id: str) -> None:
            step = next((s for s in d.steps if s.id == step_id), None)
            if step is None:
                _run(_unknown, step_id)
            else:
                _run(step.handler)

    return Connector
