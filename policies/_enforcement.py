"""The one enforcement point every read of agency data passes through.

``PolicyRuntime.decide`` takes what a request touches (requester, purpose, node, the
(type, field) pairs of its operation and whether it asks only for aggregates) and returns a
``Permit`` carrying the deciding agreement and its obligations, or raises a refusal that
says why. It denies by default: an unknown purpose, a purpose the token does not allow, a
field no agreement shares, a policy that gives no decision, or any error while deciding
is a refusal. Resolvers cannot reach the store without the ``Permit`` this returns, so
there is no path to data around it.

The rules are the data-use Rego (``policies/datause``) over the trust's published
documents; the runtime evaluates them with the embedded or the OPA engine, caches each
decision per (requester, purpose, request shape) for the policy version that made it, and
picks up a newly published version without a restart.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from datatrust.errors import AccessDenied, DatatrustError
from datatrust.policies._engines import Decision, Obligations
from datatrust.trust import PurposeRegister

__all__ = [
    "DATAUSE_POLICY_DIR",
    "AccessRequest",
    "Permit",
    "PolicyRuntime",
    "PolicySnapshot",
    "Requester",
    "describe_fields",
    "gateway_view",
    "require_permit",
    "shipped_policy",
]

logger = logging.getLogger("datatrust.policies")

FieldRef = tuple[str, str]
DATAUSE_POLICY_DIR = Path(__file__).parent / "datause"
"""The vetted data-use Rego, shipped with the product (DPOs change documents, not this)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Requester:
    """Who asks, as a verified access token says (never as a header the caller chose).

    ``purposes`` are the purposes the token allows; ``None`` only for in-process callers
    that no token stands behind (tests of the policy itself). ``person`` is the trust
    pseudonym of a citizen acting for themselves, when the token names one.
    """

    subject: str = "anonymous"
    agency: str | None = None
    roles: tuple[str, ...] = ()
    client_id: str | None = None
    purposes: tuple[str, ...] | None = None
    issuer: str | None = None
    person: str | None = None

    @property
    def label(self) -> str:
        """How the audit ledger names this requester: agency/subject via client."""
        who = f"{self.agency or '-'}/{self.subject}"
        return f"{who} via {self.client_id}" if self.client_id else who


@dataclass(frozen=True, slots=True, kw_only=True)
class AccessRequest:
    """What one request touches; ``aggregate`` is true when it reads no record-level type."""

    purpose: str | None
    node: str
    fields: frozenset[FieldRef]
    requester: Requester = field(default_factory=Requester)
    aggregate: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class Permit:
    """Proof that policy allowed this request, with what the data layer must then do.

    The data layer demands one: it applies ``obligations`` (row filters as SQL, masks,
    pseudonymised outputs, disclosure control) where the data is read.
    """

    purpose: str
    fields: frozenset[FieldRef]
    policy_version: str
    agreement: str | None = None
    obligations: Obligations = field(default_factory=Obligations)
    reasons: tuple[str, ...] = ()
    decided_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def is_masked(self, type_name: str, field_name: str) -> bool:
        return f"{type_name}.{field_name}" in self.obligations.mask

    def is_pseudonymised(self, type_name: str, field_name: str) -> bool:
        return f"{type_name}.{field_name}" in self.obligations.pseudonymise

    def row_filters(self, kind: str) -> list[dict[str, Any]]:
        return [f for f in self.obligations.row_filters if f.get("kind") == kind]


def require_permit(value: object) -> Permit:
    """``value`` if it is a Permit, else a refusal: no read of agency data goes without one."""
    if not isinstance(value, Permit):
        raise AccessDenied("access denied: no policy decision covers this read")
    return value


@dataclass(frozen=True, slots=True)
class PolicySnapshot:
    """One version of the trust's documents, as the runtime loads them."""

    stamp: str
    policy_version: str
    register: dict[str, Any]
    agreements: dict[str, Any]


PolicySource = Callable[[], PolicySnapshot]
StampReader = Callable[[], str | None]
PlatformCheck = Callable[[Requester, str], str | None]
"""Polar's answer to "may this requester query for this purpose at all": None, or why not."""


class _Loaded:
    """A policy version ready to decide: its engine, register and decision cache."""

    __slots__ = ("cache", "engine", "register", "snapshot")

    def __init__(self, snapshot: PolicySnapshot, engine: Any, register: PurposeRegister) -> None:
        self.snapshot = snapshot
        self.engine = engine
        self.register = register
        self.cache: dict[tuple[Any, ...], Decision] = {}


