"""Platform authorisation: who may do what in the platform, decided by Polar (oso).

The rules are ``platform/platform.polar``; this module loads them once, registers the
classes they name, and answers ``is_allowed`` / ``authorize``. It fails closed: a Polar
file that does not load, an action a resource does not have, or any error while querying
is a refusal, and the refusal says in words who may do it instead.

Data-use decisions (may this data flow for this purpose) are the Rego policy's job, not
this module's: a query that Polar lets an analyst ask is still checked by Rego at every
node.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar

from oso import Oso

from datatrust.errors import AccessDenied, SettingsError

__all__ = [
    "AccessLogOf",
    "AgencyDocuments",
    "AgencyResource",
    "CitizenOptOutOf",
    "ConsentRecordOf",
    "DataQuery",
    "DraftApproval",
    "NodeIngest",
    "OptOutList",
    "PersonRecordsAt",
    "PlatformActor",
    "PlatformAuthorizer",
    "platform_policy_path",
    "query_check",
]


def platform_policy_path() -> Path:
    """The shipped Polar rules, ``policies/platform/platform.polar``."""
    return Path(str(resources.files("datatrust.policies").joinpath("platform/platform.polar")))


def _require(value: Any, name: str, cls: str) -> None:
    if not isinstance(value, str) or not value.strip():
        raise SettingsError(f"{cls}.{name} must be a non-empty string, not {value!r}")


@dataclass(frozen=True, slots=True)
class PlatformActor:
    """The actor as Polar sees it: the fields of a verified token, nothing a caller chose.

    Built from a :class:`~datatrust.policies.Requester` (or anything with its fields) by
    :meth:`of`, so the Polar rules never touch an attribute the requester may lack.
    """

    subject: str
    agency: str | None
    roles: tuple[str, ...]
    client_id: str | None
    purposes: tuple[str, ...] | None
    person: str | None

    @classmethod
    def of(cls, requester: Any) -> PlatformActor:
        purposes = getattr(requester, "purposes", None)
        return cls(
            subject=str(getattr(requester, "subject", "anonymous")),
            agency=getattr(requester, "agency", None),
            roles=tuple(getattr(requester, "roles", ()) or ()),
            client_id=getattr(requester, "client_id", None),
            purposes=None if purposes is None else tuple(purposes),
            person=getattr(requester, "person", None),
        )

    def describe(self) -> str:
        if self.person is not None and not self.roles:
            return f"citizen {self.person!r}"
        roles = "/".join(self.roles) or "no role"
        agency = f" of agency {self.agency!r}" if self.agency else " of no agency"
        via = f" via client {self.client_id!r}" if self.client_id else ""
        return f"{roles} {self.subject!r}{agency}{via}"


class AgencyResource:
    """Base of the resources: each declares its actions and, per action, who may take it.

    ``RULES`` is the words of ``platform.polar`` for that resource; a refusal quotes it so
    the person refused learns who may act instead.
    """

    __slots__ = ()
    RULES: ClassVar[dict[str, str]] = {}

    def describe(self) -> str:
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class AgencyDocuments(AgencyResource):
    """An agency's data-sharing agreements and purpose entries."""

    agency: str
    RULES: ClassVar[dict[str, str]] = {
        "read": "only a DPO of that agency may read them",
        "edit": "only a DPO of that agency may edit them",
        "publish": "only a DPO of that agency may publish them",
    }

    def __post_init__(self) -> None:
        _require(self.agency, "agency", "AgencyDocuments")

    def describe(self) -> str:
        return f"the agreements and purpose entries of agency {self.agency!r}"


@dataclass(frozen=True, slots=True)
class DraftApproval(AgencyResource):
    """Approving a draft of an agency's documents written by ``author`` (a token subject)."""

    agency: str
    author: str
    RULES: ClassVar[dict[str, str]] = {
        "approve": "a draft needs approval by a second DPO of the same agency, not its author",
    }

    def __post_init__(self) -> None:
        _require(self.agency, "agency", "DraftApproval")
        _require(self.author, "author", "DraftApproval")

    def describe(self) -> str:
        return f"the draft by {self.author!r} of agency {self.agency!r}"


