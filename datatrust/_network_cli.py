"""``datatrust init`` and ``datatrust directory show|sign|verify``: the operator's trust material.

``init_local_trust`` is also what ``up`` calls on every start: it creates what is missing (the
operator key, the trust CA, a certificate per part, the signed directory of the demo trust,
and the trust's first policy version: the shipped documents, published as v1) and changes no
file when everything is in place and the directory is not close to expiry. It manages the
directory entries of the demo parts; members and agencies an operator adds are kept, and a
policy version a DPO published is never replaced.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from joserfc.jwk import ECKey
from rich.console import Console
from rich.table import Table

from datatrust._demo_trust import DEMO_NODES, IDENTITY_PORT_OFFSET
from datatrust.errors import DatatrustError
from datatrust.network import (
    DirectoryError,
    TrustDirectory,
    TrustPki,
    init_trust_pki,
    load_operator_public_key,
    load_or_create_operator_key,
    operator_public_key_path,
    sign_directory,
    verify_directory,
)
from datatrust.network._files import write_file
from datatrust.trust import load_or_create_key, overlap_key_path

__all__ = [
    "DIRECTORY_VALIDITY",
    "TRUST_PARTS",
    "InitResult",
    "directory_app",
    "init_command",
    "init_local_trust",
    "signed_directory_path",
]

TRUST_NAME = "datatrust demo trust"
TRUST_PARTS = (*(n.node_id for n in DEMO_NODES), "gateway", "identity", "tool")
"""Every part that gets a certificate; ``tool`` is for local tools and tests (run.json ``tls``)."""

DIRECTORY_VALIDITY = dt.timedelta(days=30)
RESIGN_BEFORE = dt.timedelta(days=7)
"""``init`` (so every ``up``) re-signs a directory that expires sooner than this."""

NODE_CAPABILITIES = ("subgraph", "ingest-webhooks")

DEMO_NODELESS_AGENCIES = ("university", "public")
"""Agencies of the demo trust that run no node, listed so the nodes accept their tokens: the
university receives data under the research agreement, and "public" is the agency claim of
citizens acting for themselves (their consents at /consent; agreements give them no data)."""

console = Console()
err_console = Console(stderr=True)
DataDir = Annotated[
    Path,
    typer.Option("--data-dir", help="Data directory of the trust.", envvar="DATATRUST_DATA_DIR"),
]
DEFAULT_DATA_DIR = Path(".datatrust")


def signed_directory_path(data_dir: Path) -> Path:
    return data_dir / "directory.jws"


def editable_directory_path(data_dir: Path) -> Path:
    return data_dir / "directory.json"


@dataclass(frozen=True)
class InitResult:
    pki: TrustPki
    directory: TrustDirectory
    is_directory_signed_now: bool
    policy_version: str
    """The policy version in force, as nodes name it at ``/readyz`` (``v1 (agreements ...)``)."""
    is_policy_published_now: bool


def init_local_trust(
    data_dir: Path,
    *,
    host: str = "127.0.0.1",
    base_port: int = 8400,
    part_hosts: dict[str, tuple[str, ...]] | None = None,
    now: dt.datetime | None = None,
) -> InitResult:
    """Create or complete the trust material of the demo trust under ``data_dir``.

    ``part_hosts`` names, per part, further addresses its certificate carries (a part run
    on another host); a certificate without one of them is reissued.
    """
    now = now or dt.datetime.now(dt.UTC)
    data_dir.mkdir(parents=True, exist_ok=True)
    pki = init_trust_pki(
        data_dir, TRUST_PARTS, subject_names=_subject_names(host), part_names=part_hosts
    )
    load_or_create_key(overlap_key_path(data_dir))  # nodes' only; the gateway never loads it
    directory, is_signed_now = _ensure_directory(data_dir, pki, host, base_port, now)
    policy_version, is_published_now = _ensure_policy(data_dir)
    return InitResult(pki, directory, is_signed_now, policy_version, is_published_now)


def _ensure_directory(
    data_dir: Path, pki: TrustPki, host: str, base_port: int, now: dt.datetime
) -> tuple[TrustDirectory, bool]:
    key = load_or_create_operator_key(data_dir)
    existing = _current_document(data_dir, key)
    desired = _demo_document(pki, host, base_port)
    if existing is not None:
        merged = _merge(existing, desired)
        expires_at = TrustDirectory.from_document(existing).expires_at
        if merged == existing and expires_at - now > RESIGN_BEFORE:
            return TrustDirectory.from_document(existing), False
        desired = merged
    desired |= {
        "version": _last_version(data_dir, existing) + 1,
        "issued_at": _iso(now),
        "expires_at": _iso(now + DIRECTORY_VALIDITY),
    }
    directory = TrustDirectory.from_document(desired)
    _write_signed(data_dir, directory, sign_directory(directory, key))
    return directory, True


def _ensure_policy(data_dir: Path) -> tuple[str, bool]:
    """Publish the shipped documents as version 1 when nothing is published yet.

    Until then a node decides with the shipped documents labelled "shipped", which no DPO
    published and no history records; after it, ``/readyz`` and every audit entry name v1,
    and ``policy history``, ``diff`` and ``rollback`` have a version to start from.
    """
    from datatrust.policies.lifecycle import ensure_initial_version, read_published

    is_published_now = read_published(data_dir) is None
    published = ensure_initial_version(data_dir, "datatrust init")
    return published.policy_version, is_published_now


def _demo_document(pki: TrustPki, host: str, base_port: int) -> dict[str, Any]:
    issuer = f"http://{host}:{base_port + IDENTITY_PORT_OFFSET}"
    issuers = [{"issuer": issuer, "jwks_uri": f"{issuer}/jwks.json"}]
    return {
        "trust": TRUST_NAME,
        "members": [
            {
                "agency": node.node_id,
                "node_id": node.node_id,
                "endpoint": f"https://{host}:{base_port + node.port_offset}",
                "certificate_sha256": pki.fingerprints[node.node_id],
                "capabilities": list(NODE_CAPABILITIES),
                "issuers": issuers,
            }
            for node in DEMO_NODES
        ],
        "gateway": {
            "endpoint": f"https://{host}:{base_port}",
            "certificate_sha256": pki.fingerprints["gateway"],
        },
        "tools": [{"name": "tool", "certificate_sha256": pki.fingerprints["tool"], "role": "tool"}],
        "agencies": [{"agency": name, "issuers": issuers} for name in DEMO_NODELESS_AGENCIES],
    }


def _merge(existing: dict[str, Any], demo: dict[str, Any]) -> dict[str, Any]:
    """``existing`` with the demo parts' entries replaced by ``demo``'s; others kept in order.

    A demo agency that an operator has since given a node (a member with that agency) is
    not listed again as an agency without one.
    """
    demo_nodes = {m["node_id"]: m for m in demo["members"]}
    demo_tools = {t["name"]: t for t in demo["tools"]}
    demo_agencies = {a["agency"]: a for a in demo["agencies"]}
    members = [demo_nodes.pop(m["node_id"], m) for m in existing["members"]]
    members += demo_nodes.values()
    tools = [demo_tools.pop(t["name"], t) for t in existing.get("tools", [])]
    agencies = [demo_agencies.pop(a["agency"], a) for a in existing.get("agencies", [])]
    with_nodes = {m["agency"] for m in members}
    agencies = [a for a in (*agencies, *demo_agencies.values()) if a["agency"] not in with_nodes]
    merged = {
        **existing,
        "members": members,
        "gateway": demo["gateway"],
        "tools": [*tools, *demo_tools.values()],
    }
    if agencies:
        merged["agencies"] = agencies
    return merged


def _current_document(data_dir: Path, key: ECKey) -> dict[str, Any] | None:
    """The document of the signed directory if ``key`` signed it and it is valid now; else None."""
    try:
        text = signed_directory_path(data_dir).read_text(encoding="ascii")
        return verify_directory(text, key).to_document()
    except (OSError, UnicodeDecodeError, DirectoryError):
        return None


def _last_version(data_dir: Path, existing: dict[str, Any] | None) -> int:
    versions = [existing["version"]] if existing else [0]
    try:
        edited = json.loads(editable_directory_path(data_dir).read_text(encoding="utf-8"))
        versions.append(int(edited["version"]))
    except (OSError, ValueError, TypeError, KeyError):
        pass
    return max(versions)


def _write_signed(data_dir: Path, directory: TrustDirectory, signed: str) -> None:
    document = json.dumps(directory.to_document(), indent=2) + "\n"
    write_file(editable_directory_path(data_dir), document.encode(), private=False)
    write_file(signed_directory_path(data_dir), (signed + "\n").encode("ascii"), private=False)


def _subject_names(host: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(("localhost", "127.0.0.1", host)))


def parse_part_hosts(values: list[str]) -> dict[str, tuple[str, ...]]:
    """``["council=10.0.0.5", ...]`` as ``{"council": ("10.0.0.5",)}``; bad forms are errors."""
    hosts: dict[str, tuple[str, ...]] = {}
    for value in values:
        part, sep, address = value.partition("=")
        if not sep or not part or not address:
            raise DatatrustError(
                f"--part-host {value!r}: expected PART=ADDRESS, e.g. council=10.0.0.5"
            )
        if part not in TRUST_PARTS:
            raise DatatrustError(
                f"--part-host {value!r}: no part {part!r}; the parts are {', '.join(TRUST_PARTS)}"
            )
        hosts[part] = (*hosts.get(part, ()), address)
    return hosts


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


# Commands ----------------------------------------------------------------------------------


def init_command(
    data_dir: DataDir = DEFAULT_DATA_DIR,
    host: Annotated[str, typer.Option(help="Address the parts listen on.")] = "127.0.0.1",
    base_port: Annotated[
        int, typer.Option(help="Gateway port; nodes on the next three, identity on +4.")
    ] = 8400,
    part_host: Annotated[
        list[str] | None,
        typer.Option(
            help="PART=ADDRESS: a part that runs on another host; its certificate also names "
            "ADDRESS (IP or DNS name). Repeatable."
        ),
    ] = None,
) -> None:
    """Create keys, the CA, certificates, the signed directory and policy v1 (keeps what exists)."""
    data_dir = data_dir.resolve()
    part_hosts = parse_part_hosts(part_host or [])
    result = init_local_trust(data_dir, host=host, base_port=base_port, part_hosts=part_hosts)
    console.print(f"Trust CA: {result.pki.ca}", highlight=False, soft_wrap=True)
    for part, files in result.pki.parts.items():
        console.print(
            f"  {part}: {files.cert} (sha256 {result.pki.fingerprints[part]})", highlight=False
        )
    state = "signed now" if result.is_directory_signed_now else "unchanged"
    console.print(
        f"Directory: {signed_directory_path(data_dir)} (version {result.directory.version}, "
        f"{state}, expires {_iso(result.directory.expires_at)})",
        highlight=False,
        soft_wrap=True,
    )
    console.print(
        f"Operator public key: {operator_public_key_path(data_dir)}",
        highlight=False,
        soft_wrap=True,
    )
    state = "published now" if result.is_policy_published_now else "in force"
    console.print(f"Policy: {result.policy_version}, {state}", highlight=False, soft_wrap=True)


directory_app = typer.Typer(help="The signed trust directory: show, sign and verify it.")

KeyOption = Annotated[
    Path | None,
    typer.Option("--key", help="Operator public key (PEM or JWK); default: the data dir's."),
]


@directory_app.command("show")
def directory_show(data_dir: DataDir = DEFAULT_DATA_DIR, key: KeyOption = None) -> None:
    """Show the signed directory as a table, and whether its signature and dates hold."""
    data_dir = data_dir.resolve()
    path = signed_directory_path(data_dir)
    try:
        directory, problem = _verified(path, data_dir, key), None
    except DirectoryError as error:
        directory, problem = _unverified(path), error.message
    table = Table(title=f"{directory.trust}, version {directory.version}")
    for column in ("kind", "name", "agency", "endpoint", "certificate sha256", "details"):
        table.add_column(column)
    for m in directory.members:
        issuers = ", ".join(i.issuer for i in m.issuers)
        details = f"capabilities: {', '.join(m.capabilities)}; issuers: {issuers}"
        table.add_row("member", m.node_id, m.agency, m.endpoint, m.certificate_sha256, details)
    gateway = directory.gateway
    table.add_row("gateway", "gateway", "", gateway.endpoint, gateway.certificate_sha256, "")
    for t in directory.tools:
        table.add_row("tool", t.name, "", "", t.certificate_sha256, f"role: {t.role}")
    for a in directory.agencies:
        issuers = ", ".join(i.issuer for i in a.issuers)
        table.add_row("agency", "", a.agency, "", "", f"no node; issuers: {issuers}")
    console.print(table)
    if problem is not None:
        err_console.print(
            f"NOT VALID (shown unverified): {problem}", highlight=False, soft_wrap=True
        )
        raise typer.Exit(1)
    console.print(
        f"Signature: valid (operator key). Issued {_iso(directory.issued_at)}, "
        f"expires {_iso(directory.expires_at)}.",
        highlight=False,
        soft_wrap=True,
    )


@directory_app.command("sign")
def directory_sign(
    file: Annotated[Path, typer.Argument(help="The edited directory JSON document.")],
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Validate FILE and sign it with the operator key into the data dir's directory.jws."""
    data_dir = data_dir.resolve()
    try:
        document = json.loads(file.read_text(encoding="utf-8"))
    except OSError as error:
        raise DatatrustError(f"cannot read {file}: {error.strerror}") from error
    except ValueError as error:
        raise DatatrustError(f"{file} is not JSON: {error}") from error
    try:
        directory = TrustDirectory.from_document(document)
    except DirectoryError as error:
        raise DatatrustError(f"{file}: {error.message}") from error
    private_key = data_dir / "keys" / "operator.pem"
    if not private_key.exists():
        raise DatatrustError(f"no operator key at {private_key}: run datatrust init first")
    key = load_or_create_operator_key(data_dir)
    current = _current_document(data_dir, key)
    changed = current is not None and current != directory.to_document()
    if changed and directory.version <= current["version"]:
        raise DatatrustError(
            f"{file}: version {directory.version} is not above the signed directory's "
            f"version {current['version']}; raise it, or nodes will refuse the change"
        )
    signed = sign_directory(directory, key)
    try:
        verify_directory(signed, load_operator_public_key(operator_public_key_path(data_dir)))
    except DirectoryError as error:
        raise DatatrustError(f"{file}: not signed, it would not verify: {error.message}") from error
    _write_signed(data_dir, directory, signed)
    console.print(
        f"Signed version {directory.version} into {signed_directory_path(data_dir)} "
        f"(expires {_iso(directory.expires_at)}).",
        highlight=False,
        soft_wrap=True,
    )


