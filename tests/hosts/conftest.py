"""One three-agency trust across network namespaces, shared by the module's tests.

Made the way an operator would make it for several machines:

1. ``datatrust init --part-host council=10.88.N.11 ...``: the certificate of each node and
   of the identity server also names the address of the host it will run on;
2. ``datatrust up`` on loopback, once: demo accounts, the nodes' stores and ingested data,
   a settings file per part; the demo queries' answers there are kept as the reference;
3. each settings file moved to its host's address, the identity server given its
   certificate (an issuer off loopback must be https: the directory refuses plain http), the
   directory's endpoints and issuer moved likewise and re-signed with ``datatrust directory
   sign``;
4. every part started with ``datatrust serve`` inside its own namespace, all at once. The
   nodes and the gateway fetch the issuer's keys over https trusting the trust CA, as the
   directory's issuers get it (``tls_ca``) by themselves; nothing is added to the system's
   CAs for them (only this test process's own token requests use ``trusting``).

Then every call (test process to gateway, gateway to node, node to identity server) crosses
the bridge between namespaces, with mutual TLS between the gateway and the nodes.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from datatrust._demo_trust import EXAMPLE_PURPOSE, EXAMPLE_QUERY
from datatrust._identity_cli import request_token
from datatrust.network import client_ssl_context

from .._trust import Trust
from ._netns import Network, NetworkUnavailable, popen_in, run_in

HOSTS = {"identity": 2, "gateway": 3, "council": 11, "health": 12, "social-care": 13}
"""Each part's host: the last byte of its address (.1 is the test process)."""
NODES = ("council", "health", "social-care")
PORTS = {"gateway": 8400, "council": 8401, "health": 8402, "social-care": 8403, "identity": 8404}
"""Each part has a host to itself, so the ports are fixed: nothing else listens there."""
NODE_TIMEOUT_SECONDS = 3.0
"""The gateway's wait for one node: long enough for a loaded test machine, short for faults."""
READY_SECONDS = 90.0

RESEARCH_JOIN = (
    "{ patients(first: 1000) { pseudonym birthYear areaCode careEpisodes { serviceType start } } }"
)
DEMO_QUERIES = {
    "example": (EXAMPLE_QUERY, EXAMPLE_PURPOSE, "analyst-cli"),
    "research": (RESEARCH_JOIN, "research", "research-cli"),
}
"""The README's example query, and the research join of the ``up`` tests."""