def gateway_view(documents: dict[str, Any]) -> dict[str, Any]:
    """Add a ``gateway`` node to each agreement: the fields it shares at any node.

    The gateway checks each request too (defence in depth) before planning; it sees the
    composed schema, so it asks about every field an agreement shares anywhere. Where
    nodes give one field different forms, the gateway takes the most restrictive.
    """
    strictness = ["identifiable", "pseudonymised", "masked", "aggregate-only"]
    for agreement in documents.get("agreements", {}).values():
        merged: dict[str, str] = {}
        for node_forms in agreement.get("forms", {}).values():
            for name, form in node_forms.items():
                old = merged.get(name)
                if old is None or strictness.index(form) > strictness.index(old):
                    merged[name] = form
        agreement["forms"] = {**agreement.get("forms", {}), "gateway": merged}
    return documents


class PolicyRuntime:
    """Decides requests with the current published policy; reloads when it changes.

    ``source`` loads the current snapshot and ``stamp`` reads only its cheap identity (the
    published pointer's hash); the runtime checks the stamp at most every
    ``check_interval`` seconds and swaps in a new engine only once it has compiled, so a
    node never runs a half-loaded version. Decisions are cached per (agency, roles,
    client, purpose, node, fields, aggregate, UTC day) inside each version: agreements
    start and end on whole days, so a decision cannot change within one.
    """

    def __init__(
        self,
        source: PolicySource,
        stamp: StampReader,
        *,
        engine_factory: Callable[[Path, dict[str, Any]], Any] | None = None,
        policy_dir: Path = DATAUSE_POLICY_DIR,
        check_interval: float = 1.0,
        cache_size: int = 10_000,
        platform: PlatformCheck | None = None,
    ) -> None:
        self._platform = platform
        self._source = source
        self._stamp = stamp
        self._engine_factory = engine_factory or _embedded_engine
        self._policy_dir = policy_dir
        self._check_interval = check_interval
        self._cache_size = cache_size
        self._lock = threading.Lock()
        self._rebuild = False
        self._next_check = 0.0
        self._loaded: _Loaded | None = None
        self.load_error: str | None = None
        self.on_decision: Callable[[str, str], None] = lambda outcome, code: None
        """Told (outcome, code) of every decision: ("permit", "OK") or ("deny", its code)."""
        self._reload()

    # -- versions ---------------------------------------------------------------------

    @property
    def policy_version(self) -> str:
        loaded = self._loaded
        return loaded.snapshot.policy_version if loaded else "none"

    @property
    def register(self) -> PurposeRegister | None:
        loaded = self._current()
        return loaded.register if loaded else None

    def _current(self) -> _Loaded | None:
        now = time.monotonic()
        if now >= self._next_check:
            self._next_check = now + self._check_interval
            try:
                stamp = self._stamp()
            except Exception:  # an unreadable pointer keeps the version in force
                logger.exception("could not read the published policy's stamp")
                stamp = None
            loaded = self._loaded
            changed = stamp is not None and (loaded is None or stamp != loaded.snapshot.stamp)
            if changed or self._rebuild:
                self._reload()
            elif stamp is not None:  # the version in force is the published one (again)
                self.load_error = None
        return self._loaded

    def _rebuild_soon(self) -> None:
        """After an engine failure, rebuild the engine at the next check (rate-limited)."""
        self._rebuild = True

    def _reload(self) -> None:
        with self._lock:
            rebuild, self._rebuild = self._rebuild, False
            try:
                snapshot = self._source()
                same = self._loaded is not None and snapshot.stamp == self._loaded.snapshot.stamp
                if same and not rebuild:
                    return
                from datatrust.policies.documents import rego_data

                documents = gateway_view(
                    rego_data(snapshot.register, snapshot.agreements, snapshot.policy_version)
                )
                engine = self._engine_factory(self._policy_dir, documents)
                if getattr(engine, "compiled", True) is False:
                    # An engine that knows why (an OPA server that was down) says so.
                    problem = getattr(engine, "problem", None)
                    why = f"could not be put in force: {problem}" if problem else "did not compile"
                    raise DatatrustError(f"policy {snapshot.policy_version} {why}")
                register = PurposeRegister.from_document(
                    snapshot.register, source=snapshot.policy_version
                )
            except Exception as error:  # keep serving the last good version
                problem = f"{type(error).__name__}: {error}"
                if problem != self.load_error:  # once per distinct problem, not every poll
                    logger.exception("could not load the published policy; keeping the last one")
                self.load_error = problem
                return
            self._loaded = _Loaded(snapshot, engine, register)
            self.load_error = None
            logger.info("policy %s is in force", snapshot.policy_version)

    # -- decisions --------------------------------------------------------------------

    def _evaluate(self, loaded: _Loaded, request: AccessRequest) -> Decision:
        return _evaluate_with(loaded, request, self._platform)

    def cached(self, request: AccessRequest) -> Permit | None:
        """The permit for ``request`` if its decision is cached and allows; else None.

        The same checks as ``decide`` run first (known purpose, allowed by the token), so a
        cached decision never stands in for a refusal; anything else is left to ``decide``.
        """
        loaded = self._current()
        if loaded is None:
            return None
        decision = loaded.cache.get(_shape(request))
        if decision is None or not decision.allow:
            return None
        try:
            _check_purpose(loaded, request)
            permit = _permit_or_refusal(request, loaded, decision)
        except DatatrustError:
            return None
        self.on_decision("permit", "OK")
        return permit

    def decide(self, request: AccessRequest) -> Permit:
        """Permit ``request`` or raise PurposeMissing, PurposeUnknown or AccessDenied.

        Fails closed: no policy in force, an engine error or any unexpected error while
        deciding becomes AccessDenied.
        """
        try:
            permit = self._decide(request)
        except DatatrustError as refusal:
            self.on_decision("deny", refusal.code)
            raise
        self.on_decision("permit", "OK")
        return permit

    def _decide(self, request: AccessRequest) -> Permit:
        loaded = self._current()
        if loaded is None:
            raise AccessDenied(
                "access denied: this node has no data-use policy in force"
                + (f" ({self.load_error})" if self.load_error else ""),
                node=request.node,
            )
        _check_purpose(loaded, request)
        key = _shape(request)
        decision = loaded.cache.get(key)
        if decision is None:
            decision = self._evaluate(loaded, request)
            if decision.failed:  # not remembered: rebuild the engine (an OPA that restarted
                self._rebuild_soon()  # lost its policy) and decide afresh next time
            else:
                if len(loaded.cache) >= self._cache_size:
                    loaded.cache.clear()
                loaded.cache[key] = decision
        return _permit_or_refusal(request, loaded, decision)


