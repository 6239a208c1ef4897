"""``datatrust consent``: record, withdraw and read consents, and load the opt-out list.

These commands act on one node's store directly, as its operators or DPO do, like
``ingest``: NHS numbers are validated (modulus 11) and pseudonymised at the door with the
trust's key, so the number itself is never stored nor printed back.

An opt-out list file is loaded whole or not at all. Each load replaces the node's list
(the NHS list is a full list), so loading only the valid lines would silently drop from the
exclusion list everyone whose line was bad: it would fail open. Instead every bad line is
reported by number (never by its digits) and nothing is loaded until the file is fixed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from datatrust._console import console, err_console
from datatrust.errors import ConsentError, SettingsError

__all__ = ["NhsNumberList", "consent_app", "read_nhs_number_list"]

consent_app = typer.Typer(
    help="Consent records and the national data opt-out list at a node.", no_args_is_help=True
)

DataDir = Annotated[
    Path,
    typer.Option("--data-dir", help="Data directory of the trust.", envvar="DATATRUST_DATA_DIR"),
]
Node = Annotated[str, typer.Option("--node", help="The node whose store to use.")]
NhsNumber = Annotated[
    str | None, typer.Option("--nhs-number", help="The person's NHS number (pseudonymised).")
]
Pseudonym = Annotated[
    str | None, typer.Option("--pseudonym", help="The person's trust pseudonym, if known.")
]
Purpose = Annotated[str, typer.Option("--purpose", help="Purpose id from the register.")]
Controller = Annotated[
    str | None, typer.Option(help="The controller agency; default: the node's agency.")
]
DatabaseUrl = Annotated[
    str | None, typer.Option(help="Store URL; default: the node's, from the data dir.")
]
DEFAULT_DATA_DIR = Path(".datatrust")
_SHOWN_PROBLEMS = 50


# --- the opt-out list file (pure) ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NhsNumberList:
    """The NHS numbers of a list file, and its bad lines as (line number, what is wrong)."""

    numbers: tuple[str, ...]
    problems: tuple[tuple[int, str], ...]


def read_nhs_number_list(text: str) -> NhsNumberList:
    """Read one NHS number per line (a text list, or the first column of a CSV).

    Blank lines and ``#`` comments are skipped, and so is a header line whose first field
    has no digit (``nhs_number``). Spaces inside a number are allowed (``999 000 0018``).
    A problem never quotes the number, which is personal data even when mistyped.
    """
    from datatrust.adapters import is_valid_nhs_number

    numbers: list[str] = []
    problems: list[tuple[int, str]] = []
    seen_content = False
    for line_number, line in enumerate(text.lstrip("\ufeff").splitlines(), start=1):
        field = line.split(",", 1)[0].strip().strip('"').strip()
        if not field or field.startswith("#"):
            continue
        is_header = not seen_content and not any(ch.isdigit() for ch in field)
        seen_content = True
        if is_header:
            continue
        value = field.replace(" ", "")
        if not value.isascii() or not value.isdigit():
            problems.append((line_number, "has characters other than digits and spaces"))
        elif len(value) != 10:
            problems.append((line_number, f"has {len(value)} digits, not 10"))
        elif not is_valid_nhs_number(value):
            problems.append((line_number, "fails the modulus 11 check digit"))
        else:
            numbers.append(value)
    return NhsNumberList(tuple(numbers), tuple(problems))


# --- the store and the person ----------------------------------------------------------


def _node_store(data_dir: Path, node: str, database_url: str | None):
    """The node's settings and a migrated engine for its store."""
    from datatrust._audit_cli import part_settings
    from datatrust.store import create_store_engine, migrate

    if node == "gateway":
        raise SettingsError("--node must name an agency node, not the gateway")
    settings = part_settings(data_dir, node)
    engine = create_store_engine(database_url or settings.effective_database_url)
    migrate(engine)
    return settings, engine


