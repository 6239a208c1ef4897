"""``datatrust consent`` as a node's operator or DPO runs it, against a real data directory."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from datatrust._consent_cli import NhsNumberList, read_nhs_number_list
from datatrust._prepare import node_pseudonymiser
from datatrust.cli import app
from datatrust.errors import ConsentError, ConsentStateConflict, SettingsError
from datatrust.store import Encounter, NationalOptOut, create_store_engine
from datatrust.trust import (
    ConsentState,
    consent_history,
    current_consents,
    not_opted_out,
    opt_out_list_date,
)

VALID = ("9990000018", "9990000026")  # never issued (999 prefix), valid check digits
BAD_CHECK_DIGIT = "9990000019"


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "trust"


def run(data_dir: Path, *args: str):
    result = CliRunner().invoke(app, [*args, "--data-dir", str(data_dir)], env={"COLUMNS": "200"})
    result.text = " ".join(result.output.split())  # rich wraps at the runner's width
    return result


def store(data_dir: Path, node: str = "health") -> sa.Engine:
    return create_store_engine(f"sqlite:///{data_dir / f'{node}.db'}")


def pseudonym_of(data_dir: Path, nhs_number: str, node: str = "health") -> str:
    return node_pseudonymiser(data_dir, node).person(nhs_number)


def test_give_pseudonymises_the_nhs_number_and_records_consent(data_dir) -> None:
    result = run(
        data_dir,
        "consent", "give", "--node", "health", "--nhs-number", "999 000 0018",
        "--purpose", "research", "--actor", "dpo:alice", "--lawful-basis", "6(1)(a)+9(2)(a)",
        "--source", "recruitment-form-v2", "--expires-at", "2099-01-01",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    person = pseudonym_of(data_dir, VALID[0])
    assert f"ConsentGiven: {person} to health for research, until 2099-01-01T00:00:00+00:00" in (
        result.text
    )
    assert VALID[0] not in result.output
    engine = store(data_dir)
    [record] = current_consents(engine, person)
    engine.dispose()
    assert (record.lawful_basis, record.source, record.expires_at) == (
        "6(1)(a)+9(2)(a)",
        "recruitment-form-v2",
        datetime(2099, 1, 1, tzinfo=UTC),
    )


def test_withdraw_and_revoke_show_in_the_history(data_dir) -> None:
    person = ("--node", "health", "--nhs-number", VALID[0])
    for purpose in ("research", "service-planning"):
        given = run(data_dir, "consent", "give", *person, "--purpose", purpose, "--actor", "a")
        assert given.exit_code == 0, given.output
    withdrawn = run(
        data_dir, "consent", "withdraw", *person, "--purpose", "research", "--actor", "citizen"
    )
    assert withdrawn.exit_code == 0, withdrawn.output
    assert withdrawn.text.startswith("ConsentWithdrawn: ")
    revoked = run(
        data_dir, "consent", "withdraw", *person, "--purpose", "service-planning",
        "--actor", "dpo:bob", "--revoke", "--note", "invalid form",
    )  # fmt: skip
    assert revoked.text.startswith("ConsentRevoked: ")
    history = run(data_dir, "consent", "history", *person)
    assert history.exit_code == 0, history.output
    for expected in ("ConsentGiven", "ConsentWithdrawn", "ConsentRevoked", "invalid form"):
        assert expected in history.text
    engine = store(data_dir)
    states = [change.state for change in consent_history(engine, pseudonym_of(data_dir, VALID[0]))]
    engine.dispose()
    assert states == [
        ConsentState.GIVEN,
        ConsentState.GIVEN,
        ConsentState.WITHDRAWN,
        ConsentState.REVOKED,
    ]


def test_withdrawing_a_consent_never_given_is_refused(data_dir) -> None:
    result = run(
        data_dir, "consent", "withdraw", "--node", "health", "--pseudonym", "p-x",
        "--purpose", "research", "--actor", "me",
    )  # fmt: skip
    assert result.exit_code != 0
    assert isinstance(result.exception, ConsentStateConflict)
    assert "no consent was ever given" in result.exception.message


def test_history_of_a_person_with_no_records_says_so(data_dir) -> None:
    result = run(data_dir, "consent", "history", "--node", "council", "--pseudonym", "p-none")
    assert result.exit_code == 0
    assert result.text == "No consent records for p-none at council."


@pytest.mark.parametrize(
    ("args", "error", "message"),
    [
        (
            ("--nhs-number", BAD_CHECK_DIGIT),
            ConsentError,
            "--nhs-number is not a valid NHS number: it must be 10 digits",
        ),
        (
            ("--nhs-number", VALID[0], "--pseudonym", "p-1"),
            SettingsError,
            "exactly one of --nhs-number or --pseudonym",
        ),
        ((), SettingsError, "exactly one of --nhs-number or --pseudonym"),
        (
            ("--pseudonym", "p-1", "--expires-at", "2099-01-01T00:00"),
            SettingsError,
            "no UTC offset",
        ),
        (("--pseudonym", "p-1", "--node", "housing"), SettingsError, "node_id"),
        (("--pseudonym", "p-1", "--lawful-basis", "consent"), ConsentError, "lawful basis"),
    ],
)
def test_give_refuses_bad_input_by_name(data_dir, args, error, message) -> None:
    node = () if "--node" in args else ("--node", "health")
    result = run(
        data_dir, "consent", "give", *node, "--purpose", "research", "--actor", "me", *args
    )
    assert isinstance(result.exception, error), result.output
    assert message in result.exception.message


# --- the national data opt-out list ------------------------------------------------------


def test_load_opt_outs_replaces_the_list_and_the_next_query_excludes_them(
    data_dir, tmp_path
) -> None:
    listing = tmp_path / "opt-outs.csv"
    listing.write_text(f"nhs_number,status\n{VALID[0]},opted-out\n\n999 000 0026\n")
    result = run(
        data_dir, "consent", "load-opt-outs", str(listing), "--node", "health",
        "--checked-on", "2026-11-01",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.text == (
        "Loaded the national data opt-out list checked on 2026-11-01 into health: 2 people "
        "(2 added, 0 removed)."
    )
    engine = store(data_dir)
    assert opt_out_list_date(engine) == date(2026, 11, 1)
    people = [pseudonym_of(data_dir, n) for n in VALID] + [pseudonym_of(data_dir, "9990000034")]
    table = Encounter.__table__
    with engine.begin() as connection:
        connection.execute(
            table.insert(),
            [
                {
                    "encounter_id": f"e{n}",
                    "pseudonym": person,
                    "class_code": "AMB",
                    "status": "finished",
                    "started_at": datetime(2026, 10, 1, tzinfo=UTC) + timedelta(days=n),
                }
                for n, person in enumerate(people)
            ],
        )
    query = sa.select(table.c.pseudonym).where(not_opted_out(table.c.pseudonym))
    with engine.connect() as connection:
        assert list(connection.execute(query).scalars()) == [people[2]]

    listing.write_text(f"{VALID[1]}\n")
    again = run(data_dir, "consent", "load-opt-outs", str(listing), "--node", "health")
    assert again.exit_code == 0, again.output
    assert "1 people (0 added, 1 removed)" in again.text
    with engine.connect() as connection:
        assert sorted(connection.execute(query).scalars()) == sorted([people[0], people[2]])
    assert opt_out_list_date(engine) == datetime.now(UTC).date()
    engine.dispose()


def test_a_list_with_invalid_lines_loads_nothing_and_names_each_line(data_dir, tmp_path) -> None:
    listing = tmp_path / "opt-outs.txt"
    listing.write_text(f"{VALID[0]}\n")
    assert (
        run(data_dir, "consent", "load-opt-outs", str(listing), "--node", "health").exit_code == 0
    )
    listing.write_text(f"# weekly list\n{VALID[1]}\n{BAD_CHECK_DIGIT}\n12345\nABC123\n")
    result = run(data_dir, "consent", "load-opt-outs", str(listing), "--node", "health")
    assert result.exit_code == 1
    assert result.stderr.splitlines()[:3] == [
        f"{listing}:3: fails the modulus 11 check digit",
        f"{listing}:4: has 5 digits, not 10",
        f"{listing}:5: has characters other than digits and spaces",
    ]
    assert "nothing was loaded and health's opt-out list is unchanged" in result.text
    assert BAD_CHECK_DIGIT not in result.output
    engine = store(data_dir)
    with engine.connect() as connection:
        listed = list(connection.execute(sa.select(NationalOptOut.__table__.c.pseudonym)).scalars())
    engine.dispose()
    assert listed == [pseudonym_of(data_dir, VALID[0])]


def test_an_empty_list_is_refused_unless_asked_for(data_dir, tmp_path) -> None:
    listing = tmp_path / "empty.csv"
    listing.write_text("nhs_number\n")
    result = run(data_dir, "consent", "load-opt-outs", str(listing), "--node", "council")
    assert isinstance(result.exception, ConsentError)
    assert "lists no NHS numbers; loading it would clear council's opt-out list" in (
        result.exception.message
    )
    allowed = run(
        data_dir, "consent", "load-opt-outs", str(listing), "--node", "council", "--allow-empty"
    )
    assert allowed.exit_code == 0, allowed.output
    assert "0 people (0 added, 0 removed)" in allowed.text


def test_an_older_list_than_the_loaded_one_is_refused(data_dir, tmp_path) -> None:
    listing = tmp_path / "list.txt"
    listing.write_text(f"{VALID[0]}\n")
    args = ("consent", "load-opt-outs", str(listing), "--node", "health", "--checked-on")
    assert run(data_dir, *args, "2026-11-08").exit_code == 0
    result = run(data_dir, *args, "2026-11-01")
    assert isinstance(result.exception, ConsentError)
    assert "older than the list already loaded" in result.exception.message
    assert isinstance(run(data_dir, *args, "08/11/2026").exception, SettingsError)


def test_the_list_reader_takes_text_lists_and_csv_first_columns() -> None:
    text = (
        "\ufeffNHS Number,Date\n"
        f'"{VALID[0]}",2026-11-01\n'
        "\n"
        "# comment\n"
        "999 000 0026\n"
        f"{BAD_CHECK_DIGIT}\n"
        "99900000180\n"
    )
    assert read_nhs_number_list(text) == NhsNumberList(
        numbers=VALID,
        problems=(
            (6, "fails the modulus 11 check digit"),
            (7, "has 11 digits, not 10"),
        ),
    )
    # Only the first line may be a header; a later word is a bad line.
    assert read_nhs_number_list(f"{VALID[0]}\nnhs_number\n").problems == (
        (2, "has characters other than digits and spaces"),
    )