def _platform_refusal(check: PlatformCheck | None, request: AccessRequest) -> str | None:
    if check is None:
        return None
    try:
        return check(request.requester, str(request.purpose))
    except Exception as error:  # an authorisation error is a refusal
        return f"platform authorisation failed ({type(error).__name__})"


def _check_purpose(loaded: _Loaded, request: AccessRequest) -> None:
    """Refuse a missing or unknown purpose, or one the requester's token does not allow."""
    purpose = loaded.register.resolve(request.purpose)
    allowed = request.requester.purposes
    if allowed is not None and purpose.id not in allowed:
        raise AccessDenied(
            f"access denied: your access token does not allow purpose {purpose.id!r} "
            f"(it allows: {', '.join(allowed) or 'none'})",
            purpose=purpose.id,
            node=request.node,
        )


def _evaluate_with(
    loaded: _Loaded, request: AccessRequest, check: PlatformCheck | None
) -> Decision:
    """Polar first (may this requester query for this purpose at all), then the Rego."""
    version = loaded.snapshot.policy_version
    refusal = _platform_refusal(check, request)
    if refusal is not None:
        return Decision.deny(refusal, version)
    try:
        return loaded.engine.decide(_rego_input(request))
    except Exception as error:  # any fault on a decision path is a deny
        return Decision.deny(f"the policy could not be evaluated ({type(error).__name__})", version)


def _shape(request: AccessRequest) -> tuple[Any, ...]:
    requester = request.requester
    return (
        requester.agency,
        requester.roles,
        requester.client_id,
        requester.purposes,
        request.purpose,
        request.node,
        request.fields,
        request.aggregate,
        datetime.now(UTC).date(),
    )


def _rego_input(request: AccessRequest) -> dict[str, Any]:
    requester = request.requester
    return {
        "requester": {
            "agency": requester.agency,
            "roles": list(requester.roles),
            "client": requester.client_id,
        },
        "purpose": request.purpose,
        "node": request.node,
        "fields": sorted(f"{t}.{f}" for t, f in request.fields),
        "aggregate": request.aggregate,
        "now_ns": time.time_ns(),
    }


def _permit_or_refusal(request: AccessRequest, loaded: _Loaded, decision: Decision) -> Permit:
    version = decision.policy_version or loaded.snapshot.policy_version
    if not decision.allow:
        raise AccessDenied(
            "access denied: " + "; ".join(decision.reasons) + f" (policy {version})",
            purpose=request.purpose,
            node=request.node,
            policy_version=version,
            reasons=list(decision.reasons),
        )
    return Permit(
        purpose=str(request.purpose),
        fields=request.fields,
        policy_version=version,
        agreement=decision.agreement,
        obligations=decision.obligations,
        reasons=decision.reasons,
    )


def _embedded_engine(policy_dir: Path, documents: dict[str, Any]) -> Any:
    from datatrust.policies._engines import EmbeddedRegoEngine

    return EmbeddedRegoEngine(policy_dir, documents)


def shipped_policy(stamp: str = "shipped") -> PolicySnapshot:
    """The demo trust's documents as shipped with the product (before any is published)."""
    from datatrust.policies.documents import demo_agreements, demo_register

    register, agreements = demo_register(), demo_agreements()
    version = f"shipped (agreements {agreements['version']}, purposes {register['version']})"
    return PolicySnapshot(stamp, version, register, agreements)


def describe_fields(fields: Iterable[FieldRef]) -> tuple[str, ...]:
    return tuple(sorted(f"{t}.{f}" for t, f in fields))
