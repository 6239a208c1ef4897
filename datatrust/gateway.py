"""The trust's gateway process: the federation gateway with the trust's own checks.

The gateway is defence in depth: it authenticates the caller's access token and refuses a
request the enforcement point would refuse before calling any node, recording every
decision in its own audit ledger; the nodes check again for themselves, with the same
token, which the gateway forwards unchanged. A refusal is recorded before it is answered;
a permit's entry is written in a worker thread while the nodes are asked, and their data
is answered only once it is written (if it cannot be, the answer is STORE_UNAVAILABLE).

Introspection (``__schema``, ``__type``) is answered by the gateway itself and carries no
agency data, so no agreement rules on it; but it is not anonymous either: the caller must
present a trusted token and a registered purpose that token allows, and it is audited.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial

import httpx
from starlette.applications import Starlette

from datatrust._auth import build_authenticator, trusted_issuers
from datatrust._metrics import OperationalMetrics
from datatrust._ratelimit import RateLimiter
from datatrust._tracing import current_trace_id
from datatrust.errors import AccessDenied, DatatrustError, SourceError, StoreError
from datatrust.federation._access import RECORD_TYPES
from datatrust.federation.gateway import create_gateway_app
from datatrust.federation.gateway._gateway import Permitted, node_client
from datatrust.network import client_ssl_context
from datatrust.policies import AccessRequest, Permit, Requester, describe_fields
from datatrust.policies._published import published_runtime
from datatrust.settings import GatewaySettings
from datatrust.store import create_store_engine, migrate
from datatrust.trust import AuditEntry, append_audit_entry, audit_head_path

__all__ = ["create_trust_gateway"]


def create_trust_gateway(settings: GatewaySettings) -> Starlette:
    runtime = published_runtime(settings.data_dir.resolve())
    authenticate = build_authenticator(
        trusted_issuers(settings),
        settings.effective_audience,
        RateLimiter(settings.rate_limit_per_minute, settings.rate_limit_burst),
        leeway_seconds=settings.token_leeway_seconds,
    )
    ledger = create_store_engine(settings.effective_database_url)
    head = audit_head_path(settings.data_dir.resolve(), "gateway")
    migrate(ledger)

    def record(
        headers: Mapping[str, str] | None,
        purpose: str | None,
        fields: frozenset[tuple[str, str]],
        requester: Requester | None,
        refusal: DatatrustError | None,
        permit: Permit | None = None,
        reason: str = "permitted",
    ) -> None:
        entry = AuditEntry(
            node_id="gateway",
            requester=requester.label if requester else "unauthenticated",
            purpose=(purpose or "")[:64] or None,
            operation="gateway",
            fields=describe_fields(fields),
            outcome="deny" if refusal else "permit",
            code=refusal.code if refusal else "OK",
            reason=refusal.message if refusal else reason,
            policy_version=permit.policy_version if permit else runtime.policy_version,
            agency=requester.agency if requester else None,
            roles=requester.roles if requester else (),
            client_id=requester.client_id if requester else None,
            subject=requester.subject if requester else None,
            aggregate=_is_aggregate(fields),
            agreement=permit.agreement if permit else None,
            reasons=permit.reasons if permit else (),
            request_id=_header(headers, "x-request-id") if headers else None,
            trace_id=current_trace_id(),
        )
        try:
            append_audit_entry(ledger, entry, head)
        except Exception as error:
            raise StoreError(
                "request refused: the gateway's audit ledger could not be written"
            ) from error

    def authorize(
        purpose: str | None, fields: frozenset[tuple[str, str]], headers: Mapping[str, str]
    ) -> Permitted:
        """Decide now; a refusal is recorded before it is raised, a permit while nodes answer.

        The returned :class:`Permitted` writes the permit's entry; the federation gateway
        runs it in a worker thread alongside the node calls and answers no data unless it
        succeeds (a ledger that cannot be written still means STORE_UNAVAILABLE).
        """
        requester = None
        try:
            requester = authenticate(_header(headers, "authorization"))
            if _is_introspection(fields):
                _check_purpose(purpose, requester)
                return Permitted(
                    partial(
                        record,
                        headers,
                        purpose,
                        fields,
                        requester,
                        None,
                        reason=_INTROSPECTION_REASON,
                    )
                )
            permit = runtime.decide(
                AccessRequest(
                    purpose=purpose,
                    node="gateway",
                    fields=frozenset(f for f in fields if f[0] not in _ROOT_TYPES),
                    requester=requester,
                    aggregate=_is_aggregate(fields),
                )
            )
        except DatatrustError as refusal:
            record(headers, purpose, fields, requester, refusal)
            raise
        return Permitted(partial(record, headers, purpose, fields, requester, None, permit))

    files = settings.tls_files
    client_factory = node_client
    if files is not None:
        context = client_ssl_context(*files)

        def client_factory() -> httpx.AsyncClient:
            """Nodes see the gateway's certificate, which proves who calls, not what it may see."""
            return node_client(verify=context)

    def refused_early(headers: Mapping[str, str], refusal: DatatrustError) -> None:
        """A request refused before the decision (over a limit, introspection off) is
        audited too, with whoever its token names if it names anyone."""
        try:
            requester = authenticate(_header(headers, "authorization"))
        except DatatrustError:
            requester = None
        record(headers, _header(headers, "purpose"), frozenset(), requester, refusal)

    def _check_purpose(purpose: str | None, requester: Requester) -> None:
        """A registered purpose the token allows, as the enforcement point checks it."""
        register = runtime.register
        if register is None:
            raise AccessDenied(
                f"access denied: the gateway has no data-use policy in force ({runtime.load_error})"
            )
        declared = register.resolve(purpose)
        allowed = requester.purposes
        if allowed is not None and declared.id not in allowed:
            raise AccessDenied(
                f"access denied: your access token does not allow purpose {declared.id!r} "
                f"(it allows: {', '.join(allowed) or 'none'})",
                purpose=declared.id,
                node="gateway",
            )

    def policy_in_force() -> dict[str, str | None]:
        """``/readyz`` names the policy version the gateway decides with, as nodes do."""
        if runtime.register is None:
            raise SourceError(f"no data-use policy in force ({runtime.load_error})")
        return {"policy_version": runtime.policy_version, "policy_problem": runtime.load_error}

    app = create_gateway_app(
        dict(settings.nodes),
        authorize=authorize,
        client_factory=client_factory,
        timeout_seconds=settings.timeout_seconds,
        readiness=policy_in_force,
        limits=settings.query_limits,
        introspection=settings.introspection,
        recompose_seconds=settings.recompose_seconds,
        keys_first=settings.keys_first_plans,
        on_refusal=refused_early,
    )
    metrics = OperationalMetrics(app.state.metrics_registry, "gateway")
    runtime.on_decision = metrics.decision
    if files is not None:
        metrics.watch_certificate(files.cert)
    app.state.metrics = metrics
    return app


_ROOT_TYPES = frozenset({"Query", "Mutation"})
_INTROSPECTION = frozenset({("Query", "__schema"), ("Query", "__type")})
_INTROSPECTION_REASON = "introspection: schema metadata only, no agency data"


def _is_introspection(fields: frozenset[tuple[str, str]]) -> bool:
    """True when the operation reads the schema and nothing else."""
    return bool(fields) and fields <= _INTROSPECTION


def _is_aggregate(fields: frozenset[tuple[str, str]]) -> bool:
    return not any(type_name in RECORD_TYPES for type_name, _ in fields)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    return next((value for key, value in headers.items() if key.lower() == name), None)
