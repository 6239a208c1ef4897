"""Run docker-compose.yml's services as processes on this machine, with their own commands.

Each service gets a "container view": every mount in the compose file (named volumes,
configs, secrets) maps its target path to a real path under a temporary directory, nested
mounts become symlinks inside the volume that holds them (as a bind mount over a volume
would), and every settings file a service mounts is rewritten for the view: container paths
become the mapped paths, and each ``host:port`` of a compose service becomes the loopback
port the test gave that service. PostgreSQL is this machine's server (a fresh database per
node, the postgres superuser, trust authentication); the OPA sidecars are not run (no
binary), their ports are left closed; the broker is a private mosquitto with the compose
``mosquitto.conf``. Nothing else is changed: the argv, the settings' other values, the
health-check commands and the trust material (``datatrust init`` as the docs say) are the
deployment's own.
"""

from __future__ import annotations

import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from datatrust._ports import free_port

__all__ = [
    "DATATRUST_SERVICES",
    "IMAGE_HEALTHCHECK_SCRIPT",
    "NODES",
    "Deployment",
    "container_port",
    "health_argv",
    "named_volumes",
    "settings_path",
]

NODES = ("council", "health", "social-care")
DATATRUST_SERVICES = (*NODES, "gateway", "identity", "portal", "council-mqtt")
IMAGE_HEALTHCHECK_SCRIPT = "/usr/local/lib/datatrust/healthcheck.py"
IMAGE_WORKDIR = "/var/lib/datatrust"
STAND_INS = ("-db", "-opa")
"""Services not run as processes: PostgreSQL is the machine's server, OPA has no binary."""
POSTGRES_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
START_SECONDS = 45.0


# -- reading the compose file ---------------------------------------------------------------


def named_volumes(spec: dict) -> dict[str, str]:
    """``{volume: target}`` of a service's short-syntax named volumes."""
    return {v.split(":")[0]: v.split(":")[1] for v in spec.get("volumes", [])}


def container_port(spec: dict) -> int | None:
    """The container port of a service's ``ports`` (HOST_IP:HOST:CONTAINER) or ``expose``."""
    for entry in spec.get("ports", []):
        return int(str(entry).rsplit(":", 1)[1])
    for entry in spec.get("expose", []):
        return int(entry)
    return None


def health_argv(spec: dict) -> list[str]:
    """The health check's argv (CMD form), with Compose's ``$$`` escape undone."""
    test = spec["healthcheck"]["test"]
    assert test[0] == "CMD", "health checks are CMD form, so they map onto argv"
    return [arg.replace("$$", "$") for arg in test[1:]]


def _config_arg(command: list[str]) -> str | None:
    return command[command.index("--config") + 1] if "--config" in command else None


def settings_path(compose: dict, service: str, root: Path) -> Path:
    """The repository file mounted where the service's command reads ``--config``."""
    spec = compose["services"][service]
    target = _config_arg(spec["command"])
    source = next(c["source"] for c in spec["configs"] if c["target"] == target)
    return root / compose["configs"][source]["file"]


# -- the running deployment ------------------------------------------------------------------


