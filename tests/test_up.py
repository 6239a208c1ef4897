"""``datatrust up`` as a user runs it: a subprocess on free loopback ports."""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import sqlite3
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey

from datatrust._demo_trust import example_curl
from datatrust._ingest_cli import LIVE_TOPICS
from datatrust.network import client_ssl_context
from datatrust.settings import GATEWAY_AUDIENCE

pytestmark = pytest.mark.slow

START_TIMEOUT_SECONDS = 180
TABLES = (
    "sensor",
    "reading",
    "access_point",
    "wifi_session",
    "person",
    "encounter",
    "care_episode",
)


def free_base_port() -> int:
    """A port P such that P..P+3 are all free on loopback."""
    for _ in range(200):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = probe.getsockname()[1]
        if base > 65000:
            continue
        sockets = []
        try:
            for port in range(base, base + 4):
                s = socket.socket()
                sockets.append(s)
                s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
    raise RuntimeError("no four consecutive free ports")


class Trust:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.base_port = free_base_port()
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "datatrust",
                "up",
                "--data-dir",
                str(data_dir),
                "--base-port",
                str(self.base_port),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "COLUMNS": "200"},
        )
        self.output: list[str] = []
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                raise AssertionError("datatrust up ended early:\n" + "".join(self.output))
            self.output.append(line)
            if "Press Ctrl-C to stop" in line:
                break
        else:
            raise AssertionError("datatrust up not ready in time:\n" + "".join(self.output))
        self.run = json.loads((data_dir / "run.json").read_text())

    @property
    def curl(self) -> str:
        return next(line.strip() for line in self.output if line.startswith("curl "))

    def children(self) -> list[int]:
        pids = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except (FileNotFoundError, ProcessLookupError, IndexError):
                continue
            if int(fields[1]) == self.process.pid:
                pids.append(int(stat.parent.name))
        return pids

    def stop(self, sig: int = signal.SIGINT) -> int:
        self.process.send_signal(sig)
        try:
            rest, _ = self.process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise
        self.output.append(rest)
        return self.process.returncode


def row_counts(data_dir: Path) -> dict[str, dict[str, int]]:
    counts = {}
    for node in ("council", "health", "social-care"):
        with sqlite3.connect(data_dir / f"{node}.db") as db:
            counts[node] = {
                t: db.execute(f"select count(*) from {t}").fetchone()[0]  # noqa: S608
                for t in TABLES
            }
    return counts


@pytest.fixture(scope="module")
def trust(tmp_path_factory):
    running = Trust(tmp_path_factory.mktemp("trust"))
    running.token = token(running, "service-planning research")
    yield running
    if running.process.poll() is None:
        running.stop()


def datatrust_env() -> dict[str, str]:
    """The environment with this Python's scripts first on PATH (for `datatrust token`)."""
    scripts = str(Path(sys.executable).parent)
    return {**os.environ, "PATH": f"{scripts}{os.pathsep}{os.environ.get('PATH', '')}"}


