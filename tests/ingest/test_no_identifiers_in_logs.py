"""No raw MAC address or NHS number reaches a node's output, logs or database files.

Issue 4, acceptance 4. The real command line runs in subprocesses, with every logger at
DEBUG (there is no log-level setting, so a wrapper configures the root logger before the
CLI starts, and SQLAlchemy logs every statement with its parameters):
``datatrust ingest`` of every fixture, the bad ones too; ``datatrust quarantine list``
and ``replay``; and ``datatrust serve node`` (its output sent to ``logs/council.log`` as
``datatrust up`` does) taking a webhook body that cannot be read and GraphQL requests.
Then every MAC address and NHS number written in the fixtures is looked for, in every
spelling, in all that output, the log files and the raw bytes of the SQLite files.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from datatrust._ports import free_port as _free_port
from datatrust.ingest import webhook_secret
from tests.trust_identity import trust_identity

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
ROOT = Path(__file__).resolve().parents[2]
# Fixture name prefix -> (format, node); inventories first, so readings find their sensors.
FORMATS = {
    "sensor_inventory": ("sensor-inventory", "council"),
    "access_point_inventory": ("access-point-inventory", "council"),
    "things_stack_uplinks": ("things-stack-uplinks", "council"),
    "chirpstack_uplinks": ("chirpstack-uplinks", "council"),
    "freeradius_detail": ("freeradius-detail", "council"),
    "meraki_scanning": ("meraki-scanning", "council"),
    "hclic": ("hclic-xml", "council"),
    "fhir_bundle": ("fhir-bundle", "health"),
    "cld": ("cld-csv", "social-care"),
}
DEBUG_CLI = (
    "import logging, sys; "
    "logging.basicConfig(level=logging.DEBUG, format='%(levelname)s %(name)s: %(message)s'); "
    "logging.getLogger('sqlalchemy.engine').setLevel(logging.INFO); "  # statements, parameters
    "sys.argv[0] = 'datatrust'; "
    "from datatrust.cli import main; main()"
)
# A MAC in any spelling; twelve bare hex digits only as a whole value ("e0553d100014").
_MAC = re.compile(
    r"(?<![0-9A-Fa-f])(?:(?:[0-9A-Fa-f]{2}[-:]){5}[0-9A-Fa-f]{2}"
    r"|[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4})(?![0-9A-Fa-f])"
    r'|(?<=")[0-9A-Fa-f]{12}(?=")'
)
_WIFI = ("freeradius-detail", "meraki-scanning", "access-point-inventory")
_AP_MAC = re.compile(r'(?:Called-Station-Id = "|[aA]pMac": *")([^":]+(?::[^":]+){0,5})')
_NHS = re.compile(r"(?<!\d)\d{10}(?!\d)")


def _fixtures() -> list[Path]:
    return sorted(p for p in FIXTURES.iterdir() if p.name != "PROVENANCE.md")


def _format_of(path: Path) -> tuple[str, str]:
    prefix = next((p for p in FORMATS if path.name.startswith(p)), None)
    if prefix is None:
        pytest.fail(f"fixture {path.name} has no format here: add its prefix to FORMATS")
    return FORMATS[prefix]


def _hex(mac: str) -> str:
    return re.sub(r"[^0-9a-f]", "", mac.lower())


def device_macs() -> set[str]:
    """The 12 hex digits of every device MAC in the fixtures: every MAC but the access
    points' (which are infrastructure, stored on purpose)."""
    found: set[str] = set()
    access_points: set[str] = set()
    for path in _fixtures():
        if _format_of(path)[0] not in _WIFI:
            continue
        body = path.read_text(errors="replace")
        macs = {_hex(m) for m in _MAC.findall(body)}
        if path.name.startswith("access_point_inventory"):
            access_points |= macs
        else:
            found |= macs
        access_points |= {_hex(m) for m in _AP_MAC.findall(body) if len(_hex(m)) == 12}
    return found - access_points


def nhs_numbers() -> set[str]:
    """Every ten-digit number (valid NHS number or not) in the health and care fixtures."""
    found: set[str] = set()
    for path in _fixtures():
        if _format_of(path)[0] in ("fhir-bundle", "cld-csv", "hclic-xml"):
            found |= set(_NHS.findall(path.read_text(errors="replace")))
    return found


def spellings() -> dict[str, str]:
    """Lower-case spelling -> the identifier it spells (compared with lower-cased text)."""
    out: dict[str, str] = {}
    for mac in device_macs():
        pairs = [mac[i : i + 2] for i in range(0, 12, 2)]
        quads = [mac[i : i + 4] for i in range(0, 12, 4)]
        for spelling in (":".join(pairs), "-".join(pairs), ".".join(quads), mac):
            out[spelling] = mac
    for number in nhs_numbers():
        for spelling in (number, f"{number[:3]} {number[3:6]} {number[6:]}"):
            out[spelling] = number
    return out


@dataclass
class Captured:
    """What the processes said and wrote: name -> text."""

    texts: dict[str, str] = field(default_factory=dict)

    def add(self, name: str, process: subprocess.CompletedProcess) -> None:
        self.texts[name] = f"{process.stdout}\n{process.stderr}"
        assert "Traceback" not in self.texts[name], self.texts[name]


def _env() -> dict[str, str]:
    # Wide, plain output: rich would otherwise wrap or fold a line inside an identifier.
    return os.environ | {"COLUMNS": "1000", "NO_COLOR": "1", "TERM": "dumb"}


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", DEBUG_CLI, *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=_env(),
        timeout=120,
        check=False,
    )