@directory_app.command("verify")
def directory_verify(
    file: Annotated[
        Path | None, typer.Argument(help="Signed directory; default: the data dir's.")
    ] = None,
    data_dir: DataDir = DEFAULT_DATA_DIR,
    key: KeyOption = None,
) -> None:
    """Check the signature and validity period; exit 1 with the reason when broken."""
    data_dir = data_dir.resolve()
    path = file or signed_directory_path(data_dir)
    try:
        directory = _verified(path, data_dir, key)
    except DirectoryError as error:
        err_console.print(f"{path}: NOT VALID: {error.message}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    console.print(
        f"{path}: valid: {directory.trust!r} version {directory.version}, "
        f"{len(directory.members)} members, signed by the operator key, "
        f"expires {_iso(directory.expires_at)}.",
        highlight=False,
        soft_wrap=True,
    )


def _verified(path: Path, data_dir: Path, key: Path | None) -> TrustDirectory:
    public = load_operator_public_key(key or operator_public_key_path(data_dir))
    try:
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as error:
        raise DirectoryError(f"cannot read the signed directory: {error}") from error
    return verify_directory(text, public)


def _unverified(path: Path) -> TrustDirectory:
    """The payload as written, for ``show`` to display next to the reason it is not valid."""
    import base64

    try:
        payload = path.read_text(encoding="ascii").strip().split(".")[1]
        document = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return TrustDirectory.from_document(document)
    except (OSError, IndexError, ValueError, DirectoryError) as error:
        raise DatatrustError(f"{path}: no readable directory: {error}") from error
