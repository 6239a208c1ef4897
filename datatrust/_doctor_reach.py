"""``datatrust doctor``'s reachability and clock checks, from how each request ended.

A part is reachable when ``/healthz`` answers 200, and ready when ``/readyz`` does; a request
that got no response is described in words (refused, timed out, TLS handshake failed and
why, name not resolved). A part's clock is its HTTP ``Date`` (1 s resolution) against ours
halfway through the request: a warning beyond ``CLOCK_SKEW_WARNING`` (10 s), a problem
beyond ``CLOCK_SKEW_PROBLEM`` (30 s, the leeway nodes give token times: past it fresh tokens
are refused as issued in the future, or expired ones still accepted). Pure: answers in,
findings out.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import socket
import ssl
from dataclasses import dataclass
from typing import Any

from datatrust._doctor import Finding, origin, problem

__all__ = [
    "CLOCK_SKEW_PROBLEM",
    "CLOCK_SKEW_WARNING",
    "Answer",
    "clock_finding",
    "describe_failure",
    "reachability_findings",
]

CLOCK_SKEW_WARNING = dt.timedelta(seconds=10)
CLOCK_SKEW_PROBLEM = dt.timedelta(seconds=30)


@dataclass(frozen=True, slots=True)
class Answer:
    """How one HTTP request to a part ended: a response, or the error it failed with."""

    url: str
    status_code: int | None = None
    body: Any = None
    date_header: str | None = None
    local_time: dt.datetime | None = None
    """This machine's time halfway through the request, to compare with ``date_header``."""
    failure: str | None = None
    """Why no response came (``describe_failure``), when none did."""
    peer_certificate: bytes | None = None
    """The DER certificate the part served on the connection (TLS only)."""


def describe_failure(error: BaseException, timeout_seconds: float) -> str:
    """The reason a request got no response, in words: refused, timed out, TLS, name."""
    causes = _causes(error)
    for cause in causes:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return "the TLS handshake failed because the part's certificate " + _verify_words(cause)
        if isinstance(cause, ssl.SSLError):
            return "the TLS handshake failed because " + _handshake_words(cause)
    for cause in causes:
        if isinstance(cause, ConnectionRefusedError):
            return "the connection was refused: nothing listens at that address"
        if isinstance(cause, socket.gaierror):
            return f"the host name does not resolve ({cause.strerror})"
        if isinstance(cause, TimeoutError) or "Timeout" in type(cause).__name__:
            return f"no answer within {timeout_seconds:g} s (timed out)"
    for cause in causes:
        if isinstance(cause, OSError) and cause.strerror:
            return f"the connection failed: {cause.strerror}"
    return f"the request failed: {error}"


