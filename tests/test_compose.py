"""docker-compose.yml validates against the Compose Specification and runs our commands.

No container engine runs here, so the deployment is checked two ways. Statically: the file
validates against the Compose Specification's JSON schema, and every service's ports, health
check, volumes, secrets and dependencies agree with the settings files it mounts and with
the Dockerfile. Live: each datatrust service's own command (argv from the compose file) runs
as a process, with every mount mapped to a real path in a temporary "container" view (see
``tests/_compose.py``), PostgreSQL replaced by this machine's server (a fresh database per
node) and the MQTT broker by a private mosquitto with the compose ``mosquitto.conf``; then
each service's health-check command runs, mapped the same way, and must pass, except the
nodes' (OPA mode, and there is no OPA here): those must fail closed, saying why.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from jsonschema import Draft7Validator

from datatrust.settings import (
    GatewaySettings,
    IdentityServerSettings,
    NodeSettings,
    PortalSettings,
    load_settings,
)
from tests._compose import (
    DATATRUST_SERVICES,
    IMAGE_HEALTHCHECK_SCRIPT,
    NODES,
    Deployment,
    container_port,
    health_argv,
    named_volumes,
    settings_path,
)

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
SETTINGS_CLASSES = {
    ("serve", "node"): NodeSettings,
    ("serve", "gateway"): GatewaySettings,
    ("serve", "identity"): IdentityServerSettings,
    ("-m", "datatrust.web"): PortalSettings,
    ("ingest", "mqtt"): NodeSettings,
}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _settings(compose: dict, service: str):
    """The settings the service's command loads, from the file mounted at its --config."""
    command = compose["services"][service]["command"]
    cls = next(c for key, c in SETTINGS_CLASSES.items() if " ".join(key) in " ".join(command))
    return load_settings(cls, toml_path=settings_path(compose, service, ROOT), environ={})


# -- the file itself ------------------------------------------------------------------------


def test_the_compose_file_validates_against_the_compose_specification(compose):
    if not SCHEMA.exists():
        pytest.skip(f"the Compose Specification schema is not at {SCHEMA} (../shared/schemas)")
    validator = Draft7Validator(json.loads(SCHEMA.read_text()))
    problems = [
        f"{'/'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(compose)
    ]
    assert problems == []


def test_every_agency_node_has_its_own_database_and_opa_and_the_gateway_lists_them(compose):
    services = compose["services"]
    for node in NODES:
        assert services[node]["command"] == [
            "datatrust",
            "serve",
            "node",
            "--config",
            "/etc/datatrust/node.toml",
        ]
        assert services[node]["depends_on"] == {
            f"{node}-db": {"condition": "service_healthy"},
            f"{node}-opa": {"condition": "service_healthy", "restart": True},
        }
        settings = _settings(compose, node)
        assert settings.node_id == node
        database = urlsplit(settings.database_url)
        db = services[f"{node}-db"]
        assert database.hostname == f"{node}-db"
        assert database.username == db["environment"]["POSTGRES_USER"]
        assert database.path.lstrip("/") == db["environment"]["POSTGRES_DB"]
        password = f"/run/secrets/{db['secrets'][0]}"
        assert db["environment"]["POSTGRES_PASSWORD_FILE"] == password
        assert str(settings.database_password_file) == password
        assert db["secrets"][0] in services[node]["secrets"]
        assert named_volumes(db) == {f"{node}-db": "/var/lib/postgresql/data"}  # PGDATA
        assert db["healthcheck"]["test"][1:] == [
            "pg_isready",
            "-U",
            database.username,
            "-d",
            database.path.lstrip("/"),
        ]
        # Each agency's database and OPA sit on its own internal network with its node.
        private = f"{node}-private"
        assert compose["networks"][private] == {"internal": True}
        assert db["networks"] == [private]
        assert services[f"{node}-opa"]["networks"] == [private]
        assert private in services[node]["networks"]
    gateway = _settings(compose, "gateway")
    assert gateway.nodes == {n: f"https://{n}:8000/graphql" for n in NODES}


