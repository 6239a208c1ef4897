"""``datatrust doctor``: check a deployment and say what is wrong in plain words.

This module does the reading and the asking: the signed directory and the operator key, the
CA and every part's certificate in ``tls/``, each node the directory lists (``/healthz`` and
``/readyz`` over mutual TLS with the local tools' certificate, its ``Date`` and the
certificate it serves), the gateway and identity server ``run.json`` names, each node's
``_service { sdl }`` composed with the gateway's composer, and every audit ledger through
``audit verify``'s code. ``_doctor`` turns what came back into findings.

It works on a stopped trust too: what it cannot reach is then a reachability problem.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer

from datatrust._console import console
from datatrust._doctor import (
    Finding,
    audit_findings,
    directory_findings,
    exit_code,
    schema_findings,
)
from datatrust._doctor_certificates import CertificateFiles, certificate_findings
from datatrust._doctor_reach import (
    Answer,
    clock_finding,
    describe_failure,
    reachability_findings,
)
from datatrust._network_cli import (
    DEFAULT_DATA_DIR,
    TRUST_PARTS,
    DataDir,
    signed_directory_path,
)
from datatrust._runner import RUN_FILE, read_run_file
from datatrust.errors import DatatrustError
from datatrust.network import (
    TrustDirectory,
    certificate_fingerprint,
    client_ssl_context,
    load_operator_public_key,
    operator_public_key_path,
)

__all__ = ["composition_finding", "doctor_command", "run_doctor"]

TIMEOUT_SECONDS = 3.0
"""How long each request to a part may take before the doctor calls it timed out."""

SDL_QUERY = "{ _service { sdl } }"  # what the gateway asks each node (federation/gateway)

STYLES = {
    "ok": "[bold green]ok[/]     ",
    "warning": "[bold yellow]warning[/]",
    "problem": "[bold red]problem[/]",
}


def run_doctor(data_dir: Path, now: dt.datetime | None = None) -> list[Finding]:
    """Every check of the deployment in ``data_dir``, in report order."""
    now = now or dt.datetime.now(dt.UTC)
    findings, directory = _check_directory(data_dir, now)
    findings += certificate_findings(
        str(data_dir / "tls" / "ca.pem"),
        _read(data_dir / "tls" / "ca.pem"),
        _part_files(data_dir, directory),
        directory,
        now,
    )
    run = _run_file(data_dir)
    reach, clocks, sdl, missing = _ask_parts(data_dir, directory, run)
    findings += reach + clocks
    findings.append(composition_finding(sdl, missing))
    findings += _check_audit(data_dir)
    return findings


def _check_directory(data_dir: Path, now: dt.datetime) -> tuple[list[Finding], Any]:
    path = signed_directory_path(data_dir)
    signed = _read(path)
    try:
        key = load_operator_public_key(operator_public_key_path(data_dir))
    except DatatrustError:
        key = None
    text = signed.decode("ascii", errors="replace") if signed is not None else None
    return directory_findings(text, key, now, where=str(path))


def _part_files(data_dir: Path, directory: TrustDirectory | None) -> list[CertificateFiles]:
    """The demo parts' certificates, and any other directory member's found in ``tls/``."""
    parts = list(TRUST_PARTS)
    if directory is not None:
        for member in directory.members:
            if (
                member.node_id not in parts
                and (data_dir / "tls" / f"{member.node_id}.pem").exists()
            ):
                parts.append(member.node_id)
    tls = data_dir / "tls"
    return [
        CertificateFiles(
            part, str(tls / f"{part}.pem"), _read(tls / f"{part}.pem"), _read(tls / f"{part}.key")
        )
        for part in parts
    ]


def _run_file(data_dir: Path) -> dict | None:
    try:
        return read_run_file(data_dir)
    except (OSError, ValueError):
        return None


def _ask_parts(
    data_dir: Path, directory: TrustDirectory | None, run: dict | None
) -> tuple[list[Finding], list[Finding], dict[str, str], dict[str, str]]:
    """Ask every part: reachability and clock findings, the nodes' SDL, and who gave none."""
    if run is not None:
        note = f"Its log is under {data_dir / 'logs'}; `datatrust status` shows what runs."
    else:
        note = f"No trust runs from {data_dir} (no {RUN_FILE}): start one with `datatrust up`."
    reach: list[Finding] = []
    clocks: list[Finding] = []
    sdl: dict[str, str] = {}
    missing: dict[str, str] = {}
    nodes = _node_endpoints(directory, run)
    try:
        context = client_ssl_context(*_tool_files(data_dir, run))
    except DatatrustError as error:
        reach.append(
            Finding(
                "reachability",
                "nodes",
                "problem",
                f"Cannot call the nodes: the local tools' certificate does not load: "
                f"{error.message}.",
                "Create it with `datatrust init`.",
            )
        )
        return reach, clocks, sdl, dict.fromkeys(nodes, "not asked")
    with httpx.Client(verify=context, timeout=TIMEOUT_SECONDS) as client:
        for node_id, (base, listed) in nodes.items():
            health = _get(client, f"{base}/healthz")
            ready = _get(client, f"{base}/readyz") if health.status_code == 200 else None
            finding = reachability_findings(f"{node_id} node", health, ready, note)
            finding = _served_check(finding, health, listed, node_id, directory)
            reach.append(finding)
            clock = clock_finding(f"{node_id} node", health)
            if clock is not None:
                clocks.append(clock)
            if finding.status == "ok":
                text, why = _fetch_sdl(client, f"{base}/graphql")
                if text is not None:
                    sdl[node_id] = text
                else:
                    missing[node_id] = why or "no SDL"
            else:
                missing[node_id] = "not reachable, not ready or not the right node"
    with httpx.Client(timeout=TIMEOUT_SECONDS) as client:
        for part, base, ready_path in _plain_parts(run):
            health = _get(client, base + ready_path)
            ready = health if ready_path == "/readyz" else None
            reach.append(reachability_findings(part, health, ready, note))
            clock = clock_finding(part, health)
            if clock is not None:
                clocks.append(clock)
    return reach, clocks, sdl, missing