def token(trust: Trust, purpose: str) -> str:
    """An access token through the real client credentials flow, as a user gets one."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "datatrust",
            "token",
            "--purpose",
            purpose,
            "--data-dir",
            str(trust.data_dir),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip()


TLS_CONTEXTS: dict[str, ssl.SSLContext] = {}


def tool_tls(run: dict) -> ssl.SSLContext:
    """The local tools' client certificate from run.json, as a user's script would use it."""
    tls = run["tls"]
    if tls["cert"] not in TLS_CONTEXTS:
        TLS_CONTEXTS[tls["cert"]] = client_ssl_context(
            Path(tls["cert"]), Path(tls["key"]), Path(tls["ca"])
        )
    return TLS_CONTEXTS[tls["cert"]]


def post(
    url: str,
    query: str,
    purpose: str | None,
    variables: dict | None = None,
    *,
    bearer: str | None = None,
    verify: ssl.SSLContext | bool = True,
) -> httpx.Response:
    headers = {"Purpose": purpose} if purpose is not None else {}
    if bearer is not None:
        headers["Authorization"] = f"Bearer {bearer}"
    return httpx.post(
        url,
        json={"query": query, "variables": variables or {}},
        headers=headers,
        timeout=30,
        verify=verify,
    )


def test_the_printed_example_query_gets_fields_from_all_three_nodes(trust):
    assert trust.curl == example_curl(trust.run["gateway"], str(trust.data_dir))
    result = subprocess.run(
        ["bash", "-c", trust.curl],
        capture_output=True,
        text=True,
        check=True,
        env=datatrust_env(),
    )
    body = json.loads(result.stdout)
    assert "errors" not in body
    areas = body["data"]["areas"]
    assert len(areas) == 5
    assert all(a["code"].startswith("E01") and a["name"].startswith("Coventry ") for a in areas)
    assert any(a["footfall"] for a in areas), "council footfall"
    assert any(a["airQuality"] and a["airQuality"]["pm25Mean"] for a in areas), "council air"
    assert any(a["encounterCount"] for a in areas), "health encounters"
    assert any(a["openCareEpisodes"] for a in areas), "social-care episodes"


def test_run_json_names_the_gateway_and_every_node(trust):
    base = trust.base_port
    live = trust.run.pop("mqtt", None)  # present when the local broker answers
    assert live in (None, {"broker": "mqtt://127.0.0.1:1883", "topics": list(LIVE_TOPICS)})
    assert trust.run == {
        "identity": f"http://127.0.0.1:{base + 4}",
        "gateway": f"http://127.0.0.1:{base}/graphql",
        "nodes": {
            "council": f"https://127.0.0.1:{base + 1}/graphql",
            "health": f"https://127.0.0.1:{base + 2}/graphql",
            "social-care": f"https://127.0.0.1:{base + 3}/graphql",
        },
        "tls": {
            "ca": str(trust.data_dir / "tls" / "ca.pem"),
            "cert": str(trust.data_dir / "tls" / "tool.pem"),
            "key": str(trust.data_dir / "tls" / "tool.key"),
        },
    }


def test_status_shows_every_part_ready(trust):
    result = subprocess.run(
        [sys.executable, "-m", "datatrust", "status", "--data-dir", str(trust.data_dir)],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("ready") == 4  # the gateway and three nodes


DATA_QUERY = "{ areas(first: 2) { code footfall } }"
ENTITIES_QUERY = (
    "query($r: [_Any!]!) { _entities(representations: $r) { ... on Area { code %s } } }"
)
ENTITY_FIELD = {
    "health": "encounterCount",
    "social-care": "openCareEpisodes",
    "council": "footfall",
}
REFUSALS = [
    (None, 400, "PURPOSE_MISSING", "no purpose declared"),
    ("marketing", 400, "PURPOSE_UNKNOWN", "unknown purpose 'marketing'"),
    (
        "research",
        403,
        "ACCESS_DENIED",
        "no agreement in force lets agency 'council' with these roles use data held at node",
    ),
]


@pytest.mark.parametrize(("purpose", "status", "code", "message"), REFUSALS)
def test_the_gateway_refuses_with_a_clear_error_and_no_data(trust, purpose, status, code, message):
    response = post(trust.run["gateway"], DATA_QUERY, purpose, bearer=trust.token)
    assert response.status_code == status
    body = response.json()
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == code
    assert message in body["errors"][0]["message"]


@pytest.mark.parametrize("node", ["council", "health", "social-care"])
@pytest.mark.parametrize(("purpose", "status", "code", "message"), REFUSALS)
def test_each_node_refuses_a_direct_entities_call_too(trust, node, purpose, status, code, message):
    query = ENTITIES_QUERY % ENTITY_FIELD[node]
    representations = [{"__typename": "Area", "code": "E01009522"}]
    response = post(
        trust.run["nodes"][node],
        query,
        purpose,
        {"r": representations},
        bearer=trust.token,
        verify=tool_tls(trust.run),
    )
    assert response.status_code == status
    body = response.json()
    assert body == {"data": None, "errors": body["errors"]}
    assert body["errors"][0]["extensions"]["code"] == code
    assert message in body["errors"][0]["message"]


@pytest.mark.parametrize("part", ["gateway", "council", "health", "social-care"])
def test_every_part_refuses_a_request_without_a_token_with_401(trust, part):
    url = trust.run["gateway"] if part == "gateway" else trust.run["nodes"][part]
    query = DATA_QUERY if part in ("gateway", "council") else ENTITIES_QUERY % ENTITY_FIELD[part]
    response = post(url, query, "service-planning", {"r": []}, verify=tool_tls(trust.run))
    assert response.status_code == 401
    body = response.json()
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


@pytest.mark.parametrize("node", ["council", "health", "social-care"])
def test_a_node_serves_only_mutual_tls_clients(trust, node):
    ca_only = ssl.create_default_context(cafile=trust.run["tls"]["ca"])
    with pytest.raises((httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError)):
        post(
            trust.run["nodes"][node],
            DATA_QUERY,
            "service-planning",
            bearer=trust.token,
            verify=ca_only,
        )


def forged_tokens(trust: Trust) -> dict[str, str]:
    """Tokens an attacker can make without the issuer's key, each a known attack."""
    now = int(time.time())
    claims = {
        "iss": trust.run["identity"],
        "sub": "analyst-cli",
        "client_id": "analyst-cli",
        "aud": [GATEWAY_AUDIENCE],
        "exp": now + 300,
        "iat": now,
        "jti": "forged",
        "agency": "council",
        "roles": ["analyst"],
        "purposes": ["service-planning"],
    }
    stranger = ECKey.generate_key("P-256", auto_kid=True)

    def signed(header: dict) -> str:
        return jwt.encode({"alg": "ES256", "typ": "at+jwt", **header}, claims, stranger)

    def unsigned(header: dict) -> str:
        def part(data: dict) -> str:
            return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

        return f"{part(header)}.{part(claims)}."

    return {
        "malformed": "not-a-token",
        "alg none": unsigned({"alg": "none", "typ": "at+jwt", "kid": "k1"}),
        "unknown key": signed({"kid": stranger.kid}),
        "jku header": signed({"kid": stranger.kid, "jku": "https://attacker.example/jwks"}),
        "kid with path characters": signed({"kid": "../../keys/signing"}),
    }


