"""Who may act: API keys, the operator, sources acting for the accounts they registered."""

from __future__ import annotations

import hashlib
import hmac

from ..domain.errors import Forbidden, NotFound, Unauthorized
from ..domain.model import OPERATOR_ID, Principal, PrincipalKind
from ..domain.registry import Account, may_act_for
from .ports.registry import KeyLookup

__all__ = ["KeyLookup", "account_or_404", "authenticate", "hash_key", "may_act_for", "require_acting_for",
           "require_operator"]


def hash_key(api_key: str) -> str:
    return hashlib.sha256(api_key.encode("utf-8")).hexdigest()


def authenticate(store: KeyLookup, operator_key: str | None, api_key: str | None) -> Principal:
    if not api_key:
        raise Unauthorized("this write needs an API key in the X-Api-Key header", field="X-Api-Key")
    if operator_key and hmac.compare_digest(api_key.encode(), operator_key.encode()):
        return Principal(PrincipalKind.OPERATOR, OPERATOR_ID)
    found = store.principal_for_key_hash(hash_key(api_key))
    if not found:
        raise Unauthorized("the X-Api-Key is not known to this registry (a rotated or revoked key no longer "
                           "works: use the current one)", field="X-Api-Key")
    return Principal(*found)


def require_operator(principal: Principal, action: str) -> None:
    if not principal.is_operator:
        raise Forbidden(f"only the operator may {action}")


def account_or_404(store: KeyLookup, account_id: str, field_name: str = "account_id") -> Account:
    account = store.account(account_id)
    if not account:
        raise NotFound(f"no account {account_id!r}", field=field_name)
    return account


def require_acting_for(principal: Principal, account: Account, action: str) -> None:
    if not may_act_for(principal, account):
        who = "the operator, the account itself"
        if account.registered_by.startswith("src-"):
            who += f" or the source that registered it ({account.registered_by})"
        raise Forbidden(f"{principal.kind} {principal.id} may not {action} for account "
                        f"{account.account_id}: only {who} may")