@dataclass(frozen=True, slots=True)
class ConsentRecordOf(AgencyResource):
    """One person's consent records held by one controller agency."""

    pseudonym: str
    controller: str
    RULES: ClassVar[dict[str, str]] = {
        "read": "only the person themself, or a DPO or consent administrator of the "
        "controller, may read them",
        "give": "only the person themself may give consent (staff record it instead)",
        "withdraw": "only the person themself may withdraw consent (staff revoke it instead)",
        "record": "only a DPO or consent administrator of the controller may record consent "
        "on a person's behalf",
        "revoke": "only a DPO or consent administrator of the controller may revoke consent "
        "on a person's behalf",
    }

    def __post_init__(self) -> None:
        _require(self.pseudonym, "pseudonym", "ConsentRecordOf")
        _require(self.controller, "controller", "ConsentRecordOf")

    def describe(self) -> str:
        return f"the consent records of {self.pseudonym!r} held by {self.controller!r}"


@dataclass(frozen=True, slots=True)
class AccessLogOf(AgencyResource):
    """Who used one person's data, as recorded in one agency's audit ledger."""

    pseudonym: str
    agency: str
    RULES: ClassVar[dict[str, str]] = {
        "read": "only the person themself, or a DPO of the agency keeping the ledger, may read it",
    }

    def __post_init__(self) -> None:
        _require(self.pseudonym, "pseudonym", "AccessLogOf")
        _require(self.agency, "agency", "AccessLogOf")

    def describe(self) -> str:
        return f"the access log of {self.pseudonym!r} at agency {self.agency!r}"


@dataclass(frozen=True, slots=True)
class PersonRecordsAt(AgencyResource):
    """How many records one agency's node holds about one person (the citizen's "Your data")."""

    pseudonym: str
    agency: str
    RULES: ClassVar[dict[str, str]] = {
        "count": "only the person themself may count the records held about them",
    }

    def __post_init__(self) -> None:
        _require(self.pseudonym, "pseudonym", "PersonRecordsAt")
        _require(self.agency, "agency", "PersonRecordsAt")

    def describe(self) -> str:
        return f"the records about {self.pseudonym!r} at agency {self.agency!r}"


@dataclass(frozen=True, slots=True)
class NodeIngest(AgencyResource):
    """Loading data into an agency's node, and its quarantine."""

    agency: str
    RULES: ClassVar[dict[str, str]] = dict.fromkeys(
        ("read", "ingest", "replay"), "only a node operator of that agency may manage its ingest"
    )

    def __post_init__(self) -> None:
        _require(self.agency, "agency", "NodeIngest")

    def describe(self) -> str:
        return f"ingest at the node of agency {self.agency!r}"


@dataclass(frozen=True, slots=True)
class DataQuery(AgencyResource):
    """A query of the trust's data made for ``agency`` under ``purpose``."""

    agency: str
    purpose: str
    RULES: ClassVar[dict[str, str]] = {
        "query": "an analyst, researcher, clinician, social worker, safeguarding lead or "
        "partner system queries only for its own agency and only for a purpose its access "
        "token allows",
    }

    def __post_init__(self) -> None:
        _require(self.agency, "agency", "DataQuery")
        _require(self.purpose, "purpose", "DataQuery")

    def describe(self) -> str:
        return f"data for agency {self.agency!r} for purpose {self.purpose!r}"


@dataclass(frozen=True, slots=True)
class OptOutList(AgencyResource):
    """The national data opt-out list cached at an agency's node."""

    agency: str
    RULES: ClassVar[dict[str, str]] = dict.fromkeys(
        ("read", "load"), "only a node operator or DPO of that agency may handle its opt-out list"
    )

    def __post_init__(self) -> None:
        _require(self.agency, "agency", "OptOutList")

    def describe(self) -> str:
        return f"the national data opt-out list at agency {self.agency!r}"


@dataclass(frozen=True, slots=True)
class CitizenOptOutOf(AgencyResource):
    """One person's own research-and-planning opt-out, registered at one agency's node."""

    pseudonym: str
    agency: str
    RULES: ClassVar[dict[str, str]] = {
        "read": "only the person themself may read their own opt-out",
        "register": "only the person themself may register their opt-out",
        "remove": "only the person themself may remove their opt-out",
    }

    def __post_init__(self) -> None:
        _require(self.pseudonym, "pseudonym", "CitizenOptOutOf")
        _require(self.agency, "agency", "CitizenOptOutOf")

    def describe(self) -> str:
        return f"the opt-out of {self.pseudonym!r} at agency {self.agency!r}"


