"""The docs keep up with the code: quickstart, example query, settings, errors, commands."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.main import get_command

from datatrust import errors
from datatrust._demo_trust import example_curl
from datatrust.cli import app
from datatrust.settings import GatewaySettings, NodeSettings

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_the_readme_quickstart_is_two_commands_one_to_run_one_to_test():
    quickstart = README.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", quickstart, flags=re.S)
    assert [b.strip() for b in blocks] == [
        "python -m pip install -e . && datatrust up",
        "python -m pip install -e '.[dev]' && python -m ruff check . && python -m pytest",
    ]


def test_ci_runs_exactly_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "python -m pip install -e '.[dev]' && python -m ruff check . && python -m pytest" in ci


def test_the_readme_example_query_is_the_one_up_prints():
    assert example_curl("http://127.0.0.1:8400/graphql") in README


@pytest.mark.parametrize("cls", [NodeSettings, GatewaySettings])
def test_every_setting_is_documented(cls):
    documented = (ROOT / "docs" / "settings.md").read_text()
    for name in cls.model_fields:
        assert f"| `{name}` |" in documented, name


def error_classes():
    from datatrust.federation.gateway import _errors as gateway_errors

    return [
        value
        for module in (errors, gateway_errors)
        for value in vars(module).values()
        if isinstance(value, type) and issubclass(value, errors.DatatrustError)
    ]


@pytest.mark.parametrize("cls", error_classes(), ids=lambda c: c.__name__)
def test_every_error_code_has_a_docs_page_entry(cls):
    assert f"## {cls.code}\n" in (ROOT / "docs" / "errors.md").read_text()


def test_every_cli_command_is_documented():
    documented = (ROOT / "docs" / "cli.md").read_text()
    command = get_command(app)
    names = []
    for name, sub in command.commands.items():
        if hasattr(sub, "commands"):
            names += [f"{name} {inner}" for inner in sub.commands]
        else:
            names.append(name)
    for name in names:
        assert f"`datatrust {name}" in documented, name


def test_every_file_the_architecture_names_exists():
    text = (ROOT / "docs" / "architecture.md").read_text()
    paths = set(
        re.findall(
            r"`((?:datatrust|adapters|ingest|trust|policies|federation)/[\w/.-]+\.\w+)`", text
        )
    )
    assert paths, "the architecture names no files"
    missing = sorted(p for p in paths if not (ROOT / p).exists())
    assert missing == []