def _ingest_everything(data_dir: Path, captured: Captured) -> None:
    groups: dict[tuple[str, str], list[str]] = {}
    for path in _fixtures():
        groups.setdefault(_format_of(path), []).append(str(path))
    for prefix in FORMATS:  # inventories first
        key = FORMATS[prefix]
        if key in groups:
            fmt, node = key
            run = _cli("ingest", fmt, *groups.pop(key), "--node", node, "--data-dir", str(data_dir))
            assert run.returncode in (0, 1), run.stderr  # 1: something was quarantined
            captured.add(f"ingest {fmt}", run)
    for command in ("list", "replay"):
        run = _cli("quarantine", command, "--data-dir", str(data_dir))
        assert run.returncode == 0, run.stderr
        captured.add(f"quarantine {command}", run)
    assert "9990000017" in (FIXTURES / "fhir_bundle_bad.json").read_text()
    assert "quarantined records" in captured.texts["quarantine list"]


def _node_requests(data_dir: Path, captured: Captured) -> None:
    port = _free_port()
    log = data_dir / "logs" / "council.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with trust_identity(data_dir / "identity") as identity:
        config = data_dir / "council.toml"
        issuer = identity.issuers[0]
        config.write_text(
            f'node_id = "council"\nagency = "council"\nport = {port}\n'
            f"data_dir = {json.dumps(str(data_dir))}\n\n[[issuers]]\n"
            f"issuer = {json.dumps(issuer.issuer)}\njwks_url = {json.dumps(issuer.jwks_url)}\n"
            f"agencies = {json.dumps(issuer.agencies)}\n",
            encoding="utf-8",
        )
        with log.open("ab") as out:
            node = subprocess.Popen(
                [sys.executable, "-c", DEBUG_CLI, "serve", "node", "--config", str(config)],
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
                env=_env(),
            )
        try:
            answers = _ask_node(f"http://127.0.0.1:{port}", data_dir, identity.headers())
        finally:
            node.terminate()
            node.wait(timeout=20)
    captured.texts["node answers"] = "\n".join(answers)
    assert "Traceback" not in log.read_text(), log.read_text()


def _ask_node(url: str, data_dir: Path, headers: dict[str, str]) -> list[str]:
    with httpx.Client(base_url=url, timeout=10) as client:
        for _ in range(200):
            try:
                if client.get("/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        else:
            pytest.fail(f"the council node at {url} never became ready")
        secret = webhook_secret(data_dir / "keys" / "council")
        # Bodies holding identifiers: cut-off JSON, and a message of the wrong shape.
        bad = [
            '{"end_device_ids": {"device_id": "AA:BB:CC:DD:EE:01"}, "nhs": "999 000 0018", ',
            json.dumps({"uplink_message": {"f_cnt": "c0-3f-0e-00-00-0b", "note": "9990000026"}}),
        ]
        answers = []
        for body in bad:
            response = client.post(
                "/ingest/ttn", content=body, headers={"X-Datatrust-Webhook-Secret": secret}
            )
            assert response.status_code == 202, response.text
            answers.append(response.text)
        query = '{ areas(codes: ["E01009522"]) { code wifiSessions footfall } }'
        for request_headers in (headers, {}):
            response = client.post("/graphql", json={"query": query}, headers=request_headers)
            answers.append(response.text)
        assert '"wifiSessions":' in answers[-2], answers[-2]
    return answers


@pytest.fixture(scope="module")
def trail(tmp_path_factory) -> tuple[Path, Captured]:
    data_dir = tmp_path_factory.mktemp("trust")
    captured = Captured()
    _ingest_everything(data_dir, captured)
    _node_requests(data_dir, captured)
    return data_dir, captured


def _leaks(text: str) -> list[str]:
    lowered = text.lower()
    return sorted({spelling for spelling in spellings() if spelling in lowered})


def test_the_fixtures_hold_the_identifiers_looked_for() -> None:
    # Not the access points' MACs (11-22-33-44-55-66, e0:55:3d:10:00:14, ...): infrastructure.
    assert device_macs() == {
        *(f"021a7b00000{n}" for n in "123"),
        *(f"aabbccddee0{n}" for n in "123"),
        *(f"c03f0e00000{n}" for n in "9abcde"),
    }
    assert nhs_numbers() == {"9990000017", "9990000018", "9990000026", "9990000034"}


def test_no_identifier_is_in_what_the_commands_and_the_node_printed(trail) -> None:
    _, captured = trail
    assert {name: _leaks(text) for name, text in captured.texts.items()} == {
        name: [] for name in captured.texts
    }


def test_no_identifier_is_in_the_log_files(trail) -> None:
    data_dir, _ = trail
    logs = sorted((data_dir / "logs").iterdir())
    assert [p.name for p in logs] == ["council.log"]
    assert "datatrust.ingest.webhooks" in logs[0].read_text()  # DEBUG logging was on
    assert {p.name: _leaks(p.read_text(errors="replace")) for p in logs} == {
        p.name: [] for p in logs
    }


def test_no_identifier_is_in_the_bytes_of_any_database_file(trail) -> None:
    data_dir, _ = trail
    files = sorted(p for p in data_dir.rglob("*.db*") if p.is_file())
    assert {p.name for p in files} >= {"council.db", "health.db", "social-care.db"}
    assert {p.name: _leaks(p.read_bytes().decode("latin-1")) for p in files} == {
        p.name: [] for p in files
    }