def _node_endpoints(
    directory: TrustDirectory | None, run: dict | None
) -> dict[str, tuple[str, str | None]]:
    """node id -> (base URL, listed fingerprint): the directory's, else run.json's."""
    if directory is not None:
        return {
            m.node_id: (m.endpoint.rstrip("/"), m.certificate_sha256) for m in directory.members
        }
    nodes = (run or {}).get("nodes") or {}
    return {name: (url.removesuffix("/graphql"), None) for name, url in nodes.items()}


def _plain_parts(run: dict | None) -> list[tuple[str, str, str]]:
    """The gateway and identity server run.json names: (part, base URL, path to ask)."""
    if not run:
        return []
    parts = []
    if run.get("gateway"):
        parts.append(("gateway", run["gateway"].removesuffix("/graphql"), "/readyz"))
    if run.get("identity"):
        parts.append(("identity server", run["identity"].rstrip("/"), "/jwks.json"))
    return parts


def _tool_files(data_dir: Path, run: dict | None) -> tuple[Path, Path, Path]:
    tls = (run or {}).get("tls")
    if tls:
        return Path(tls["cert"]), Path(tls["key"]), Path(tls["ca"])
    return data_dir / "tls" / "tool.pem", data_dir / "tls" / "tool.key", data_dir / "tls" / "ca.pem"


def _get(client: httpx.Client, url: str) -> Answer:
    started = dt.datetime.now(dt.UTC)
    try:
        response = client.get(url)
    except httpx.HTTPError as error:
        return Answer(url, failure=describe_failure(error, TIMEOUT_SECONDS))
    ended = dt.datetime.now(dt.UTC)
    try:
        body: Any = response.json()
    except ValueError:
        body = response.text
    return Answer(
        url,
        status_code=response.status_code,
        body=body,
        date_header=response.headers.get("date"),
        local_time=started + (ended - started) / 2,
        peer_certificate=_peer_certificate(response),
    )


def _peer_certificate(response: httpx.Response) -> bytes | None:
    """The DER certificate the server presented on this response's connection, if TLS."""
    stream = response.extensions.get("network_stream")
    ssl_object = stream.get_extra_info("ssl_object") if stream is not None else None
    return ssl_object.getpeercert(True) if ssl_object is not None else None