def unavailable(reason: str) -> None:
    """Skip when namespaces cannot be made here, but fail on CI, where they must run."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true, so this is a failure, not a skip)")
    pytest.skip(reason)


class HostedTrust:
    """The parts of one trust, each a ``datatrust serve`` process in its own namespace."""

    def __init__(self, data_dir: Path, network: Network) -> None:
        self.data_dir = data_dir
        self.network = network
        self.processes: dict[str, subprocess.Popen] = {}
        self.configs: dict[str, tuple[str, Path]] = {}
        self.reference: dict[str, dict] = {}
        self.tokens: dict[tuple[str, str], str] = {}
        self.run: dict = {}

    def address(self, part: str) -> str:
        return self.network.hosts[part].address

    def namespace(self, part: str) -> str:
        return self.network.hosts[part].namespace

    @property
    def gateway(self) -> str:
        return self.run["gateway"]

    def node_url(self, node: str, path: str = "/graphql") -> str:
        return f"https://{self.address(node)}:{PORTS[node]}{path}"

    def start(self, part: str) -> None:
        kind, config = self.configs[part]
        log = (self.data_dir / "logs" / f"hosts-{part}.log").open("ab")
        self.processes[part] = popen_in(
            self.namespace(part),
            [sys.executable, "-m", "datatrust", "serve", kind, "--config", str(config)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={
                k: v
                for k, v in os.environ.items()
                if not k.startswith("DATATRUST_") and k != "SSL_CERT_FILE"
            },
        )
        log.close()

    def kill(self, part: str) -> None:
        process = self.processes.pop(part)
        process.kill()
        process.wait(10)

    def stop_all(self) -> None:
        for process in self.processes.values():
            process.send_signal(signal.SIGCONT)
            process.terminate()
        for process in self.processes.values():
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes.clear()

    def token(self, purpose: str, client: str) -> str:
        """A token through the client credentials flow, the issuer checked against the CA."""
        if (purpose, client) not in self.tokens:
            with trusting(self.run["tls"]["ca"]):
                self.tokens[purpose, client] = request_token(
                    self.run["identity"], self.data_dir, purpose, client
                )
        return self.tokens[purpose, client]

    def ask(self, name: str = "example", *, client: str | None = None) -> tuple[str, dict]:
        """A demo query through the gateway: the request id it went under, and the answer."""
        query, purpose, default_client = DEMO_QUERIES[name]
        request_id = uuid.uuid4().hex
        response = httpx.post(
            self.gateway,
            json={"query": query},
            headers={
                "Purpose": purpose,
                "Authorization": f"Bearer {self.token(purpose, client or default_client)}",
                "X-Request-Id": request_id,
            },
            timeout=60,
        )
        body = response.json()
        body["status"] = response.status_code
        return request_id, body

    def connections(self, node: str) -> list[list[str]]:
        """The TCP connections to the node's port as its host's kernel lists them (``ss``):
        each ``[state, unread bytes, unsent bytes, local address, peer address]``."""
        listing = run_in(
            self.namespace(node), ["ss", "-Htna", f"( sport = :{PORTS[node]} )"]
        ).stdout
        rows = [line.split() for line in listing.splitlines() if line]
        return [row for row in rows if row[0] != "LISTEN"]

    def peers(self, node: str) -> set[str]:
        """Remote addresses of the open connections to the node's port."""
        return {row[4].rsplit(":", 1)[0] for row in self.connections(node) if row[0] == "ESTAB"}

    def unread_bytes(self, node: str) -> int:
        """Bytes that reached the node's host but that the node has not read (Recv-Q)."""
        return sum(int(row[1]) for row in self.connections(node))

    def wait_ready(self, parts: tuple[str, ...], seconds: float = READY_SECONDS) -> None:
        """Wait until each part answers its readiness URL from this (the analyst's) host."""
        tool = self.run["tls"]
        tls = client_ssl_context(Path(tool["cert"]), Path(tool["key"]), Path(tool["ca"]))
        urls = {part: self.ready_url(part) for part in parts}
        deadline = time.monotonic() + seconds
        while urls and time.monotonic() < deadline:
            for part, url in list(urls.items()):
                if self.processes[part].poll() is not None:
                    raise AssertionError(f"{part} exited:\n{self.log_tail(part)}")
                try:
                    if httpx.get(url, verify=tls, timeout=3).status_code == 200:
                        del urls[part]
                except httpx.HTTPError:
                    pass
            time.sleep(0.2)
        if urls:
            tails = "\n".join(f"{p}: {self.log_tail(p)}" for p in urls)
            raise AssertionError(f"not ready in {seconds:.0f} s: {', '.join(urls)}\n{tails}")

    def ready_url(self, part: str) -> str:
        if part == "identity":
            return f"{self.run['identity']}/jwks.json"
        if part == "gateway":
            return self.gateway.replace("/graphql", "/readyz")
        return self.node_url(part, "/readyz")

    def log_tail(self, part: str) -> str:
        log = self.data_dir / "logs" / f"hosts-{part}.log"
        return log.read_text(errors="replace")[-2000:] if log.exists() else "(no log)"


@contextmanager
def trusting(ca: str) -> Iterator[None]:
    """``SSL_CERT_FILE`` set to the trust CA for this process, only while the block runs."""
    before = os.environ.get("SSL_CERT_FILE")
    os.environ["SSL_CERT_FILE"] = ca
    try:
        yield
    finally:
        if before is None:
            del os.environ["SSL_CERT_FILE"]
        else:
            os.environ["SSL_CERT_FILE"] = before