def _causes(error: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


_CLIENT_REFUSED = ("UNKNOWN_CA", "BAD_CERTIFICATE", "CERTIFICATE_REQUIRED", "CERTIFICATE_UNKNOWN")


def _handshake_words(error: ssl.SSLError) -> str:
    reason = str(error.reason or error)
    if reason == "WRONG_VERSION_NUMBER":
        return "the address does not speak TLS (a plain HTTP server, or another service)"
    if any(name in reason for name in _CLIENT_REFUSED):
        return f"the part refused our client certificate, tls/tool.pem ({reason})"
    return f"of {reason}"


def _verify_words(error: ssl.SSLCertVerificationError) -> str:
    message = error.verify_message or str(error)
    if "Hostname mismatch" in message or "IP address mismatch" in message:
        return f"does not name the address we called ({message})"
    if "expired" in message:
        return "has expired"
    if "local issuer" in message or "self-signed" in message or "self signed" in message:
        return f"was not issued by this trust's CA ({message})"
    return f"was refused: {message}"


def reachability_findings(
    part: str, health: Answer, ready: Answer | None, run_file_note: str
) -> Finding:
    """Whether ``part`` answered ``/healthz`` and, when asked, ``/readyz`` is ready."""
    subject = part
    if health.failure is not None:
        return problem(
            "reachability",
            f"Cannot reach the {part} at {origin(health.url)}: {health.failure}.",
            _failure_fix(part, health.failure, run_file_note),
            subject,
        )
    if health.status_code != 200:
        return problem(
            "reachability",
            f"The {part} at {origin(health.url)} answered /healthz with HTTP "
            f"{health.status_code}: {_reason(health.body)}.",
            _status_fix(health.status_code),
            subject,
        )
    if ready is None:
        return Finding("reachability", subject, "ok", f"answers at {origin(health.url)}")
    if ready.failure is not None or ready.status_code != 200:
        why = ready.failure or _reason(ready.body)
        return problem(
            "reachability",
            f"The {part} at {origin(ready.url)} answers but is not ready because {why}.",
            f"Read the {part}'s log (logs/ in the data directory) and fix what it names; it "
            "becomes ready by itself once its store and policy are in place.",
            subject,
        )
    version = ready.body.get("policy_version") if isinstance(ready.body, dict) else None
    details = [
        *(["mutual TLS"] if ready.url.startswith("https:") else []),
        *([f"policy {version}"] if version else []),
    ]
    detail = f" ({', '.join(details)})" if details else ""
    return Finding("reachability", subject, "ok", f"ready at {origin(ready.url)}{detail}")


def _failure_fix(part: str, failure: str, run_file_note: str) -> str:
    if "refused:" in failure or "timed out" in failure:
        return (
            f"Is the {part} running? {run_file_note} If it runs elsewhere, check the address "
            "in the directory and that the network lets this machine reach it."
        )
    if "certificate" in failure:
        return (
            "Check the certificates (the certificates lines above): the part's must be "
            "issued by the trust CA for the address the directory lists, and ours "
            "(tls/tool.pem) must be listed in the directory."
        )
    return "Check the address in the directory and the network between this machine and it."


def _status_fix(status_code: int | None) -> str:
    if status_code == 403:
        return (
            "The part does not accept our tool certificate: list tls/tool.pem's fingerprint "
            "under tools in directory.json and sign it (`datatrust directory sign`)."
        )
    if status_code == 503:
        return (
            "The part has no usable trust directory: check the directory line above and "
            "sign a fresh one."
        )
    return "Read the part's log (logs/ in the data directory)."


def _reason(body: Any) -> str:
    if isinstance(body, dict):
        if isinstance(body.get("reason"), str):
            return body["reason"]
        errors = body.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            return str(errors[0].get("message", errors[0]))
    text = str(body or "no reason given").strip()
    return text[:300]


def clock_finding(part: str, answer: Answer) -> Finding | None:
    """The part's clock against ours, from its HTTP ``Date`` (1 s resolution); None if absent."""
    if answer.date_header is None or answer.local_time is None:
        return None
    try:
        theirs = email.utils.parsedate_to_datetime(answer.date_header)
    except (TypeError, ValueError):
        return Finding(
            "clocks", part, "warning", f"sent an unreadable Date header {answer.date_header!r}"
        )
    skew = theirs - answer.local_time
    size = abs(skew)
    direction = "ahead of" if skew > dt.timedelta(0) else "behind"
    words = f"The {part}'s clock is {size.total_seconds():.0f} s {direction} this machine's"
    fix = "Run NTP (e.g. chrony or systemd-timesyncd) on every machine of the trust."
    if size > CLOCK_SKEW_PROBLEM:
        return problem(
            "clocks",
            f"{words}: past the {CLOCK_SKEW_PROBLEM.seconds} s leeway for token times, so "
            "fresh tokens are refused or expired ones accepted.",
            fix,
            part,
        )
    if size > CLOCK_SKEW_WARNING:
        return Finding(
            "clocks",
            part,
            "warning",
            f"{words} (more than {CLOCK_SKEW_WARNING.seconds} s; tokens fail past "
            f"{CLOCK_SKEW_PROBLEM.seconds} s). {fix}",
        )
    return Finding(
        "clocks",
        part,
        "ok",
        f"{size.total_seconds():.0f} s off this machine's (within {CLOCK_SKEW_WARNING.seconds} s)",
    )
