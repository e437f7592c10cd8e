"""Value objects and enums. Pure: no I/O, no storage, no HTTP."""

from __future__ import annotations

import dataclasses
import enum
from typing import Any


class State(str, enum.Enum):
    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    COMPLETE = "complete"
    CANCELLED = "cancelled"
    SCHEDULED = "scheduled"
    STAGED = "staged"


ACTIVITY_STATES = frozenset(s.value for s in State)
FINAL_STATES = frozenset({State.COMPLETE.value, State.CANCELLED.value})


class Result(str, enum.Enum):
    SUCCESS = "success"
    FAILURE = "failure"


RESULTS = frozenset(r.value for r in Result)


class IntegrationType(str, enum.Enum):
    SCRIPT = "script"
    WEBHOOK = "webhook"


INTEGRATION_TYPES = frozenset(t.value for t in IntegrationType)
RUN_SKIPPED = "skipped"  # a run state: the integration was disabled automatically when it matched
RUN_ACTIVITY_TYPE = {"script": "integration.script", "webhook": "integration.webhook"}

DEFAULT_EVENTS = {"script": ("environment.push",), "webhook": ("*",)}
DEFAULT_STATES = ("complete",)
SECRET_MASK = "******"


@dataclasses.dataclass(frozen=True)
class Integration:
    """An integration as matching and the executors see it."""

    id: str
    project: str
    type: str
    events: tuple[str, ...]
    states: tuple[str, ...]
    result: str = "*"
    environments: tuple[str, ...] = ("*",)
    excluded_environments: tuple[str, ...] = ()
    enabled: bool = True
    ordered: bool = False
    script: str | None = None
    url: str | None = None
    shared_key: str | None = None
    previous_shared_key: str | None = None
    previous_key_expires_at: str | None = None
    retry: tuple[float, ...] | None = None
    standard_webhooks: bool = False
    description: str | None = None
    created_at: str | None = None
    updated_at: str | None = None
    # Auto-disable: when every delivery has failed since `failing_since` for longer than the
    # operator allows, the integration is disabled and `disabled_reason` says why.
    failing_since: str | None = None
    disabled_reason: str | None = None

    @property
    def auto_disabled(self) -> bool:
        return not self.enabled and self.disabled_reason is not None

    def config(self) -> dict[str, Any]:
        """The non-secret fields that are stored as the integration's configuration."""
        return {
            "events": list(self.events),
            "states": list(self.states),
            "result": self.result,
            "environments": list(self.environments),
            "excluded_environments": list(self.excluded_environments),
            "ordered": self.ordered,
            "script": self.script,
            "url": self.url,
            "retry": list(self.retry) if self.retry is not None else None,
            "standard_webhooks": self.standard_webhooks,
            "description": self.description,
            "previous_key_expires_at": self.previous_key_expires_at,
            "failing_since": self.failing_since,
            "disabled_reason": self.disabled_reason,
        }

    def public(self) -> dict[str, Any]:
        """The API form: secrets masked, type-specific fields only."""
        body: dict[str, Any] = {
            "id": self.id,
            "type": self.type,
            "project": self.project,
            "events": list(self.events),
            "states": list(self.states),
            "result": self.result,
            "environments": list(self.environments),
            "excluded_environments": list(self.excluded_environments),
            "enabled": self.enabled,
            "ordered": self.ordered,
            "description": self.description,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }
        if self.type == "script":
            body["script"] = self.script
        else:
            body["url"] = self.url
            body["shared_key"] = SECRET_MASK if self.shared_key else None
            body["standard_webhooks"] = self.standard_webhooks
            body["retry"] = list(self.retry) if self.retry is not None else None
            body["failing_since"] = self.failing_since
            body["disabled_reason"] = self.disabled_reason
            if self.previous_shared_key and self.previous_key_expires_at:
                body["previous_key_expires_at"] = self.previous_key_expires_at
        return body


@dataclasses.dataclass(frozen=True)
class Variable:
    id: str
    integration: str
    name: str
    value: str
    is_json: bool = False
    is_sensitive: bool = False
    attributes: dict[str, Any] = dataclasses.field(default_factory=dict)
    created_at: str | None = None
    updated_at: str | None = None

    def public(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "is_json": self.is_json,
            "is_sensitive": self.is_sensitive,
            "attributes": dict(self.attributes),
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }
        if not self.is_sensitive:
            body["value"] = self.value
        return body


@dataclasses.dataclass(frozen=True)
class Token:
    id: str
    project: str | None
    read_only: bool
    description: str | None
    created_at: str
    revoked: bool = False

    @property
    def is_admin(self) -> bool:
        return self.project is None and not self.read_only

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "project": self.project,
            "read_only": self.read_only,
            "description": self.description,
            "created_at": self.created_at,
        }


@dataclasses.dataclass(frozen=True)
class Job:
    """A claimed unit of work: one run to execute (or to attempt again)."""

    id: int
    run_pk: int
    run_id: str
    project: str
    kind: str
    attempts: int
    lease_owner: str


@dataclasses.dataclass(frozen=True)
class Attempt:
    number: int
    started_at: str
    duration_ms: float
    status: int | None
    response: str | None
    error: str | None
