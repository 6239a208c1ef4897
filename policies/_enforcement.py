"""The one enforcement point every read of agency data passes through.

``decide`` takes what a request touches (its purpose and the (type, field) pairs of its
operation) and returns a ``Permit`` or raises a refusal that says why. It denies by
default: a purpose no rule names, a field the policy does not classify, or any error while
deciding is a refusal. Resolvers cannot reach the store without the ``Permit`` this returns,
so there is no path to data around it. The walking skeleton's policy is a small document
(``data/skeleton.json``); the policy issue replaces the rules with Rego over the trust's
agreements behind this same function.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from datatrust.errors import AccessDenied, DatatrustError, SettingsError
from datatrust.trust import PurposeRegister

__all__ = [
    "AccessRequest",
    "DataUsePolicy",
    "Permit",
    "Requester",
    "decide",
    "describe_fields",
    "skeleton_policy",
]

FieldRef = tuple[str, str]


@dataclass(frozen=True, slots=True, kw_only=True)
class Requester:
    """Who asks, as a verified access token says (never as a header the caller chose).

    ``purposes`` are the purposes the token allows; ``None`` only for in-process callers
    that no token stands behind (tests of the policy itself).
    """

    subject: str = "anonymous"
    agency: str | None = None
    roles: tuple[str, ...] = ()
    client_id: str | None = None
    purposes: tuple[str, ...] | None = None
    issuer: str | None = None

    @property
    def label(self) -> str:
        """How the audit ledger names this requester: agency/subject via client."""
        who = f"{self.agency or '-'}/{self.subject}"
        return f"{who} via {self.client_id}" if self.client_id else who


@dataclass(frozen=True, slots=True, kw_only=True)
class AccessRequest:
    purpose: str | None
    node: str
    fields: frozenset[FieldRef]
    requester: Requester = field(default_factory=Requester)


@dataclass(frozen=True, slots=True, kw_only=True)
class Permit:
    """Proof that policy allowed this request; the data layer demands one."""

    purpose: str
    fields: frozenset[FieldRef]
    policy_version: str
    obligations: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class DataUsePolicy:
    version: str
    field_classes: dict[str, dict[str, str]]
    allowed_classes: dict[str, frozenset[str]]  # purpose id -> field classes it may read

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> DataUsePolicy:
        try:
            allowed = {
                rule["purpose"]: frozenset(rule["allow_classes"]) for rule in document["rules"]
            }
            return cls(str(document["version"]), dict(document["field_classes"]), allowed)
        except (KeyError, TypeError) as error:
            raise SettingsError(f"data-use policy document is malformed: {error}") from error

    def field_class(self, type_name: str, field_name: str) -> str | None:
        return self.field_classes.get(type_name, {}).get(field_name)


def skeleton_policy() -> DataUsePolicy:
    text = resources.files("datatrust.policies").joinpath("data/skeleton.json").read_text("utf-8")
    return DataUsePolicy.from_document(json.loads(text))


def decide(request: AccessRequest, register: PurposeRegister, policy: DataUsePolicy) -> Permit:
    """Permit ``request`` or raise PurposeMissing, PurposeUnknown or AccessDenied.

    Fails closed: any unexpected error while deciding becomes AccessDenied.
    """
    purpose = register.resolve(request.purpose)
    allowed = request.requester.purposes
    if allowed is not None and purpose.id not in allowed:
        raise AccessDenied(
            f"access denied: your access token does not allow purpose {purpose.id!r} "
            f"(it allows: {', '.join(allowed) or 'none'})",
            purpose=purpose.id,
            node=request.node,
        )
    try:
        return _decide(request, purpose.id, policy)
    except DatatrustError:
        raise
    except Exception as error:  # any fault on a decision path is a deny
        raise AccessDenied(
            f"access denied: the policy could not be evaluated ({type(error).__name__})",
            purpose=purpose.id,
            policy_version=policy.version,
        ) from error


def _decide(request: AccessRequest, purpose_id: str, policy: DataUsePolicy) -> Permit:
    allowed = policy.allowed_classes.get(purpose_id)
    if not allowed:
        raise AccessDenied(
            f"access denied: no agreement of the trust allows purpose {purpose_id!r} "
            f"at node {request.node!r} (policy {policy.version})",
            purpose=purpose_id,
            node=request.node,
            policy_version=policy.version,
        )
    refused = sorted(
        f"{type_name}.{field_name}"
        for type_name, field_name in request.fields
        if policy.field_class(type_name, field_name) not in allowed
    )
    if refused:
        raise AccessDenied(
            f"access denied: purpose {purpose_id!r} may not read {', '.join(refused)} "
            f"at node {request.node!r} (policy {policy.version} allows only "
            f"{', '.join(sorted(allowed))} fields for it)",
            purpose=purpose_id,
            node=request.node,
            fields=refused,
            policy_version=policy.version,
        )
    return Permit(purpose=purpose_id, fields=request.fields, policy_version=policy.version)


def describe_fields(fields: Iterable[FieldRef]) -> tuple[str, ...]:
    return tuple(sorted(f"{t}.{f}" for t, f in fields))
