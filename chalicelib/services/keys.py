"""Rotating and revoking API keys; each change is an event, appended with the change itself.

A rotated key stops working in the same transaction that stores the new one, and a
revoked principal's keys are deleted in the transaction that marks it revoked, so
the very next request with an old key answers 401 (keys are read strongly
consistently). The operator's key is not stored: it is the `DREC_OPERATOR_KEY`
setting. Events carry no key material, not even hashes: a hash of a short-lived
secret published for ever would invite offline guessing.
"""

from __future__ import annotations

from typing import Any

from ..domain.errors import Conflict, RuleBroken, Unauthorized
from ..domain.ledger import events as ev
from ..domain.model import Principal, new_api_key
from ..domain.stores import KeyGone, KeysChanged
from ..domain.time import iso, now_utc
from .access import hash_key, require_operator
from .ports.registry import KeyStore, RegistryStore
from .registry import get_account, get_source

# A rotation or revocation retried this often when the other one changed the key ring meanwhile.
ATTEMPTS = 5
REVOKED_EVENT = {"source": ev.SOURCE_REVOKED, "account": ev.ACCOUNT_REVOKED}


def rotate_key(keys: KeyStore, principal: Principal, presented_key: str) -> dict[str, Any]:
    """A new key for the caller; the key it presented answers 401 from now on.

    Not replayable: the new key is shown once and never stored, so a retry with the old
    key is refused (401) rather than handing out a second key.
    """
    if principal.is_operator:
        raise RuleBroken("the operator's key is not stored by the registry: rotate it by changing the "
                         "DREC_OPERATOR_KEY setting of the deployment", field="X-Api-Key")
    old_hash = hash_key(presented_key)
    for _ in range(ATTEMPTS):
        api_key, rotated_at = new_api_key(), iso(now_utc())
        event = ev.NewEvent(ev.API_KEY_ROTATED, principal.id, principal.id, rotated_at,
                            {"principal_kind": principal.kind, "principal_id": principal.id,
                             "rotated_at": rotated_at})
        try:
            keys.rotate(principal.kind, principal.id, keys.ring(principal.id), old_hash, hash_key(api_key), event)
        except KeyGone as gone:
            raise Unauthorized("this key was rotated or revoked while the request ran; use the current key",
                               field="X-Api-Key") from gone
        except KeysChanged:
            continue  # the key ring changed under us (another rotation): read it again
        return {"api_key": api_key, "principal_kind": principal.kind, "principal_id": principal.id,
                "rotated_at": rotated_at}
    raise Conflict("the keys of this principal are changing under another request; retry", field="X-Api-Key")


def revoke(registry: RegistryStore, keys: KeyStore, principal: Principal, kind: str,
           principal_id: str) -> dict[str, Any]:
    """Revoke a source or an account: every key of it answers 401; its records stay readable.

    Idempotent: revoking a revoked principal answers with its record and changes nothing.
    """
    require_operator(principal, f"revoke {kind}s")
    read = get_source if kind == "source" else get_account
    for _ in range(ATTEMPTS):
        record = read(registry, principal_id)  # 404 when unknown
        if record.get("revoked_at"):
            return record
        revoked_at = iso(now_utc())
        event = ev.NewEvent(REVOKED_EVENT[kind], principal_id, principal.id, revoked_at,
                            {f"{kind}_id": principal_id, "revoked_at": revoked_at, "revoked_by": principal.id})
        try:
            keys.revoke(kind, principal_id, keys.ring(principal_id), revoked_at, principal.id, event)
        except KeysChanged:
            continue  # revoked meanwhile (answered above next time), or the key ring changed: read again
        return read(registry, principal_id)
    raise Conflict(f"the keys of {kind} {principal_id} are changing under another request; retry",
                   field=f"{kind}_id")