def _served_check(
    finding: Finding,
    health: Answer,
    listed: str | None,
    node_id: str,
    directory: TrustDirectory | None,
) -> Finding:
    """A reachable node must serve the certificate the directory lists for it."""
    if finding.status != "ok" or listed is None or health.peer_certificate is None:
        return finding
    served = certificate_fingerprint(health.peer_certificate)
    if served == listed:
        return finding
    owner = directory.peer(served) if directory is not None else None
    if owner is not None:
        return Finding(
            "reachability",
            finding.subject,
            "problem",
            f"At {health.url.removesuffix('/healthz')}, the directory's address for the "
            f"{node_id} node, {_part_name(owner)} answers (it presents that part's "
            f"certificate): the directory points {node_id} at the wrong address.",
            f"Correct {node_id}'s endpoint in directory.json, raise its version and run "
            "`datatrust directory sign directory.json`.",
        )
    return Finding(
        "reachability",
        finding.subject,
        "problem",
        f"The {node_id} node serves a certificate (sha256 {served[:16]}...) that the "
        f"directory does not list for it (sha256 {listed[:16]}...): the gateway refuses it.",
        f"Restart the {node_id} node with its current tls/{node_id}.pem, or sign the "
        "directory with the certificate it serves.",
    )


def _part_name(peer) -> str:
    return f"the {peer.name} node" if peer.kind == "member" else f"the {peer.kind} {peer.name!r}"


def _fetch_sdl(client: httpx.Client, url: str) -> tuple[str | None, str | None]:
    try:
        response = client.post(url, json={"query": SDL_QUERY})
        sdl = response.json()["data"]["_service"]["sdl"]
    except httpx.HTTPError as error:
        return None, describe_failure(error, TIMEOUT_SECONDS)
    except (ValueError, KeyError, TypeError):
        return None, f"HTTP {response.status_code} without _service.sdl"
    return (sdl, None) if isinstance(sdl, str) else (None, "_service.sdl is not a string")


def composition_finding(sdl: dict[str, str], missing: dict[str, str]) -> Finding:
    """``{node: SDL}`` composed with the gateway's composer; ``missing``: who gave none, why."""
    from datatrust.federation.gateway import CompositionError, compose

    if not sdl:
        return schema_findings(None, None, missing)
    try:
        supergraph = compose(sdl)
    except CompositionError as error:
        return schema_findings(None, error.message, missing)
    query = supergraph.schema.query_type
    fields = len(query.fields) if query is not None else 0
    summary = f"the subgraphs of {', '.join(sdl)} compose ({fields} query fields)"
    return schema_findings(summary, None, missing)


def _check_audit(data_dir: Path) -> list[Finding]:
    from sqlalchemy.exc import SQLAlchemyError

    from datatrust._audit_cli import verify_ledgers

    try:
        checks = verify_ledgers(data_dir)
    except DatatrustError as error:
        return [
            _ledgers_problem(f"cannot be found: {error.message}", "Fix the settings in config/")
        ]
    except SQLAlchemyError as error:
        return [
            _ledgers_problem(
                f"cannot be read: {type(error).__name__}: {error.orig or error!s}",
                "Start each node once so it migrates its store (`datatrust up`), or check "
                "its database",
            )
        ]
    return audit_findings(checks, str(data_dir))


def _ledgers_problem(what: str, fix: str) -> Finding:
    return Finding(
        "audit",
        "ledgers",
        "problem",
        f"The audit ledgers {what}.",
        f"{fix}, then run `datatrust audit verify`.",
    )


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


# The command --------------------------------------------------------------------------------


def doctor_command(
    data_dir: DataDir = DEFAULT_DATA_DIR,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the findings as JSON, for machines.")
    ] = False,
) -> None:
    """Check a deployment and say what is wrong in plain words; exit 1 when something is."""
    data_dir = data_dir.resolve()
    findings = run_doctor(data_dir)
    code = exit_code(findings)
    if as_json:
        print(json.dumps(_json_report(data_dir, findings), indent=2))
        raise typer.Exit(code)
    for finding in findings:
        text = f"{finding.check}: {finding.subject}: {finding.message}"
        if finding.fix:
            text += f" {finding.fix}"
        console.print(STYLES[finding.status], end=" ")
        console.print(text, markup=False, highlight=False, soft_wrap=True)
    console.print(_summary(findings), highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _json_report(data_dir: Path, findings: list[Finding]) -> dict[str, Any]:
    return {
        "data_dir": str(data_dir),
        "ok": exit_code(findings) == 0,
        "problems": sum(f.status == "problem" for f in findings),
        "warnings": sum(f.status == "warning" for f in findings),
        "findings": [f.to_json() for f in findings],
    }


def _summary(findings: list[Finding]) -> str:
    problems = sum(f.status == "problem" for f in findings)
    warnings = sum(f.status == "warning" for f in findings)
    warned = f", {warnings} warning{'s' if warnings != 1 else ''}" if warnings else ""
    if problems:
        return f"{problems} problem{'s' if problems != 1 else ''}{warned}: see above."
    return f"No problems found{warned}."