def test_every_node_decides_with_its_own_opa_sidecar(compose):
    for node in NODES:
        settings = _settings(compose, node)
        assert settings.policy_engine == "opa"
        opa = compose["services"][f"{node}-opa"]
        command = opa["command"]
        assert command[:2] == ["run", "--server"]
        listen = command[command.index("--addr") + 1]
        url = urlsplit(settings.opa_url)
        assert (url.hostname, url.port) == (f"{node}-opa", int(listen.rsplit(":", 1)[1]))
        health = urlsplit(opa["healthcheck"]["test"][-1])
        assert (health.port, health.path) == (url.port, "/health")
        assert opa.get("read_only") is True


def test_every_mounted_settings_file_loads_as_the_process_settings(compose):
    for service in DATATRUST_SERVICES:
        settings = _settings(compose, service)
        assert settings.data_dir == Path("/var/lib/datatrust")


def test_every_service_has_a_health_check_restart_policy_and_conditional_dependencies(compose):
    for name, service in compose["services"].items():
        assert service.get("healthcheck", {}).get("test"), f"{name} has no health check"
        assert service["healthcheck"]["test"][0] in {"CMD", "CMD-SHELL"}
        assert service.get("restart") == "unless-stopped", f"{name} has no restart policy"
        for dependency, condition in service.get("depends_on", {}).items():
            assert dependency in compose["services"]
            assert condition["condition"] == "service_healthy", f"{name} -> {dependency}"


def test_ports_health_checks_and_volumes_agree_with_the_settings(compose):
    """The container port published or exposed, the port the health check asks and the
    port the settings make the process listen on are one; the data volume is data_dir."""
    for service in DATATRUST_SERVICES:
        spec = compose["services"][service]
        settings = _settings(compose, service)
        volumes = named_volumes(spec)
        assert volumes[f"{service}-data" if service != "council-mqtt" else "council-data"] == (
            str(settings.data_dir)
        )
        if service == "council-mqtt":  # no port of its own: it checks its broker
            broker = urlsplit(settings.mqtt_broker)
            assert health_argv(spec)[-1] == f"tcp://{broker.hostname}:{broker.port}"
            mosquitto = compose["services"][broker.hostname]
            assert container_port(mosquitto) == broker.port
            continue
        assert container_port(spec) == settings.port, service
        health = urlsplit(next(a for a in health_argv(spec) if "://" in a))
        assert (health.hostname, health.port) == ("127.0.0.1", settings.port), service
    # Only the gateway, the identity server, the portal and the broker are published, and
    # only on the host's loopback; the nodes are reached through the gateway.
    published = {n: s["ports"] for n, s in compose["services"].items() if "ports" in s}
    assert set(published) == {"gateway", "identity", "portal", "mosquitto"}
    assert all(p.startswith("127.0.0.1:") for ports in published.values() for p in ports)


def test_keys_are_mounted_where_the_product_reads_them(compose):
    """``<data_dir>/keys/<name>`` (``datatrust.node.node_keys``, the identity server, ingest):
    a trust-wide key mounted anywhere else would be silently replaced by a fresh one."""
    for service in DATATRUST_SERVICES:
        spec = compose["services"][service]
        data_dir = str(_settings(compose, service).data_dir)
        for secret in spec.get("secrets", []):
            if isinstance(secret, dict):
                assert secret["target"].startswith(f"{data_dir}/keys/"), (service, secret)
                name = Path(secret["target"]).name
                assert compose["secrets"][secret["source"]]["file"].endswith(f"keys/{name}")


def test_the_portal_reads_the_settings_of_the_parts_it_checks_tokens_for(compose):
    """The console and the explorer read <data_dir>/config/<part>.toml, as `up` writes it."""
    portal = compose["services"]["portal"]
    mounted = {c["target"]: c["source"] for c in portal["configs"]}
    for part in (*NODES, "gateway"):
        source = mounted[f"/var/lib/datatrust/config/{part}.toml"]
        assert source == f"{part.replace('-', '_')}_settings"


