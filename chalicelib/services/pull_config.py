"""Configuring a source's pull: set, show, remove, run now, and its runs. Each change is a registry event.

The auth header's value goes to a secret (an SSM SecureString) under a new name for every
configuration that sets one, written before the configuration and deleted once no configuration
names it: two requests racing never leave a configuration naming the other's secret. Answers and
events never carry the value; events carry the URL without its query string.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets as tokens
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from ..domain.errors import Conflict, Forbidden, NotFound, RuleBroken
from ..domain.ledger import events as ev
from ..domain.model import Principal, PrincipalKind
from ..domain.pull import (
    CURSOR_SCOPE,
    Change,
    ConfigurePull,
    PullConfig,
    PullState,
    check_mapping,
    public_url,
    stamp,
)
from ..domain.stores import TransactionRefused
from ..domain.time import now_utc
from .ports.pull import PullStore, Secrets
from .ports.registry import RegistryStore

# (source_id, token) → the name of the secret holding that configuration's auth header value.
ParameterName = Callable[[str, str], str]


def require_pull_access(registry: RegistryStore, principal: Principal, source_id: str) -> None:
    """The operator, or the source itself; then the source must exist (404)."""
    if not (principal.is_operator or (principal.kind == PrincipalKind.SOURCE and principal.id == source_id)):
        raise Forbidden(f"{principal.kind} {principal.id} may not configure pulling for source {source_id}: only "
                        "the operator or that source may", field="source_id")
    if registry.source(source_id) is None:
        raise NotFound(f"no source {source_id!r}", field="source_id")


def fingerprint(key: bytes, command: ConfigurePull) -> str:
    """What makes a request the same configuration again (the auth value included, but only as an HMAC)."""
    text = json.dumps(asdict(command), sort_keys=True, separators=(",", ":"))
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


def pull_view(config: PullConfig, state: PullState, change: Change | None = None) -> dict[str, Any]:
    """A configuration as the API shows it: the auth header's name only, never its value or secret's name."""
    view: dict[str, Any] = {
        "source_id": config.source_id, **config.settings(),
        "auth_header": {"name": config.auth_header_name, "value": "(set; never shown)"}
        if config.auth_header_name else None,
        "generation": config.generation, "configured_at": config.configured_at,
        "configured_by": config.configured_by, "cursor": state.cursor, "next_due_at": state.next_due_at,
        "failures": state.failures, "running_until": state.lease_until, "last_run_id": state.last_run_id,
        "last_status": state.last_status, "last_error": state.last_error}
    if change:
        view["change"] = change
    return view


def _event_body(config: PullConfig) -> dict[str, Any]:
    settings = config.settings()
    del settings["start_cursor"]  # the partner's cursor: not the registry's to publish
    body = {**settings, "source_id": config.source_id, "url": public_url(config.url),
            "url_has_query": public_url(config.url) != config.url.split("#")[0],
            "auth_header_name": config.auth_header_name, "generation": config.generation}
    return {k: v for k, v in body.items() if v is not None}


def configure_pull(store: PullStore, secrets: Secrets, registry: RegistryStore, principal: Principal,
                   source_id: str, command: ConfigurePull, *, fingerprint_key: bytes,
                   parameter_name: ParameterName, check_destination: Callable[[str], None]) -> dict[str, Any]:
    """Set the source's pull configuration: created, unchanged (the same request again) or replaced.

    A replacement that changes where the cursor points (`CURSOR_SCOPE`) starts from `start_cursor` again;
    any other keeps the cursor. Either way the source is due at once and its failures are forgotten.
    """
    require_pull_access(registry, principal, source_id)
    source = registry.source(source_id)
    if source is not None and source.revoked_at:
        raise RuleBroken(f"source {source_id} was revoked at {source.revoked_at}: it is not pulled from",
                         field="source_id")
    check_mapping(command.mapping, command.signed)
    check_destination(command.url)
    mark = fingerprint(fingerprint_key, command)
    for _ in range(3):
        found = store.config(source_id)
        if found and found[0].fingerprint == mark:
            return pull_view(*found, change="unchanged")
        old = found[0] if found else None
        parameter = parameter_name(source_id, tokens.token_hex(8)) if command.auth_header else None
        now = stamp(now_utc())
        config = PullConfig(
            **command.settings(), source_id=source_id, auth_parameter=parameter,
            auth_header_name=command.auth_header[0] if command.auth_header else None, fingerprint=mark,
            generation=(old.generation + 1) if old else 1, configured_at=now, configured_by=principal.id)
        reset = old is None or any(getattr(old, f) != getattr(config, f) for f in CURSOR_SCOPE)
        event = ev.NewEvent(ev.PULL_RECONFIGURED if old else ev.PULL_CONFIGURED, source_id, principal.id, now,
                            _event_body(config))
        if parameter and command.auth_header:
            secrets.put(parameter, command.auth_header[1])
        try:
            store.save_config(config, event, old.generation if old else None, reset, due_at=now)
        except TransactionRefused:
            if parameter:
                secrets.delete([parameter])
            continue  # changed by another request meanwhile: compare with what it stored
        if old and old.auth_parameter:
            secrets.delete([old.auth_parameter])
        state = PullState(cursor=config.start_cursor if reset else (found[1].cursor if found else None),
                          next_due_at=now)
        return pull_view(config, state, change="replaced" if old else "created")
    raise Conflict("the pull configuration of this source is being changed by other requests; send it again",
                   field="source_id")


def get_pull(store: PullStore, registry: RegistryStore, principal: Principal, source_id: str) -> dict[str, Any]:
    require_pull_access(registry, principal, source_id)
    found = store.config(source_id)
    if found is None:
        raise NotFound(f"source {source_id} has no pull configuration", field="source_id")
    return pull_view(*found)


def remove_pull(store: PullStore, secrets: Secrets, registry: RegistryStore, principal: Principal,
                source_id: str) -> dict[str, Any]:
    """Stop pulling and delete the auth secret; removing what is not there answers `removed: false`."""
    require_pull_access(registry, principal, source_id)
    for _ in range(3):
        found = store.config(source_id)
        if found is None:
            return {"source_id": source_id, "removed": False}
        config = found[0]
        now = stamp(now_utc())
        event = ev.NewEvent(ev.PULL_REMOVED, source_id, principal.id, now,
                            {"source_id": source_id, "generation": config.generation, "removed_at": now})
        try:
            store.remove_config(source_id, config.generation, event)
        except TransactionRefused:
            continue
        if config.auth_parameter:
            secrets.delete([config.auth_parameter])
        return {"source_id": source_id, "removed": True, "removed_at": now}
    raise Conflict("the pull configuration of this source is being changed by other requests; send it again",
                   field="source_id")


def pull_now(store: PullStore, registry: RegistryStore, principal: Principal, source_id: str) -> dict[str, Any]:
    """Due at once; a run in progress is followed by another as soon as it ends."""
    require_pull_access(registry, principal, source_id)
    if store.config(source_id) is None:
        raise NotFound(f"source {source_id} has no pull configuration", field="source_id")
    now = stamp(now_utc())
    idle = store.mark_due(source_id, now)
    return {"source_id": source_id, "due_at": now, "running": not idle}


def list_runs(store: PullStore, registry: RegistryStore, principal: Principal, source_id: str, limit: int,
              cursor: str | None) -> dict[str, Any]:
    require_pull_access(registry, principal, source_id)
    items, next_cursor = store.runs(source_id, limit, cursor)
    return {"items": items, "next_cursor": next_cursor}

