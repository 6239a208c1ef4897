"""docker-compose.yml validates against the Compose Specification and runs our commands."""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft7Validator

from datatrust.settings import GatewaySettings, NodeSettings, load_settings

ROOT = Path(__file__).resolve().parents[1]


def _compose_schema() -> Path:
    """The Compose Specification schema: $COMPOSE_SPEC_SCHEMA, else ../shared/schemas."""
    candidates = [
        os.environ.get("COMPOSE_SPEC_SCHEMA", ""),
        ROOT.parent / "shared" / "schemas" / "compose-spec.json",
        Path("/work/shared/schemas/compose-spec.json"),  # this workplace's shared folder
    ]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return ROOT.parent / "shared" / "schemas" / "compose-spec.json"


SCHEMA = _compose_schema()


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_the_compose_file_validates_against_the_compose_specification(compose):
    if not SCHEMA.exists():
        pytest.skip(f"the Compose Specification schema is not at {SCHEMA} (../shared/schemas)")
    validator = Draft7Validator(json.loads(SCHEMA.read_text()))
    problems = [
        f"{'/'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(compose)
    ]
    assert problems == []


def test_every_agency_node_has_its_own_database_and_the_gateway_lists_them(compose):
    services = compose["services"]
    for node in ("council", "health", "social-care"):
        assert services[node]["command"] == [
            "datatrust",
            "serve",
            "node",
            "--config",
            "/etc/datatrust/node.toml",
        ]
        assert services[node]["depends_on"] == {f"{node}-db": {"condition": "service_healthy"}}
    gateway = tomllib.loads((ROOT / "deploy" / "gateway.toml").read_text())
    assert gateway["nodes"] == {
        n: f"http://{n}:8000/graphql" for n in ("council", "health", "social-care")
    }


def test_every_mounted_settings_file_loads_as_the_process_settings(compose):
    for name, config in compose["configs"].items():
        path = ROOT / config["file"]
        cls = GatewaySettings if name == "gateway" else NodeSettings
        settings = load_settings(cls, toml_path=path, environ={})
        assert settings.port == 8000


def test_secrets_are_mounted_files_never_environment_literals(compose):
    for name, service in compose["services"].items():
        for variable in service.get("environment", {}):
            if any(word in variable for word in ("PASSWORD", "SECRET", "KEY", "TOKEN")):
                assert variable.endswith("_FILE"), f"{name} sets {variable} as a literal"
    assert all("file" in secret for secret in compose["secrets"].values())