def test_secrets_are_mounted_files_never_environment_literals(compose):
    for name, service in compose["services"].items():
        for variable in service.get("environment", {}):
            if any(word in variable for word in ("PASSWORD", "SECRET", "KEY", "TOKEN")):
                assert variable.endswith("_FILE"), f"{name} sets {variable} as a literal"
        text = " ".join(service.get("command", []))
        assert not re.search(r"://[^/@\s]+:[^/@\s]+@", text), f"{name}: password in a URL"
    assert all("file" in secret for secret in compose["secrets"].values())
    private = [s["file"] for s in compose["secrets"].values()]
    assert all(f.startswith("./deploy/secrets/") for f in private)


def test_no_secret_is_committed_only_how_to_make_them():
    listed = subprocess.run(
        ["git", "ls-files", "deploy/secrets"], cwd=ROOT, capture_output=True, text=True
    )
    if listed.returncode != 0:
        pytest.skip("not a git checkout")
    assert sorted(listed.stdout.split()) == [
        "deploy/secrets/.gitignore",
        "deploy/secrets/README.md",
    ] or sorted(listed.stdout.split()) == ["deploy/secrets/README.md"]  # before the commit
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", "deploy/secrets/trust/keys/pseudonym.key"], cwd=ROOT
    )
    assert ignored.returncode == 0, "deploy/secrets/.gitignore must ignore generated files"


# -- the image ------------------------------------------------------------------------------


def test_the_image_installs_every_package_folder_as_a_non_root_user():
    dockerfile = (ROOT / "Dockerfile").read_text()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    folders = set(project["package-dir"].values())
    copied = set(re.findall(r"^COPY (\w+) \./\1$", dockerfile, re.MULTILINE))
    assert folders <= copied, f"the Dockerfile does not copy {sorted(folders - copied)}"
    user = re.findall(r"^USER (\S+)", dockerfile, re.MULTILINE)
    assert user, "the image names no USER"
    assert not user[-1].startswith(("0", "root")), "the image must not run as root"
    assert re.search(r"^HEALTHCHECK ", dockerfile, re.MULTILINE)
    assert f"COPY deploy/healthcheck.py {IMAGE_HEALTHCHECK_SCRIPT}" in dockerfile
    assert re.search(r"^EXPOSE 8000$", dockerfile, re.MULTILINE)
    ignore = (ROOT / ".dockerignore").read_text().split()
    assert {"**", "deploy/secrets", ".datatrust"} <= set(ignore)
    assert {f"!{folder}/" for folder in folders} <= set(ignore)