def datatrust(*args: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "datatrust", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert result.returncode == 0, result.stdout + result.stderr


def reference_answers(made: Trust) -> dict[str, dict]:
    """The demo queries' answers from the same trust on one machine (loopback)."""
    answers = {}
    for name, (query, purpose, client) in DEMO_QUERIES.items():
        bearer = request_token(made.run["identity"], made.data_dir, purpose, client)
        response = httpx.post(
            made.run["gateway"],
            json={"query": query},
            headers={"Purpose": purpose, "Authorization": f"Bearer {bearer}"},
            timeout=60,
        )
        assert response.status_code == 200, response.text
        answers[name] = response.json()
        assert "errors" not in answers[name], answers[name]
    return answers


def moved(text: str, host: str, port: int) -> str:
    """A settings file's text with its ``host`` and ``port`` lines set to ``host``/``port``."""
    text = re.sub(r'^host = ".*"$', f'host = "{host}"', text, count=1, flags=re.M)
    return re.sub(r"^port = \d+$", f"port = {port}", text, count=1, flags=re.M)


def place_on_hosts(trust: HostedTrust, loopback_run: dict) -> None:
    """Settings, directory and run.json of the trust moved to the namespace addresses."""
    config = trust.data_dir / "config"
    for part in (*NODES, "identity", "gateway"):
        text = moved(
            (config / f"{part}.toml").read_text(encoding="utf-8"), trust.address(part), PORTS[part]
        )
        if part == "identity":
            text += (
                "".join(
                    f'tls_{kind} = "{trust.data_dir / "tls" / name}"\n'
                    for kind, name in (("cert", "identity.pem"), ("key", "identity.key"))
                )
                + f'tls_ca = "{trust.data_dir / "tls" / "ca.pem"}"\n'
            )
        if part == "gateway":
            for node in NODES:
                text = text.replace(loopback_run["nodes"][node], trust.node_url(node))
            text = f"timeout_seconds = {NODE_TIMEOUT_SECONDS}\n" + text
        path = config / f"{part}-hosts.toml"
        path.write_text(text, encoding="utf-8")
        trust.configs[part] = ("node" if part in NODES else part, path)

    issuer = f"https://{trust.address('identity')}:{PORTS['identity']}"
    issuers = [{"issuer": issuer, "jwks_uri": f"{issuer}/jwks.json"}]
    document = json.loads((trust.data_dir / "directory.json").read_text(encoding="utf-8"))
    for member in document["members"]:
        node = member["node_id"]
        member["endpoint"] = f"https://{trust.address(node)}:{PORTS[node]}"
        member["issuers"] = issuers
    for agency in document.get("agencies", []):
        agency["issuers"] = issuers
    document["gateway"]["endpoint"] = f"https://{trust.address('gateway')}:{PORTS['gateway']}"
    document["version"] += 1
    edited = trust.data_dir / "directory-hosts.json"
    edited.write_text(json.dumps(document, indent=2), encoding="utf-8")
    datatrust("directory", "sign", str(edited), "--data-dir", str(trust.data_dir))

    trust.run = {
        **loopback_run,
        "gateway": f"http://{trust.address('gateway')}:{PORTS['gateway']}/graphql",
        "nodes": {node: trust.node_url(node) for node in NODES},
        "identity": issuer,
    }
    for key in ("portal", "console", "explorer", "mqtt"):
        trust.run.pop(key, None)  # not run across hosts
    (trust.data_dir / "run.json").write_text(json.dumps(trust.run), encoding="utf-8")


@pytest.fixture(scope="module")
def network() -> Iterator[Network]:
    missing = [tool for tool in ("ip", "tc", "ss") if shutil.which(tool) is None]
    if missing:
        unavailable(f"multi-host tests need {', '.join(missing)} (iproute2), not found on PATH")
    made = Network(HOSTS)
    try:
        made.create()
    except NetworkUnavailable as error:
        unavailable(f"cannot make network namespaces here: {error}")
    try:
        yield made
    finally:
        made.destroy()


@pytest.fixture(scope="module")
def hosted(network: Network, tmp_path_factory) -> Iterator[HostedTrust]:
    data_dir = tmp_path_factory.mktemp("hosts")
    trust = HostedTrust(data_dir, network)
    part_hosts = [f"--part-host={part}={trust.address(part)}" for part in (*NODES, "identity")]
    datatrust("init", "--data-dir", str(data_dir), *part_hosts)
    made = Trust(data_dir)
    try:
        trust.reference = reference_answers(made)
        loopback_run = dict(made.run)
    finally:
        assert made.stop() == 0, "".join(made.output)
    place_on_hosts(trust, loopback_run)
    try:
        for part in PORTS:
            trust.start(part)
        trust.wait_ready(tuple(PORTS))
        yield trust
    finally:
        trust.stop_all()
