"""Engines that evaluate the data-use Rego, embedded regopy or an OPA server, behind one ``decide``.

Whatever goes wrong inside an engine (a compile error, an undefined result, output that is
not the decision object, a crash in the binding) becomes a deny with a reason, never an
exception a caller might catch and carry on from: the engine fails closed.

rego-cpp prints some errors to the process's stdout. Nothing here logs to stdout, and the
node's structured logs must go to stderr or a file so those lines can never corrupt them.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit

import regopy

__all__ = [
    "ENTRYPOINT",
    "OPA_URL_ENV",
    "Decision",
    "EmbeddedRegoEngine",
    "Obligations",
    "OpaEngine",
    "PolicyEngine",
    "create_policy_engine",
]

ENTRYPOINT = "datause/decision/decision"
"""The one rule every engine evaluates: ``data.datause.decision.decision``."""

OPA_URL_ENV = "DATATRUST_OPA_URL"
"""The environment variable naming an OPA server (``http://host:port``) to decide with."""

_OBLIGATION_KEYS = {"aggregate_only", "min_cell", "round_to", "mask", "pseudonymise", "row_filters"}
_DECISION_KEYS = {"allow", "reasons", "agreement", "policy_version", "obligations"}


@dataclass(frozen=True, slots=True, kw_only=True)
class Obligations:
    """What the node must do to the data an allowed request reads."""

    aggregate_only: bool = False
    min_cell: int = 0
    round_to: int = 0
    mask: tuple[str, ...] = ()
    pseudonymise: tuple[str, ...] = ()
    row_filters: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    """An engine's answer: allow or deny, why, which agreement and policy version decided."""

    allow: bool
    reasons: tuple[str, ...]
    agreement: str | None = None
    policy_version: str | None = None
    obligations: Obligations = field(default_factory=Obligations)
    failed: bool = False
    """True when the engine could not decide (unreachable, crashed, gave no answer): a deny
    that a retry might turn into a decision, so it is never cached."""

    def as_dict(self) -> dict[str, Any]:
        """The decision in the Rego's own JSON shape (what the decision table records)."""
        o = self.obligations
        return {
            "allow": self.allow,
            "reasons": list(self.reasons),
            "agreement": self.agreement,
            "policy_version": self.policy_version,
            "obligations": {
                "aggregate_only": o.aggregate_only,
                "min_cell": o.min_cell,
                "round_to": o.round_to,
                "mask": list(o.mask),
                "pseudonymise": list(o.pseudonymise),
                "row_filters": [dict(f) for f in o.row_filters],
            },
        }

    @classmethod
    def deny(cls, reason: str, policy_version: str | None = None) -> Decision:
        return cls(allow=False, reasons=(reason,), policy_version=policy_version)

    @classmethod
    def failure(cls, reason: str, policy_version: str | None = None) -> Decision:
        """A deny because the engine failed to decide (fail closed, but do not remember it)."""
        return cls(allow=False, reasons=(reason,), policy_version=policy_version, failed=True)

    @classmethod
    def from_value(cls, value: Any) -> Decision:
        """Read the Rego's decision object, strictly: anything unexpected is a ``ValueError``."""
        if not isinstance(value, dict) or set(value) != _DECISION_KEYS:
            raise ValueError("the decision is not an object with the expected keys")
        obligations = value["obligations"]
        if not isinstance(obligations, dict) or set(obligations) != _OBLIGATION_KEYS:
            raise ValueError("the obligations are not an object with the expected keys")
        checks = (
            isinstance(value["allow"], bool),
            _strings(value["reasons"]) and bool(value["reasons"]),
            value["agreement"] is None or isinstance(value["agreement"], str),
            isinstance(value["policy_version"], str),
            isinstance(obligations["aggregate_only"], bool),
            _whole(obligations["min_cell"]) and _whole(obligations["round_to"]),
            _strings(obligations["mask"]) and _strings(obligations["pseudonymise"]),
            isinstance(obligations["row_filters"], list)
            and all(isinstance(f, dict) for f in obligations["row_filters"]),
        )
        if not all(checks):
            raise ValueError("the decision has a value of the wrong type")
        return cls(
            allow=value["allow"],
            reasons=tuple(value["reasons"]),
            agreement=value["agreement"],
            policy_version=value["policy_version"],
            obligations=Obligations(
                aggregate_only=obligations["aggregate_only"],
                min_cell=int(obligations["min_cell"]),
                round_to=int(obligations["round_to"]),
                mask=tuple(obligations["mask"]),
                pseudonymise=tuple(obligations["pseudonymise"]),
                row_filters=tuple(obligations["row_filters"]),
            ),
        )


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _whole(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float) and value == int(value)


def policy_modules(policy_dir: Path) -> dict[str, str]:
    """The policy's Rego files by name, without the unit tests (they run on OPA only)."""
    return {
        path.name: path.read_text(encoding="utf-8")
        for path in sorted(policy_dir.glob("*.rego"))
        if not path.name.endswith("_test.rego")
    }


class EmbeddedRegoEngine:
    """regopy, compiled once into a bundle, evaluated per request on a per-thread interpreter.

    Compiling takes milliseconds and evaluating a compiled entrypoint well under one, so the
    bundle is built here and shared; each thread gets its own ``Interpreter`` because one
    shared across threads races on its input. New documents mean a new engine (regopy
    ignores a second ``add_data_json`` for the same key).
    """

    def __init__(self, policy_dir: Path, documents: dict[str, Any]) -> None:
        self.policy_version: str | None = documents.get("policy_version")
        self._local = threading.local()
        self._bundle: regopy.Bundle | None = None
        self._error: str | None = None
        try:
            builder = regopy.Interpreter()
            for name, source in policy_modules(policy_dir).items():
                builder.add_module(name, source)
            builder.add_data_json(json.dumps({"documents": documents}, ensure_ascii=False))
            self._bundle = builder.build(None, [ENTRYPOINT])
        except Exception as error:  # any failure to compile leaves an engine that denies
            self._error = f"the data-use policy did not compile ({type(error).__name__})"

    @property
    def compiled(self) -> bool:
        return self._bundle is not None

    def decide(self, request: dict[str, Any]) -> Decision:
        """Evaluate ``data.datause.decision.decision`` for one input; deny on any failure."""
        if self._bundle is None:
            return Decision.failure(self._error or "no policy", self.policy_version)
        try:
            interpreter = getattr(self._local, "interpreter", None)
            if interpreter is None:
                interpreter = self._local.interpreter = regopy.Interpreter()
            interpreter.set_input_term(json.dumps(request, ensure_ascii=False))
            output = interpreter.query_bundle_entrypoint(self._bundle, ENTRYPOINT)
            text = str(output)
            if not output.ok() or text.strip() == "undefined":
                return Decision.failure("the data-use policy gave no decision", self.policy_version)
            expressions = json.loads(text).get("expressions")
            if not isinstance(expressions, list) or len(expressions) != 1:
                raise ValueError("the engine returned no single decision")
            return Decision.from_value(expressions[0])
        except Exception as error:  # fail closed on engine, JSON and shape errors alike
            return Decision.failure(
                f"the data-use policy could not be evaluated ({type(error).__name__})",
                self.policy_version,
            )


class PolicyEngine(Protocol):
    """What every engine offers: one fail-closed ``decide`` and the version it decides with."""

    policy_version: str | None

    @property
    def compiled(self) -> bool: ...

    def decide(self, request: dict[str, Any]) -> Decision: ...


class OpaEngine:
    """An external OPA server, through opa-python-client, deciding exactly as regopy does.

    Given the policy directory and the documents, the engine loads them into the server
    itself: each Rego module under the policy id ``<namespace>/<file name>`` (modules left
    under that namespace by an earlier engine are deleted, so the server runs this policy
    and no other version of it) and the documents at ``data.documents``, where the Rego
    reads them. Given neither, it only asks: the server is managed elsewhere (bundles, an
    operator). The namespace separates policy ids, not Rego packages or data: one server
    serves one data-use policy, and a different one loaded beside it under another
    namespace makes the rules conflict, which every engine on that server then reads as a
    deny. The client keeps one HTTP session, so connections are pooled and kept alive: a
    decision is one POST on an open connection.

    Like the embedded engine it fails closed: a server that is down, slow (past
    ``timeout`` seconds), answering with an error, with something that is not JSON, with an
    undefined result or with a value that is not the decision object gives a deny with a
    reason, never an exception. A server restarted without its policy answers undefined,
    which is a deny until a new engine loads the policy again.
    """

    def __init__(
        self,
        policy_dir: Path | None,
        documents: dict[str, Any] | None,
        url: str | None = None,
        *,
        namespace: str = "datatrust",
        timeout: float = 2.0,
    ) -> None:
        self.policy_version: str | None = (documents or {}).get("policy_version")
        self.url = _opa_url(url)
        self.namespace = namespace.strip("/")
        self._error: str | None = None
        parts = urlsplit(self.url)
        https = parts.scheme == "https"
        # One retry, which urllib3 makes at once: it covers a kept-alive connection the
        # server closed between two decisions, without a back-off delaying a deny.
        from opa_client import OpaClient  # only an OPA-backed node pays for importing it

        self._client = OpaClient(
            host=str(parts.hostname),
            port=parts.port or (443 if https else 80),
            ssl=https,
            timeout=timeout,
            retries=1,
        )
        if policy_dir is None and documents is None:
            return
        try:
            self._load(policy_dir, documents)
        except Exception as error:  # a server that refuses the policy leaves an engine that denies
            self._error = (
                f"the data-use policy could not be loaded into OPA ({type(error).__name__})"
            )

    def _load(self, policy_dir: Path | None, documents: dict[str, Any] | None) -> None:
        if documents is not None:
            self._client.update_or_create_data(documents, "documents")
        if policy_dir is None:
            return
        modules = {
            f"{self.namespace}/{name}": src for name, src in policy_modules(policy_dir).items()
        }
        if not modules:
            raise FileNotFoundError(f"no Rego modules in {policy_dir}")
        for policy_id, source in modules.items():
            self._client.update_policy_from_string(source, policy_id, rego_compat=False)
        for policy_id in self._client.get_policies_list():
            if policy_id.startswith(f"{self.namespace}/") and policy_id not in modules:
                self._client.delete_policy(policy_id)

    @property
    def compiled(self) -> bool:
        """Whether the server accepted the policy and documents (or none were given)."""
        return self._error is None

    @property
    def problem(self) -> str | None:
        """Why the policy is not in the server (e.g. it could not be reached), else None."""
        return self._error

    def decide(self, request: dict[str, Any]) -> Decision:
        """Ask the server for ``data.datause.decision.decision``; deny on any failure."""
        if self._error is not None:
            return Decision.failure(self._error, self.policy_version)
        try:
            body = self._client.query_rule(request, "datause.decision", "decision")
        except Exception as error:  # unreachable, timed out, HTTP error, not JSON, not JSON-able
            return Decision.failure(
                f"the OPA server gave no answer ({type(error).__name__})", self.policy_version
            )
        if not isinstance(body, dict) or "result" not in body:
            return Decision.failure("the data-use policy gave no decision", self.policy_version)
        try:
            return Decision.from_value(body["result"])
        except Exception as error:  # fail closed on a value that is not the decision object
            return Decision.failure(
                f"the data-use policy could not be evaluated ({type(error).__name__})",
                self.policy_version,
            )

    def close(self) -> None:
        """Close the pooled connections."""
        self._client.close_connection()


def _opa_url(url: str | None) -> str:
    value = url or os.environ.get(OPA_URL_ENV)
    if not value:
        raise ValueError(f"no OPA server to decide with: give its URL or set {OPA_URL_ENV}")
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.hostname or parts.path not in {"", "/"}:
        raise ValueError(
            f"the OPA server URL {value!r} is not of the form http(s)://host:port "
            f"(from {'the engine' if url else OPA_URL_ENV})"
        )
    return value


def create_policy_engine(
    kind: Literal["embedded", "opa"] | str,
    policy_dir: Path,
    documents: dict[str, Any],
    opa_url: str | None = None,
) -> PolicyEngine:
    """The engine a node is configured to use: ``embedded`` (regopy) or ``opa`` (a server at
    ``opa_url``, else at ``DATATRUST_OPA_URL``). An unknown kind or a missing URL is a
    ``ValueError`` at start-up, not a deny at the first request."""
    if kind == "embedded":
        return EmbeddedRegoEngine(policy_dir, documents)
    if kind == "opa":
        return OpaEngine(policy_dir, documents, opa_url)
    raise ValueError(f"unknown policy engine {kind!r}: expected 'embedded' or 'opa'")