@pytest.mark.parametrize(
    "kind", ["malformed", "alg none", "unknown key", "jku header", "kid with path characters"]
)
def test_the_gateway_refuses_a_forged_token_and_audits_it(trust, kind):
    ledger = trust.data_dir / "gateway.db"
    with sqlite3.connect(ledger) as db:
        before = db.execute("select count(*) from audit_event").fetchone()[0]
    response = post(
        trust.run["gateway"], DATA_QUERY, "service-planning", bearer=forged_tokens(trust)[kind]
    )
    assert response.status_code == 401
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    with sqlite3.connect(ledger) as db:
        rows = db.execute("select outcome, code from audit_event order by seq").fetchall()[before:]
    assert rows == [("deny", "UNAUTHENTICATED")]


def test_a_token_is_refused_for_a_purpose_it_does_not_allow(trust):
    research_only = token(trust, "research")
    response = post(trust.run["gateway"], DATA_QUERY, "service-planning", bearer=research_only)
    assert response.status_code == 403
    assert response.json()["errors"][0]["message"] == (
        "access denied: your access token does not allow purpose 'service-planning' "
        "(it allows: research)"
    )


def test_a_node_answers_a_direct_entities_call_for_service_planning(trust):
    representations = [{"__typename": "Area", "code": "E01009522"}]
    response = post(
        trust.run["nodes"]["health"],
        ENTITIES_QUERY % "encounterCount",
        "service-planning",
        {"r": representations},
        bearer=trust.token,
        verify=tool_tls(trust.run),
    )
    assert response.status_code == 200
    (entity,) = response.json()["data"]["_entities"]
    assert entity["code"] == "E01009522"
    assert isinstance(entity["encounterCount"], int)


def test_sigint_stops_every_process_and_a_second_up_duplicates_nothing(trust):
    children = trust.children()
    # Three nodes, the gateway and the identity server, plus the MQTT subscriber and the
    # demo feed when the broker answers.
    assert len(children) == (7 if "Live feed on" in "".join(trust.output) else 5), children
    assert trust.stop(signal.SIGINT) == 0
    for pid in children:
        assert not Path(f"/proc/{pid}").exists(), f"child {pid} still running"
    assert not (trust.data_dir / "run.json").exists()

    before = row_counts(trust.data_dir)
    assert all(before["council"][t] for t in ("sensor", "reading", "access_point", "wifi_session"))
    assert before["health"]["person"]
    assert before["health"]["encounter"]
    assert before["social-care"]["care_episode"]
    again = Trust(trust.data_dir)
    try:
        assert row_counts(trust.data_dir) == before
    finally:
        assert again.stop(signal.SIGTERM) == 0


def test_a_port_already_in_use_is_named(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "datatrust",
                "up",
                "--data-dir",
                str(tmp_path),
                "--base-port",
                str(port),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "COLUMNS": "200"},
        )
    assert result.returncode == 2
    assert f"port {port} on 127.0.0.1 is already in use, and the gateway needs it" in (
        " ".join(result.stderr.split())
    )