class Deployment:
    """The compose services as processes; a context manager that stops them all."""

    def __init__(self, compose: dict, root: Path, tmp: Path) -> None:
        self.compose, self.root, self.tmp = compose, root, tmp
        self.services: dict[str, dict] = compose["services"]
        self.processes: dict[str, subprocess.Popen] = {}
        self.databases: dict[str, str] = {}
        self.secrets_dir = tmp / "secrets"  # stands for ./deploy/secrets
        self.ports: dict[str, int] = {}
        self.endpoints: dict[tuple[str, int], int] = {}

    # -- setup --------------------------------------------------------------------------

    def __enter__(self) -> Deployment:
        try:
            self._make_secrets()
            self._assign_ports()
            self._create_databases()
            self._sign_directory()
            for service in self.services:
                if not service.endswith(STAND_INS):
                    self._make_view(service)
            self._start_in_dependency_order()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _run(self, argv: list[str], **options: Any) -> subprocess.CompletedProcess:
        result = subprocess.run(argv, capture_output=True, text=True, env=_env(), **options)
        assert result.returncode == 0, f"{argv}: {result.stdout}{result.stderr}"
        return result

    def _make_secrets(self) -> None:
        """What deploy/secrets/README.md tells an operator to make, made the same way."""
        trust = self.secrets_dir / "trust"
        hosts = [arg for node in NODES for arg in ("--part-host", f"{node}={node}")]
        self._run([*DATATRUST, "init", "--data-dir", str(trust), *hosts])
        for name in ("pseudonym.key", "disclosure.key"):
            (trust / "keys" / name).write_text(secrets.token_hex(32) + "\n")
        for node in NODES:
            path = self.secrets_dir / f"{node.replace('-', '_')}_db_password"
            path.write_text(secrets.token_hex(24) + "\n")

    def _assign_ports(self) -> None:
        for service, spec in self.services.items():
            port = container_port(spec)
            if port is not None and not service.endswith("-db"):
                self.ports[service] = free_port()
                for name in (service, *_aliases(spec)):
                    self.endpoints[(name, port)] = self.ports[service]
        for node in NODES:  # nothing listens there: the stand-in for an absent sidecar
            listen = self.services[f"{node}-opa"]["command"]
            port = int(listen[listen.index("--addr") + 1].rsplit(":", 1)[1])
            self.endpoints[(f"{node}-opa", port)] = free_port()

    def _create_databases(self) -> None:
        import psycopg

        with psycopg.connect(POSTGRES_ADMIN, autocommit=True, connect_timeout=5) as admin:
            for node in NODES:
                name = f"datatrust_compose_{secrets.token_hex(4)}_{node.replace('-', '_')}"
                admin.execute(f'CREATE DATABASE "{name}"')
                self.databases[f"{node}-db"] = name

    def _sign_directory(self) -> None:
        """The operator's step: deploy/compose_directory.py, then ``directory sign``."""
        sys.path.insert(0, str(self.root / "deploy"))
        try:
            from compose_directory import compose_directory, deployment_addresses
        finally:
            sys.path.pop(0)
        trust = self.secrets_dir / "trust"
        path = trust / "directory.json"
        issuer, nodes = deployment_addresses(self.root / "deploy")
        document = compose_directory(json.loads(path.read_text()), issuer, nodes)
        path.write_text(json.dumps(self._mapped(document, None), indent=2))
        self._run([*DATATRUST, "directory", "sign", str(path), "--data-dir", str(trust)])

    # -- container views ----------------------------------------------------------------

    def volume(self, name: str) -> Path:
        path = self.tmp / "volumes" / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _mounts(self, service: str) -> dict[str, Path]:
        spec = self.services[service]
        mounts = {target: self.volume(name) for name, target in named_volumes(spec).items()}
        for config in spec.get("configs", []):
            source = self._source(self.compose["configs"][config["source"]]["file"])
            if source.suffix in {".toml", ".conf"}:
                source = self.tmp / "views" / service / config["source"]
            mounts[config["target"]] = source
        for secret in spec.get("secrets", []):
            name, target = (secret, secret) if isinstance(secret, str) else secret.values()
            target = target if target.startswith("/") else f"/run/secrets/{target}"
            mounts[target] = self._source(self.compose["secrets"][name]["file"])
        return mounts

    def _source(self, file: str) -> Path:
        if file.startswith("./deploy/secrets/"):
            return self.secrets_dir / file.removeprefix("./deploy/secrets/")
        return self.root / file

    def host_path(self, service: str, container_path: str) -> Path:
        """Where ``container_path`` of ``service`` is on this machine (longest mount first)."""
        for target, source in sorted(self._mounts(service).items(), key=lambda m: -len(m[0])):
            if container_path == target or container_path.startswith(target.rstrip("/") + "/"):
                return source / container_path[len(target) :].lstrip("/")
        return self.tmp / "views" / service / "root" / container_path.lstrip("/")

    def _make_view(self, service: str) -> None:
        spec = self.services[service]
        view = self.tmp / "views" / service
        view.mkdir(parents=True, exist_ok=True)
        for config in spec.get("configs", []):
            file = self.root / self.compose["configs"][config["source"]]["file"]
            if file.suffix == ".toml":
                owner = self._owner(config["source"])
                data = self._mapped(tomllib.loads(file.read_text()), service)
                if "port" in data and owner in self.ports:
                    data["port"] = self.ports[owner]
                (view / config["source"]).write_text(_toml(data))
            elif file.suffix == ".conf":
                (view / config["source"]).write_text(self._mosquitto_conf(service, file))
        mounts = self._mounts(service)
        volumes = {t: s for t, s in mounts.items() if s.is_relative_to(self.tmp / "volumes")}
        for target, source in mounts.items():
            for outer, volume in volumes.items():
                if target != outer and target.startswith(outer.rstrip("/") + "/"):
                    link = volume / target[len(outer) :].lstrip("/")
                    link.parent.mkdir(parents=True, exist_ok=True)
                    if not link.is_symlink():
                        link.symlink_to(source)

    def _owner(self, config: str) -> str:
        """The service whose own ``--config`` this settings file is (the one with a port)."""
        for service, spec in self.services.items():
            target = _config_arg(spec.get("command", []))
            mounted = {c["target"]: c["source"] for c in spec.get("configs", [])}
            if target and mounted.get(target) == config and service in self.ports:
                return service
        return ""

    def _mosquitto_conf(self, service: str, file: Path) -> str:
        lines = []
        for line in file.read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == "listener":
                line = f"listener {self.ports[service]} 127.0.0.1"
            elif key == "persistence_location":
                line = f"{key} {self.host_path(service, value)}/"
            lines.append(line)
        # The image's entrypoint owns its data folder; here mosquitto stays this user.
        lines.append(f"user {pwd.getpwuid(os.geteuid()).pw_name}")
        return "\n".join(lines) + "\n"

    def _mapped(self, value: Any, service: str | None) -> Any:
        """Container paths and compose addresses in ``value`` as this machine's."""
        if isinstance(value, dict):
            return {key: self._mapped(item, service) for key, item in value.items()}
        if isinstance(value, list):
            return [self._mapped(item, service) for item in value]
        if not isinstance(value, str):
            return value
        if "://" in value:
            return self.map_url(value, service)
        if value.startswith("/") and service is not None:
            return str(self.host_path(service, value))
        return value

    def map_url(self, url: str, service: str | None) -> str:
        parts = urlsplit(url)
        if parts.scheme.startswith("postgresql") and parts.hostname in self.databases:
            name = self.databases[parts.hostname]
            return f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
        default = {"http": 80, "https": 443, "mqtt": 1883}.get(parts.scheme, 0)
        key = (parts.hostname or "", parts.port or default)
        if key[0] in {"127.0.0.1", "localhost"} and service is not None:
            key = (service, key[1])  # a container's loopback is that container
        if key not in self.endpoints:
            return url
        return urlunsplit(parts._replace(netloc=f"127.0.0.1:{self.endpoints[key]}"))

    def map_argv(self, service: str, argv: list[str]) -> list[str]:
        head = {"datatrust": DATATRUST, "python": [sys.executable]}.get(argv[0])
        if head is None:
            found = shutil.which(argv[0], path=f"{os.environ.get('PATH', '')}:/usr/sbin")
            assert found, f"no {argv[0]} on this machine"
            head = [found]
        mapped = [
            str(self.root / "deploy" / "healthcheck.py")
            if arg == IMAGE_HEALTHCHECK_SCRIPT
            else self._mapped(arg, service)
            for arg in argv[1:]
        ]
        return [*head, *mapped]

    # -- processes ----------------------------------------------------------------------

    def _start_in_dependency_order(self) -> None:
        waiting = [s for s in self.services if not s.endswith(STAND_INS)]
        alive = {s for s in self.services if s.endswith(STAND_INS)}
        deadline = time.monotonic() + START_SECONDS
        while waiting:
            ready = [s for s in waiting if set(self.services[s].get("depends_on", {})) <= alive]
            assert ready, f"dependency cycle among {waiting}"
            for service in ready:
                self._start(service)
                waiting.remove(service)
            for service in ready:
                self._wait_alive(service, deadline)
                alive.add(service)

    def _start(self, service: str) -> None:
        argv = self.map_argv(service, self.services[service]["command"])
        cwd = self.host_path(service, IMAGE_WORKDIR)
        cwd.mkdir(parents=True, exist_ok=True)
        log = (self.tmp / "views" / service / "log").open("w")
        self.processes[service] = subprocess.Popen(
            argv, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, env=_env(), start_new_session=True
        )
        log.close()

    def _wait_alive(self, service: str, deadline: float) -> None:
        """Up enough for its dependants to start: the process answers on its port."""
        if service not in self.ports:
            return
        while time.monotonic() < deadline:
            assert self.is_running(service), f"{service} exited:\n{self.log(service)}"
            try:
                socket.create_connection(("127.0.0.1", self.ports[service]), 0.5).close()
                return
            except OSError:
                time.sleep(0.2)
        raise AssertionError(f"{service} did not listen in time:\n{self.log(service)}")

    def is_running(self, service: str) -> bool:
        return self.processes[service].poll() is None

    def log(self, service: str) -> str:
        return (self.tmp / "views" / service / "log").read_text(errors="replace")[-3000:]

    def health_check(self, service: str) -> subprocess.CompletedProcess:
        argv = self.map_argv(service, health_argv(self.services[service]))
        return subprocess.run(argv, capture_output=True, text=True, env=_env(), timeout=20)

    def get(self, service: str, path: str) -> httpx.Response:
        """GET from a service; a node is asked over mutual TLS as the portal does (tool)."""
        trust = self.secrets_dir / "trust" / "tls"
        if service in NODES:
            context = ssl.create_default_context(cafile=trust / "ca.pem")
            context.load_cert_chain(trust / "tool.pem", trust / "tool.key")
            url = f"https://127.0.0.1:{self.ports[service]}{path}"
            return httpx.get(url, verify=context, timeout=10)
        return httpx.get(f"http://127.0.0.1:{self.ports[service]}{path}", timeout=10)

    def wait_for(self, predicate: Callable[[], bool], seconds: float = 15.0) -> None:
        deadline = time.monotonic() + seconds
        while not predicate():
            assert time.monotonic() < deadline, "timed out"
            time.sleep(0.2)

    def __exit__(self, *exc: object) -> None:
        """Stop dependants before what they depend on, as ``docker compose down`` does: a
        node stopped while the gateway holds connections to it waits for them to close."""
        for process in reversed(self.processes.values()):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        if self.databases:
            import psycopg

            with psycopg.connect(POSTGRES_ADMIN, autocommit=True, connect_timeout=5) as admin:
                for name in self.databases.values():
                    admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


DATATRUST = [sys.executable, "-m", "datatrust"]


def _aliases(spec: dict) -> list[str]:
    """A service's network aliases (other names it answers to on its networks)."""
    networks = spec.get("networks", [])
    if not isinstance(networks, dict):
        return []
    return [alias for network in networks.values() for alias in (network or {}).get("aliases", [])]


def _env() -> dict[str, str]:
    """This environment without any DATATRUST_ setting: only the files configure."""
    return {k: v for k, v in os.environ.items() if not k.startswith("DATATRUST_")}


def _toml(data: dict[str, Any]) -> str:
    """TOML for settings files: scalars, lists of scalars, tables, arrays of tables."""
    lines: list[str] = []
    tables: list[str] = []
    for key, value in data.items():
        if isinstance(value, dict):
            tables += ["", f"[{key}]", *(f"{k} = {_value(v)}" for k, v in value.items())]
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            for item in value:
                tables += ["", f"[[{key}]]", *(f"{k} = {_value(v)}" for k, v in item.items())]
        else:
            lines.append(f"{key} = {_value(value)}")
    return "\n".join(lines + tables) + "\n"


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_value(item) for item in value) + "]"
    return json.dumps(str(value))
