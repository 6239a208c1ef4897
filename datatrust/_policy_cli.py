"""``datatrust policy``: the data protection officer's lifecycle of the trust documents.

The steps themselves live in ``datatrust.policies.lifecycle`` (pure rules, the store on
disk); this module reads the command line, finds out who is acting, and prints. Who acts
comes from a verified access token (``--token`` or ``DATATRUST_TOKEN``), checked with the
issuers the data directory's node settings trust, exactly as a node checks one; or, for a
trust on this machine only, from ``--as-user NAME --agency A --role dpo``, which is
recorded but not verified (anyone who can write the data directory can edit its files
anyway). Whether the actor may take a step is the platform policy's (Polar) decision.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from datatrust._console import console, err_console
from datatrust.errors import AuthenticationFailed, DatatrustError

if TYPE_CHECKING:
    from datatrust.policies import Requester

__all__ = ["policy_app"]

policy_app = typer.Typer(
    help="The DPO's lifecycle of the trust documents: draft, validate, test, diff, dry-run, "
    "submit, approve, publish, history, rollback.",
    no_args_is_help=True,
)
draft_app = typer.Typer(help="Drafts of the trust documents.", no_args_is_help=True)
policy_app.add_typer(draft_app, name="draft")

DataDir = Annotated[
    Path,
    typer.Option("--data-dir", help="Data directory of the trust.", envvar="DATATRUST_DATA_DIR"),
]
DEFAULT_DATA_DIR = Path(".datatrust")
Token = Annotated[
    str | None,
    typer.Option(
        "--token",
        envvar="DATATRUST_TOKEN",
        help="Your access token (a DPO's); verified with the issuers the trust's nodes trust.",
    ),
]
AsUser = Annotated[
    str | None,
    typer.Option(
        "--as-user", help="Act as this person, unverified (a trust on this machine only)."
    ),
]
Agency = Annotated[str | None, typer.Option(help="With --as-user: your agency.")]
Role = Annotated[
    list[str] | None, typer.Option("--role", help="With --as-user: your role (repeatable).")
]
Comment = Annotated[str, typer.Option(help="Why: recorded with the step.")]


def _lifecycle():
    """The lifecycle package, imported on use: it loads regopy, oso and the store, which
    other commands (and ``datatrust --help``) should not wait for."""
    from datatrust.policies import lifecycle

    return lifecycle


# --- who acts ------------------------------------------------------------------------------


def _verify_token(data_dir: Path, token: str) -> Requester:
    """The requester a node of this trust would see for ``token``; the first node that
    accepts it decides (each node checks its own audience and issuers)."""
    from datatrust._audit_cli import part_settings
    from datatrust._auth import build_authenticator, trusted_issuers
    from datatrust._demo_trust import DEMO_NODES

    reasons = []
    for node in DEMO_NODES:
        settings = part_settings(data_dir, node.node_id)
        try:
            issuers = trusted_issuers(settings)
            authenticate = build_authenticator(issuers, settings.effective_audience)
            return authenticate(f"Bearer {token}")
        except DatatrustError as error:
            reasons.append(f"{node.node_id}: {error.message}")
    raise AuthenticationFailed("the token is not accepted by any node: " + "; ".join(reasons))


def _actor(
    data_dir: Path, token: str | None, as_user: str | None, agency: str | None, roles
) -> Requester:
    if token and as_user:
        raise DatatrustError("give either --token or --as-user, not both")
    if token:
        return _verify_token(data_dir, token)
    if as_user:
        if not agency or not roles:
            raise DatatrustError("--as-user needs --agency and --role (for a DPO: --role dpo)")
        err_console.print(
            f"note: acting as {as_user} of {agency} without a verified token "
            "(allowed for a trust on this machine only)",
            highlight=False,
        )
        from datatrust.policies import Requester

        return Requester(subject=as_user, agency=agency, roles=tuple(roles), client_id="cli")
    raise AuthenticationFailed(
        "say who you are: --token TOKEN (or DATATRUST_TOKEN), or on this machine "
        "--as-user NAME --agency AGENCY --role dpo"
    )


def _authorize():
    from datatrust.policies._platform import PlatformAuthorizer

    authorizer = PlatformAuthorizer()
    authorizer.check()
    return authorizer.authorize


@contextlib.contextmanager
def _quiet_stdout() -> Iterator[None]:
    """regopy prints compile errors to file descriptor 1; our own message says it better."""
    console.file.flush()
    try:
        saved = os.dup(1)
    except OSError:  # no real stdout (an embedding host): nothing to silence
        yield
        return
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 1)
            yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


# --- reading documents ---------------------------------------------------------------------


def _documents(data_dir: Path, ref: str) -> tuple[str, dict, dict]:
    """(name, register, agreements) for "current", "vN" or "N", or a draft id."""
    lc = _lifecycle()
    if ref == "current":
        published = lc.read_published(data_dir)
        if published is None:
            raise DatatrustError(f"nothing is published in {data_dir} yet (run datatrust init)")
        return f"{published.label} (current)", published.register, published.agreements
    number = ref.removeprefix("v")
    if number.isdigit():
        manifest, register, agreements = lc.read_version(data_dir, int(number))
        return manifest.label, register, agreements
    draft = lc.read_draft(data_dir, ref)
    return f"draft {draft.id}", draft.register, draft.agreements


def _read_file(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise DatatrustError(f"{path}: cannot read it as JSON ({error})") from error


def _files(paths: list[Path]) -> tuple[dict | None, dict | None, dict[str, str]]:
    """Sort given files into the register, the agreements and Rego modules, by content."""
    register = agreements = None
    modules: dict[str, str] = {}
    for path in paths:
        if path.suffix == ".rego":
            modules[path.name] = path.read_text(encoding="utf-8")
            continue
        value = _read_file(path)
        if isinstance(value, dict) and "agreements" in value:
            agreements = value
        elif isinstance(value, dict) and "purposes" in value:
            register = value
        else:
            raise DatatrustError(
                f"{path}: neither a purpose register (with 'purposes') nor agreements "
                "(with 'agreements')"
            )
    return register, agreements, modules


# --- drafts --------------------------------------------------------------------------------


@draft_app.command("new")
def draft_new(
    from_: Annotated[
        str, typer.Option("--from", help="Start from 'current', a version (vN) or a draft.")
    ] = "current",
    agreements: Annotated[Path | None, typer.Option(help="Agreements file to draft.")] = None,
    purposes: Annotated[Path | None, typer.Option(help="Purpose register file to draft.")] = None,
    data_dir: DataDir = DEFAULT_DATA_DIR,
    token: Token = None,
    as_user: AsUser = None,
    agency: Agency = None,
    role: Role = None,
) -> None:
    """Create a draft (from the current documents, or from files) to edit by hand."""
    lc = _lifecycle()
    data_dir = data_dir.resolve()
    actor = _actor(data_dir, token, as_user, agency, role)
    _, register, agreed = _documents(data_dir, from_)
    if purposes is not None:
        register = _read_file(purposes)
    if agreements is not None:
        agreed = _read_file(agreements)
    draft = lc.create_draft(data_dir, actor, _authorize(), register, agreed)
    folder = data_dir / "policies" / "drafts" / draft.id
    console.print(f"draft {draft.id} created in {folder}", highlight=False)
    console.print(
        f"edit {', '.join(lc.DOCUMENT_FILES)} there, then: datatrust policy validate {draft.id}; "
        f"datatrust policy dry-run {draft.id}; datatrust policy submit {draft.id}",
        highlight=False,
    )


@draft_app.command("list")
def draft_list(data_dir: DataDir = DEFAULT_DATA_DIR) -> None:
    """The drafts: agency, author, status, approval."""
    lc = _lifecycle()
    data_dir = data_dir.resolve()
    table = Table("draft", "agency", "author", "status", "based on", "approved by")
    for ident in lc.draft_ids(data_dir):
        draft = lc.read_draft(data_dir, ident)
        base = f"v{draft.base}" if draft.base else "-"
        table.add_row(
            draft.id, draft.agency, draft.author, draft.status.value, base, draft.approved_by or "-"
        )
    console.print(table)


# --- checking ------------------------------------------------------------------------------


@policy_app.command("validate")
def validate(
    targets: Annotated[
        list[str] | None,
        typer.Argument(help="A draft id, a version, or files (JSON documents, .rego)."),
    ] = None,
    data_dir: DataDir = DEFAULT_DATA_DIR,
    policy_dir: Annotated[
        Path | None, typer.Option(help="Rego directory to compile with (default: shipped).")
    ] = None,
) -> None:
    """Check documents (default: the current version) and the Rego; exit 1 on any problem."""
    lc = _lifecycle()
    data_dir = data_dir.resolve()
    targets = targets or ["current"]
    modules: dict[str, str] = {}
    if len(targets) == 1 and not Path(targets[0]).is_file():
        name, register, agreements = _documents(data_dir, targets[0])
    else:
        register, agreements, modules = _files([Path(t) for t in targets])
        base = lc.read_published(data_dir)
        if (register is None or agreements is None) and base is None:
            raise DatatrustError("give both documents: nothing is published to fill in from")
        register = register if register is not None else base.register
        agreements = agreements if agreements is not None else base.agreements
        name = ", ".join(targets)
    with _quiet_stdout():
        problems = lc.validate_policy(register, agreements, policy_dir=policy_dir, modules=modules)
    if problems:
        console.print(str(lc.PolicyInvalid(name, problems).message), highlight=False)
        raise typer.Exit(1)
    console.print(f"{name}: valid", highlight=False)


@policy_app.command("test")
def run_policy_tests(
    policy_dir: Annotated[
        Path | None, typer.Option(help="Rego directory (default: the shipped policy).")
    ] = None,
    table: Annotated[
        Path | None, typer.Option(help="Decision table file (default: the shipped one).")
    ] = None,
    engine: Annotated[
        str, typer.Option(help="Engine to replay the table on: embedded or opa.")
    ] = "embedded",
    opa_url: Annotated[
        str | None, typer.Option(help="With --engine opa: the server (or DATATRUST_OPA_URL).")
    ] = None,
) -> None:
    """Run the Rego unit tests (with opa) and the decision table; exit 1 if any fails."""
    from datatrust.policies import _engines, _table

    directory = policy_dir or _lifecycle().default_policy_dir()
    unit = _table.run_rego_unit_tests(directory)
    if unit.ran:
        console.print(unit.output, highlight=False)
    else:
        console.print(f"Rego unit tests not run: {unit.reason_if_not_run}", highlight=False)
    try:
        cases = _table.load_decision_table(table)
        documents = _table.decision_table_documents(table)
        with _quiet_stdout():
            decider = _engines.create_policy_engine(engine, directory, documents, opa_url)
            mismatches = _table.check_decision_table(decider, cases)
    except ValueError as error:
        raise DatatrustError(str(error)) from error
    for mismatch in mismatches:
        console.print(f"FAIL {mismatch.name}", highlight=False)
        for key in sorted(mismatch.expected):
            if mismatch.expected[key] != mismatch.got.get(key):
                console.print(
                    f"    {key}: expected {mismatch.expected[key]!r}, got "
                    f"{mismatch.got.get(key)!r}",
                    highlight=False,
                )
    agreed = len(cases) - len(mismatches)
    console.print(
        f"decision table on {engine}: {agreed}/{len(cases)} cases give the recorded decision",
        highlight=False,
    )
    if mismatches or (unit.ran and not unit.passed):
        raise typer.Exit(1)


@policy_app.command("diff")
def diff(
    old: Annotated[str, typer.Argument(help="current, vN, N or a draft id.")],
    new: Annotated[
        str | None, typer.Argument(help="Compared with OLD; default: OLD against current.")
    ] = None,
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """What changed between two versions, or a draft and the current version, in words."""
    lc = _lifecycle()
    data_dir = data_dir.resolve()
    before, after = ("current", old) if new is None else (old, new)
    old_name, old_register, old_agreements = _documents(data_dir, before)
    new_name, new_register, new_agreements = _documents(data_dir, after)
    changes = lc.diff_documents(old_register, old_agreements, new_register, new_agreements)
    console.print(f"{old_name} -> {new_name}: {len(changes) or 'no'} change(s)", highlight=False)
    for change in changes:
        console.print(f"  - {change}", highlight=False)


def _audited(data_dir: Path, since: datetime, node: str | None) -> tuple[list, int]:
    """Replayable audited requests of each node's ledger since ``since``, and how many
    entries could not be replayed (recorded before the ledger kept the requester's detail).

    Entries that are no data-use decision are left out, not counted: consent changes and
    requests without a purpose or without a verified requester, which every version of
    the documents refuses alike."""
    lc = _lifecycle()
    from datatrust._audit_cli import _database_url
    from datatrust._demo_trust import DEMO_NODES
    from datatrust.store import create_store_engine
    from datatrust.trust import read_audit_entries

    nodes = [n.node_id for n in DEMO_NODES]
    if node is not None and node not in nodes:
        raise DatatrustError(f"unknown node {node!r}; the trust's nodes are {', '.join(nodes)}")
    requests, skipped = [], 0
    for node_id in [node] if node else nodes:
        url = _database_url(data_dir, node_id)
        if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
            continue
        engine = create_store_engine(url)
        try:
            entries = read_audit_entries(engine, since=since)
        finally:
            engine.dispose()
        for _, recorded_at, entry in entries:
            if entry.purpose is None or entry.outcome not in ("permit", "deny"):
                continue
            if entry.aggregate is None or not entry.fields:  # an entry of ledger version 1
                skipped += 1
                continue
            if entry.agency is None:
                continue
            requests.append(
                lc.AuditedRequest(
                    recorded_at=recorded_at,
                    node=entry.node_id,
                    agency=entry.agency,
                    roles=entry.roles,
                    client_id=entry.client_id,
                    purpose=entry.purpose,
                    fields=entry.fields,
                    aggregate=entry.aggregate,
                    outcome=entry.outcome,
                    agreement=entry.agreement,
                )
            )
    return requests, skipped


@policy_app.command("dry-run")
def dry_run_command(
    draft: Annotated[str, typer.Argument(help="The draft (or a version) to try.")],
    days: Annotated[int, typer.Option(help="Replay the audited requests of this many days.")] = 7,
    node: Annotated[str | None, typer.Option(help="Only this node's ledger.")] = None,
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Replay recently audited requests against DRAFT; list those it would decide otherwise."""
    lc = _lifecycle()
    from datatrust.policies._engines import EmbeddedRegoEngine
    from datatrust.policies.documents import rego_data

    data_dir = data_dir.resolve()
    current = lc.read_published(data_dir)
    if current is None:
        raise DatatrustError(f"nothing is published in {data_dir} yet (run datatrust init)")
    name, register, agreements = _documents(data_dir, draft)
    with _quiet_stdout():
        problems = lc.validate_policy(register, agreements)
    if problems:
        raise lc.PolicyInvalid(name, problems)
    policy_dir = lc.default_policy_dir()
    engines = [
        EmbeddedRegoEngine(policy_dir, rego_data(r, a, version=v))
        for r, a, v in (
            (current.register, current.agreements, current.policy_version),
            (register, agreements, name),
        )
    ]
    now = datetime.now(UTC)
    requests, skipped = _audited(data_dir, now - timedelta(days=days), node)
    changes = lc.dry_run(requests, engines[0], engines[1], now)
    console.print(
        f"{name} against {current.label}: {len(requests)} audited request(s) of the last "
        f"{days} day(s) replayed, {len(changes)} would be decided differently",
        highlight=False,
    )
    if skipped:
        console.print(
            f"({skipped} ledger entries were skipped: they do not record the requester's "
            "agency, roles and what was asked, as entries written before the ledger did)",
            highlight=False,
        )
    for change in changes:
        console.print(f"  - {change.request.describe()}", highlight=False)
        console.print(f"    {change.summary}", highlight=False)


# --- review and publishing -----------------------------------------------------------------


@policy_app.command("submit")
def submit(
    draft: Annotated[str, typer.Argument(help="The draft id.")],
    comment: Comment = "",
    data_dir: DataDir = DEFAULT_DATA_DIR,
    token: Token = None,
    as_user: AsUser = None,
    agency: Agency = None,
    role: Role = None,
) -> None:
    """Put a valid draft up for a second DPO's review."""
    lc = _lifecycle()
    data_dir = data_dir.resolve()
    actor = _actor(data_dir, token, as_user, agency, role)
    with _quiet_stdout():
        done = lc.submit_draft(data_dir, draft, actor, _authorize(), comment)
    console.print(
        f"draft {done.id} submitted; a second DPO of {done.agency} approves it with "
        f"datatrust policy approve {done.id} --comment ...",
        highlight=False,
    )


@policy_app.command("approve")
def approve(
    draft: Annotated[str, typer.Argument(help="The draft id.")],
    comment: Comment = "",
    data_dir: DataDir = DEFAULT_DATA_DIR,
    token: Token = None,
    as_user: AsUser = None,
    agency: Agency = None,
    role: Role = None,
) -> None:
    """Approve a submitted draft (a second DPO of the same agency, not its author)."""
    lc = _lifecycle()
    data_dir = data_dir.resolve()
    actor = _actor(data_dir, token, as_user, agency, role)
    done = lc.approve_draft(data_dir, draft, actor, _authorize(), comment)
    console.print(f"draft {done.id} approved by {done.approved_by}", highlight=False)


@policy_app.command("reject")
def reject(
    draft: Annotated[str, typer.Argument(help="The draft id.")],
    comment: Comment = "",
    data_dir: DataDir = DEFAULT_DATA_DIR,
    token: Token = None,
    as_user: AsUser = None,
    agency: Agency = None,
    role: Role = None,
) -> None:
    """Send a draft back to its author, saying why."""
    lc = _lifecycle()
    data_dir = data_dir.resolve()
    actor = _actor(data_dir, token, as_user, agency, role)
    done = lc.reject_draft(data_dir, draft, actor, _authorize(), comment)
    console.print(f"draft {done.id} rejected: {comment}", highlight=False)


@policy_app.command("publish")
def publish(
    draft: Annotated[str, typer.Argument(help="The approved draft id.")],
    reason: Annotated[str, typer.Option(help="Why: recorded in the history.")] = "",
    data_dir: DataDir = DEFAULT_DATA_DIR,
    token: Token = None,
    as_user: AsUser = None,
    agency: Agency = None,
    role: Role = None,
) -> None:
    """Publish an approved draft as the next version; every node picks it up."""
    lc = _lifecycle()
    data_dir = data_dir.resolve()
    actor = _actor(data_dir, token, as_user, agency, role)
    with _quiet_stdout():
        manifest = lc.publish_draft(data_dir, draft, actor, _authorize(), reason)
    console.print(
        f"published {manifest.label}, approved by {manifest.approved_by}; decisions now "
        f"carry policy version {manifest.policy_version!r}",
        highlight=False,
    )


@policy_app.command("history")
def history(data_dir: DataDir = DEFAULT_DATA_DIR) -> None:
    """Every published version: when, who, approved by whom, why."""
    lc = _lifecycle()
    data_dir = data_dir.resolve()
    try:
        current = lc.read_published(data_dir)
    except lc.PolicyStoreCorrupt as damage:  # show what is intact; say what is not
        current = None
        console.print(
            f"[bold red]the version in force is damaged:[/] {damage.message}", highlight=False
        )
    numbers = lc.version_numbers(data_dir)
    if not numbers:
        console.print(f"nothing is published in {data_dir} yet", highlight=False)
    for number in numbers:
        try:
            manifest, _, _ = lc.read_version(data_dir, number)
        except lc.PolicyStoreCorrupt as damage:
            console.print(f"[bold]v{number}[/] damaged: {damage.message}", highlight=False)
            continue
        current_mark = " (current)" if current and current.number == number else ""
        kind = manifest.kind + (f" of v{manifest.rollback_of}" if manifest.rollback_of else "")
        approval = f", approved by {manifest.approved_by}" if manifest.approved_by else ""
        console.print(
            f"[bold]{manifest.label}[/]{current_mark} {manifest.published_at} {kind}: "
            f"by {manifest.author}{approval}, published by {manifest.published_by}",
            highlight=False,
        )
        console.print(f"    {manifest.reason}", highlight=False)


@policy_app.command("rollback")
def rollback_command(
    version: Annotated[str, typer.Argument(help="The version to restore (vN or N).")],
    reason: Annotated[str, typer.Option(help="Why: recorded in the history.")] = "",
    data_dir: DataDir = DEFAULT_DATA_DIR,
    token: Token = None,
    as_user: AsUser = None,
    agency: Agency = None,
    role: Role = None,
) -> None:
    """Publish a new version with the documents of an earlier one (recorded as a rollback)."""
    lc = _lifecycle()
    data_dir = data_dir.resolve()
    number = version.removeprefix("v")
    if not number.isdigit():
        raise DatatrustError(f"{version!r} is not a version (give vN or N)")
    actor = _actor(data_dir, token, as_user, agency, role)
    with _quiet_stdout():
        manifest = lc.rollback(data_dir, int(number), actor, _authorize(), reason)
    console.print(
        f"published {manifest.label} with the documents of v{number} (rollback)", highlight=False
    )