def test_the_package_data_carries_every_portal_template_and_static_file():
    """Files under web/ the wheel would leave out would be missing from the image."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    patterns = project["package-data"]["datatrust.web"] + project["package-data"]["*"]
    web = ROOT / "web"
    missing = [
        str(path.relative_to(web))
        for folder in ("templates", "static")
        for path in sorted((web / folder).rglob("*"))
        if path.is_file()
        and not any(fnmatch.fnmatch(str(path.relative_to(web)), p) for p in patterns)
    ]
    assert missing == []


# -- the same commands, running -------------------------------------------------------------


@pytest.fixture(scope="module")
def deployment(compose, tmp_path_factory) -> Deployment:
    if shutil.which("mosquitto", path=f"{os.environ.get('PATH', '')}:/usr/sbin") is None:
        pytest.skip("no mosquitto binary to stand in for the broker")
    with Deployment(compose, ROOT, tmp_path_factory.mktemp("compose")) as running:
        yield running


def test_each_datatrust_service_runs_its_compose_command_and_passes_its_health_check(
    deployment,
):
    for service in ("gateway", "identity", "portal", "mosquitto", "council-mqtt"):
        result = deployment.health_check(service)
        assert result.returncode == 0, f"{service}: {result.stderr}"
    for service in ("gateway", "identity", "portal", "council-mqtt"):
        assert deployment.is_running(service), deployment.log(service)
    # The subscriber reached the broker named in the council's settings and subscribed.
    broker = deployment.map_url("mqtt://mosquitto:1883", None)
    deployment.wait_for(lambda: f"connected to {broker} as " in deployment.log("council-mqtt"))
    deployment.wait_for(lambda: "with QoS 1" in deployment.log("council-mqtt"))


def test_the_identity_server_issues_as_the_trust_directory_lists_it(deployment):
    """Tokens name the issuer the nodes look up in the signed directory."""
    issuer = deployment.map_url("http://identity.localhost:8404", None)
    discovery = deployment.get("identity", "/.well-known/openid-configuration").json()
    assert discovery["issuer"] == issuer
    assert discovery["jwks_uri"] == f"{issuer}/jwks.json"


def test_nodes_in_opa_mode_fail_closed_without_their_sidecar(deployment):
    """No OPA server here: each node starts, answers /healthz over mutual TLS, and its
    health check (/readyz) fails saying no data-use policy is in force, so it serves none."""
    for node in NODES:
        assert deployment.get(node, "/healthz").status_code == 200
        result = deployment.health_check(node)
        assert result.returncode == 1
        assert "HTTP 503" in result.stderr
        readyz = deployment.get(node, "/readyz").json()
        assert readyz["status"] == "not ready"
        assert "no data-use policy in force" in readyz["reason"]
        assert "could not be loaded into OPA" in readyz["reason"]
        assert deployment.is_running(node), deployment.log(node)


def test_the_gateway_composes_the_nodes_over_mutual_tls(deployment):
    ready = deployment.get("gateway", "/readyz")
    assert ready.status_code == 200, ready.text


def test_volumes_hold_what_the_processes_write_and_mounted_keys_are_used(deployment):
    """Each process writes into its volume, where the settings put data_dir, and uses the
    mounted trust-wide keys instead of creating its own."""
    volume = deployment.volume
    assert (volume("council-data") / "keys" / "council" / "webhook-secret").is_file()
    assert (volume("gateway-data") / "gateway.db").is_file()
    assert (volume("identity-data") / "identity").is_dir()
    assert (volume("portal-data") / "keys" / "portal-session.key").is_file()
    for node in NODES:
        keys = volume(f"{node}-data") / "keys"
        for name in ("pseudonym.key", "disclosure.key", "overlap.key"):
            assert (keys / name).is_symlink(), f"{node} made its own {name}"
    deployment.wait_for(lambda: (volume("mosquitto-data") / "mosquitto.db").is_file())


def test_the_subscriber_refuses_another_nodes_settings_file():
    """``ingest --config`` reads a node's own settings; naming another node is an error."""
    from typer.testing import CliRunner

    from datatrust.cli import app
    from datatrust.errors import SettingsError

    council = str(ROOT / "deploy" / "council.toml")
    result = CliRunner().invoke(
        app, ["ingest", "mqtt", "--node", "health", "--config", council, "--topic", "t"]
    )
    assert isinstance(result.exception, SettingsError)
    assert "is the settings of node council" in str(result.exception)


def test_the_portal_and_identity_server_name_each_other_and_the_gateway(compose):
    from datatrust.settings import GATEWAY_AUDIENCE, node_audience

    portal, identity = _settings(compose, "portal"), _settings(compose, "identity")
    assert portal.issuer == identity.effective_issuer
    issuer = urlsplit(identity.effective_issuer)
    assert (issuer.hostname, issuer.port) == ("identity.localhost", identity.port)
    assert issuer.hostname in compose["services"]["identity"]["networks"]["trust"]["aliases"]
    assert f"127.0.0.1:{identity.port}:{identity.port}" in compose["services"]["identity"]["ports"]
    assert set(identity.audiences) == {GATEWAY_AUDIENCE, *(node_audience(n) for n in NODES)}
    assert portal.redirect_uri in identity.portal_redirect_uris
    gateway = urlsplit(portal.gateway)
    assert (gateway.hostname, gateway.port) == (
        "gateway",
        container_port(compose["services"]["gateway"]),
    )
    for node in portal.consent_nodes:
        url = urlsplit(node.url)
        assert (url.scheme, url.hostname, url.port) == ("https", node.id, 8000)