def _person(data_dir: Path, node: str, nhs_number: str | None, pseudonym: str | None) -> str:
    """The trust pseudonym of the person named by exactly one of the two options."""
    if (nhs_number is None) == (pseudonym is None):
        raise SettingsError("name the person with exactly one of --nhs-number or --pseudonym")
    if pseudonym is not None:
        return pseudonym
    from datatrust._prepare import node_pseudonymiser
    from datatrust.adapters import is_valid_nhs_number

    value = (nhs_number or "").replace(" ", "")
    if not is_valid_nhs_number(value):
        raise ConsentError(
            "--nhs-number is not a valid NHS number: it must be 10 digits whose last is the "
            "modulus 11 check digit; check it against the person's records",
            field="nhs_number",
        )
    return node_pseudonymiser(data_dir, node).person(value)


def _when(value: str | None, option: str) -> datetime | None:
    """An ISO date (midnight UTC) or date-time with a UTC offset."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as error:
        raise SettingsError(f"{option} {value!r} is not an ISO date or date-time") from error
    if len(value) == 10:  # a date alone: the start of that day, UTC
        return parsed.replace(tzinfo=UTC)
    if parsed.tzinfo is None:
        raise SettingsError(f"{option} {value!r} has no UTC offset; add one, e.g. '+00:00'")
    return parsed


# --- commands --------------------------------------------------------------------------


@consent_app.command("give")
def give(
    node: Node,
    purpose: Purpose,
    actor: Annotated[str, typer.Option(help="Who records this (for the history).")],
    nhs_number: NhsNumber = None,
    pseudonym: Pseudonym = None,
    lawful_basis: Annotated[
        str, typer.Option(help="UK GDPR basis, e.g. 6(1)(a) or 6(1)(a)+9(2)(a).")
    ] = "6(1)(a)",
    source: Annotated[str, typer.Option(help="How consent was obtained.")] = "datatrust-cli",
    expires_at: Annotated[
        str | None, typer.Option(help="When it lapses: ISO date or date-time with offset.")
    ] = None,
    notice_version: Annotated[
        str | None, typer.Option(help="Version of the privacy notice shown.")
    ] = None,
    withdraw_how: Annotated[str | None, typer.Option(help="How the person can withdraw.")] = None,
    controller: Controller = None,
    data_dir: DataDir = DEFAULT_DATA_DIR,
    database_url: DatabaseUrl = None,
) -> None:
    """Record a person's consent to a controller for a purpose."""
    from datatrust.trust import give_consent

    data_dir = data_dir.resolve()
    settings, engine = _node_store(data_dir, node, database_url)
    person = _person(data_dir, node, nhs_number, pseudonym)
    try:
        record = give_consent(
            engine,
            pseudonym=person,
            controller=controller or settings.agency,
            purpose=purpose,
            lawful_basis=lawful_basis,
            source=source,
            actor=actor,
            expires_at=_when(expires_at, "--expires-at"),
            notice_version=notice_version,
            withdraw_how=withdraw_how,
        )
    finally:
        engine.dispose()
    until = f", until {record.expires_at.isoformat()}" if record.expires_at else ""
    console.print(
        f"{record.state}: {record.pseudonym} to {record.controller} for {record.purpose}"
        f"{until} (record {record.record_id})",
        highlight=False,
    )


@consent_app.command("withdraw")
def withdraw(
    node: Node,
    purpose: Purpose,
    actor: Annotated[str, typer.Option(help="Who records this (for the history).")],
    nhs_number: NhsNumber = None,
    pseudonym: Pseudonym = None,
    revoke: Annotated[
        bool,
        typer.Option(
            "--revoke", help="Revoked by someone other than the person (default: withdrawn)."
        ),
    ] = False,
    note: Annotated[str | None, typer.Option(help="Why, for the history.")] = None,
    controller: Controller = None,
    data_dir: DataDir = DEFAULT_DATA_DIR,
    database_url: DatabaseUrl = None,
) -> None:
    """Withdraw (or revoke) a consent; the very next query no longer counts it."""
    from datatrust.trust import withdraw_consent

    data_dir = data_dir.resolve()
    settings, engine = _node_store(data_dir, node, database_url)
    person = _person(data_dir, node, nhs_number, pseudonym)
    try:
        record = withdraw_consent(
            engine,
            pseudonym=person,
            controller=controller or settings.agency,
            purpose=purpose,
            actor=actor,
            by_subject=not revoke,
            source="datatrust-cli",
            note=note,
        )
    finally:
        engine.dispose()
    console.print(
        f"{record.state}: {record.pseudonym} to {record.controller} for {record.purpose} "
        f"(record {record.record_id})",
        highlight=False,
    )