_CLASSES: dict[str, type] = {
    "AccessLogOf": AccessLogOf,
    "AgencyDocuments": AgencyDocuments,
    "CitizenOptOutOf": CitizenOptOutOf,
    "ConsentRecordOf": ConsentRecordOf,
    "DataQuery": DataQuery,
    "DraftApproval": DraftApproval,
    "NodeIngest": NodeIngest,
    "OptOutList": OptOutList,
    "PersonRecordsAt": PersonRecordsAt,
    "PlatformActor": PlatformActor,
}


def _first_line(error: BaseException) -> str:
    """oso appends a help link on a second line; keep the message a person needs."""
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


class PlatformAuthorizer:
    """Loads the Polar rules once and decides, failing closed.

    A file that does not load does not raise here: the authorizer keeps the error
    (:attr:`load_error`) and refuses everything, naming it, so a node with broken rules
    serves no platform action rather than an unchecked one. Call :meth:`check` at start-up
    to fail loudly instead.
    """

    def __init__(self, path: Path | None = None) -> None:
        self.path = path if path is not None else platform_policy_path()
        self._lock = threading.Lock()  # one query at a time through the Polar VM
        self._oso: Oso | None = None
        self.load_error: str | None = None
        try:
            oso = Oso()
            for name, cls in _CLASSES.items():
                oso.register_class(cls, name=name)
            oso.load_files([str(self.path)])
            self._oso = oso
        except Exception as error:  # any fault loading the rules means: allow nothing
            self.load_error = (
                f"platform policy {self.path} could not be loaded: {_first_line(error)}"
            )

    def check(self) -> None:
        """Raise SettingsError if the rules did not load (for start-up checks)."""
        if self.load_error is not None:
            raise SettingsError(self.load_error)

    def is_allowed(self, actor: Any, action: str, resource: AgencyResource) -> bool:
        """True only if the rules allow it; False on any error."""
        return self._refusal(actor, action, resource) is None

    def authorize(self, actor: Any, action: str, resource: AgencyResource) -> None:
        """Return if allowed; otherwise raise AccessDenied with a reason a person can read."""
        reason = self._refusal(actor, action, resource)
        if reason is not None:
            raise AccessDenied(
                f"access denied: {reason}",
                action=action,
                resource=type(resource).__name__,
            )

    def _refusal(self, actor: Any, action: str, resource: AgencyResource) -> str | None:
        """None if allowed, else why not."""
        try:
            view = PlatformActor.of(actor)
            who = view.describe()
        except Exception as error:  # an actor we cannot even read
            return f"the requester could not be read ({error})"
        if self._oso is None:
            return f"{who} may not {action} anything: {self.load_error}"
        rules = getattr(type(resource), "RULES", {})
        if not isinstance(resource, AgencyResource) or action not in rules:
            known = ", ".join(sorted(rules)) or "none"
            return (
                f"{action!r} is not an action on {type(resource).__name__} "
                f"(its actions are: {known})"
            )
        try:
            with self._lock:
                allowed = self._oso.is_allowed(view, action, resource)
        except Exception as error:  # any fault on a decision path is a deny
            failure = _first_line(error)
            return f"{who} may not {action} {resource.describe()}: policy failed ({failure})"
        if allowed is True:
            return None
        return f"{who} may not {action} {resource.describe()}; {rules[action]}"


def query_check(authorizer: PlatformAuthorizer | None = None) -> Callable[[Any, str], str | None]:
    """The platform check a node and the gateway run before the data-use policy.

    Returns None when Polar lets the requester query for the purpose at all (an analyst,
    researcher, clinician or partner system, for its own agency, for a purpose its token
    allows), else the reason: a DPO's, a node's or a citizen's token is no way to query.
    """
    rules = authorizer or PlatformAuthorizer()

    def check(requester: Any, purpose: str) -> str | None:
        agency = getattr(requester, "agency", None)
        if not agency:
            return "the requester acts for no agency, so may query nothing"
        try:
            rules.authorize(requester, "query", DataQuery(agency, purpose))
        except AccessDenied as refusal:
            return refusal.message.removeprefix("access denied: ")
        return None

    return check