@consent_app.command("history")
def history(
    node: Node,
    nhs_number: NhsNumber = None,
    pseudonym: Pseudonym = None,
    data_dir: DataDir = DEFAULT_DATA_DIR,
    database_url: DatabaseUrl = None,
) -> None:
    """Every state a person's consent records at this node have been in, oldest first."""
    from datatrust.trust import consent_history

    data_dir = data_dir.resolve()
    _, engine = _node_store(data_dir, node, database_url)
    person = _person(data_dir, node, nhs_number, pseudonym)
    try:
        changes = consent_history(engine, person)
    finally:
        engine.dispose()
    if not changes:
        console.print(f"No consent records for {person} at {node}.", highlight=False)
        return
    table = Table(title=f"consent history of {person} at {node}")
    for column in ("at", "controller", "purpose", "state", "actor", "source", "note"):
        table.add_column(column)
    for change in changes:
        table.add_row(
            change.at.isoformat(timespec="seconds"),
            change.controller,
            change.purpose,
            change.state.value,
            change.actor,
            change.source,
            change.note or "",
        )
    console.print(table)


@consent_app.command("load-opt-outs")
def load_opt_outs(
    file: Annotated[
        Path, typer.Argument(help="NHS numbers, one per line (or a CSV's first column).")
    ],
    node: Node,
    checked_on: Annotated[
        str | None,
        typer.Option(help="Date the list was checked on the NHS Spine (default: today, UTC)."),
    ] = None,
    source: Annotated[str | None, typer.Option(help="Where the list came from.")] = None,
    allow_empty: Annotated[
        bool, typer.Option("--allow-empty", help="Load a list with no numbers (clears it).")
    ] = False,
    data_dir: DataDir = DEFAULT_DATA_DIR,
    database_url: DatabaseUrl = None,
) -> None:
    """Replace the node's national data opt-out list with FILE, whole or not at all."""
    from datatrust._prepare import node_pseudonymiser
    from datatrust.trust import load_opt_out_list

    data_dir = data_dir.resolve()
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise SettingsError(f"cannot read opt-out list {file}: {error}") from error
    listed = read_nhs_number_list(text)
    if listed.problems:
        for line_number, problem in listed.problems[:_SHOWN_PROBLEMS]:
            err_console.print(f"{file}:{line_number}: {problem}", highlight=False)
        more = len(listed.problems) - _SHOWN_PROBLEMS
        if more > 0:
            err_console.print(f"... and {more} more", highlight=False)
        err_console.print(
            f"{len(listed.problems)} line(s) of {file} are not valid NHS numbers; nothing was "
            f"loaded and {node}'s opt-out list is unchanged. Fix the file and load it again.",
            highlight=False,
        )
        raise typer.Exit(1)
    if not listed.numbers and not allow_empty:
        raise ConsentError(
            f"{file} lists no NHS numbers; loading it would clear {node}'s opt-out list. "
            "If that is intended, pass --allow-empty"
        )
    try:
        day = date.fromisoformat(checked_on) if checked_on else datetime.now(UTC).date()
    except ValueError as error:
        raise SettingsError(f"--checked-on {checked_on!r} is not an ISO date") from error
    pseudonymiser = node_pseudonymiser(data_dir, node)
    pseudonyms = [pseudonymiser.person(number) for number in listed.numbers]
    _, engine = _node_store(data_dir, node, database_url)
    try:
        load = load_opt_out_list(engine, pseudonyms, checked_on=day, source=source or file.name)
    finally:
        engine.dispose()
    console.print(
        f"Loaded the national data opt-out list checked on {load.checked_on.isoformat()} into "
        f"{node}: {load.count} people ({load.added} added, {load.removed} removed).",
        highlight=False,
    )
