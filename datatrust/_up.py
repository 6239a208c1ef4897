"""What ``datatrust up`` does between checking its ports and waiting: start every part.

The identity server first (demo accounts on first run), then each node (its store
migrated and its demo sources ingested, then served over mutual TLS), then the gateway,
the citizen portal and, when a broker answers, the council's MQTT subscriber and the live
demo feed.
"""

from __future__ import annotations

import sys
from pathlib import Path

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from datatrust._console import console
from datatrust._demo_trust import DEMO_NODES, example_curl
from datatrust.settings import load_settings

__all__ = [
    "console_redirect_uri",
    "explorer_redirect_uri",
    "portal_redirect_uri",
    "print_endpoints",
    "start_identity",
    "start_live_feed",
    "start_portal",
    "start_trust",
]


def start_identity(runner, data_dir: Path, host: str, ports: dict[str, int], _runner):
    """Start the identity server (creating the demo accounts on first run)."""
    from datatrust._identity_cli import ensure_demo_accounts
    from datatrust.settings import (
        GATEWAY_AUDIENCE,
        IdentityServerSettings,
        node_audience,
    )

    config_dir = data_dir / "config"
    config_dir.mkdir(exist_ok=True)
    config = config_dir / "identity.toml"
    audiences = [GATEWAY_AUDIENCE, *(node_audience(n.node_id) for n in DEMO_NODES)]
    config.write_text(
        f'host = "{host}"\nport = {ports["identity"]}\ndata_dir = "{data_dir.as_posix()}"\n'
        f"audiences = [{', '.join(repr(a).replace(chr(39), chr(34)) for a in audiences)}]\n"
        f'portal_redirect_uris = ["{portal_redirect_uri(host, ports)}", '
        f'"{console_redirect_uri(host, ports)}", "{explorer_redirect_uri(host, ports)}"]\n',
        encoding="utf-8",
    )
    settings = load_settings(IdentityServerSettings, toml_path=config, environ={})
    credentials = ensure_demo_accounts(settings)
    _update_portal_redirect(settings)
    issuer = settings.effective_issuer
    child = _runner.ChildProcess(
        name="identity server",
        argv=_runner.serve_argv("identity", config),
        ready_url=f"{issuer}/jwks.json",
        log_path=data_dir / "logs" / "identity.log",
    )
    runner.start(child)
    runner.wait_ready([child])
    return issuer, credentials


def portal_redirect_uri(host: str, ports: dict[str, int]) -> str:
    """Where the identity server sends citizens back to the portal (exact match)."""
    return f"http://{host}:{ports['portal']}/callback"


def console_redirect_uri(host: str, ports: dict[str, int]) -> str:
    """Where the identity server sends DPOs back to the console (on the portal's server)."""
    return f"http://{host}:{ports['portal']}/console/callback"


def explorer_redirect_uri(host: str, ports: dict[str, int]) -> str:
    """Where the identity server sends analysts back to the explorer (on the portal's server)."""
    return f"http://{host}:{ports['portal']}/explorer/callback"


def _update_portal_redirect(settings) -> None:
    """Point the portal client at this run's port (accounts are made on the first run only).

    Without this, a trust started again with another ``--base-port`` would send citizens
    back to the old port, and the identity server would refuse the sign-in.
    """
    from datatrust.trust.identity._store import IdentityStore

    store = IdentityStore(settings.data_dir / "identity" / "identity.db")
    try:
        row = store.client("portal")
        if row is not None and row["redirect_uris"] != list(settings.portal_redirect_uris):
            store.add_client(**{**row, "redirect_uris": list(settings.portal_redirect_uris)})
    finally:
        store.engine.dispose()


def _tls_toml(files) -> str:
    return (
        f'tls_cert = "{files.cert.as_posix()}"\ntls_key = "{files.key.as_posix()}"\n'
        f'tls_ca = "{files.ca.as_posix()}"\n'
    )


def start_trust(
    runner,
    data_dir: Path,
    host: str,
    ports: dict[str, int],
    _prepare,
    _runner,
    pki,
):
    from datatrust._network_cli import signed_directory_path
    from datatrust.network import operator_public_key_path
    from datatrust.settings import NodeSettings

    sources = _prepare.write_demo_files(data_dir)
    config_dir = data_dir / "config"
    config_dir.mkdir(exist_ok=True)
    node_children = []
    node_urls: dict[str, str] = {}
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as progress:
        for node in DEMO_NODES:
            config = config_dir / f"{node.node_id}.toml"
            config.write_text(
                f'node_id = "{node.node_id}"\nagency = "{node.agency}"\n'
                f'host = "{host}"\nport = {ports[node.node_id]}\n'
                f'data_dir = "{data_dir.as_posix()}"\n'
                + _tls_toml(pki.files(node.node_id))
                + f'directory = "{signed_directory_path(data_dir).as_posix()}"\n'
                + f'operator_public_key = "{operator_public_key_path(data_dir).as_posix()}"\n',
                encoding="utf-8",
            )
            settings = load_settings(NodeSettings, toml_path=config, environ={})
            files = sources[node.node_id]
            task = progress.add_task(f"{node.node_id}: ingest demo sources", total=None)
            report = _prepare.prepare_demo_node(
                data_dir,
                node.node_id,
                settings.effective_database_url,
                files,
                on_progress=lambda n, task=task: progress.advance(task, n),
            )
            loaded = sum(r.records_loaded for r in report.reports)
            skipped = sum(1 for r in report.reports if r.status == "skipped")
            progress.update(
                task,
                total=progress.tasks[task].completed or 1,
                completed=progress.tasks[task].completed or 1,
                description=f"{node.node_id}: {loaded} records loaded, "
                f"{skipped} of {len(files)} files already loaded",
            )
            child = _runner.ChildProcess(
                name=f"{node.node_id} node",
                argv=_runner.serve_argv("node", config),
                ready_url=f"https://{host}:{ports[node.node_id]}/readyz",
                log_path=data_dir / "logs" / f"{node.node_id}.log",
            )
            runner.start(child)
            node_children.append(child)
            node_urls[node.node_id] = f"https://{host}:{ports[node.node_id]}/graphql"
    runner.wait_ready(node_children)

    gateway_config = config_dir / "gateway.toml"
    lines = [
        f'host = "{host}"',
        f"port = {ports['gateway']}",
        f'data_dir = "{data_dir.as_posix()}"',
        _tls_toml(pki.files("gateway")).strip(),
        f'directory = "{signed_directory_path(data_dir).as_posix()}"',
        f'operator_public_key = "{operator_public_key_path(data_dir).as_posix()}"',
    ]
    lines.append("[nodes]")
    lines += [f'"{name}" = "{url}"' for name, url in node_urls.items()]
    gateway_config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    gateway = _runner.ChildProcess(
        name="gateway",
        argv=_runner.serve_argv("gateway", gateway_config),
        ready_url=f"http://{host}:{ports['gateway']}/readyz",
        log_path=data_dir / "logs" / "gateway.log",
    )
    runner.start(gateway)
    runner.wait_ready([gateway])
    return node_urls


def start_portal(
    runner, data_dir: Path, host: str, ports: dict[str, int], issuer: str, node_urls, pki, _runner
) -> str:
    """Start the citizen portal; it calls the consent nodes with the local tools' certificate."""
    from datatrust.node import CONSENT_NODES

    names = {n.node_id: n.agency for n in DEMO_NODES}
    config = data_dir / "config" / "portal.toml"
    lines = [
        f'host = "{host}"',
        f"port = {ports['portal']}",
        f'data_dir = "{data_dir.as_posix()}"',
        f'issuer = "{issuer}"',
        f'gateway = "http://{host}:{ports["gateway"]}/graphql"',  # the analyst explorer's
        _tls_toml(pki.files("tool")).strip(),
    ]
    for node_id in CONSENT_NODES:
        url = node_urls[node_id].removesuffix("/graphql") + "/consent"
        lines += ["[[consent_nodes]]", f'id = "{node_id}"', f'name = "{names[node_id]}"']
        lines.append(f'url = "{url}"')
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    url = f"http://{host}:{ports['portal']}"
    child = _runner.ChildProcess(
        name="citizen portal",
        argv=[sys.executable, "-m", "datatrust.web", "--config", str(config)],
        ready_url=f"{url}/healthz",
        log_path=data_dir / "logs" / "portal.log",
    )
    runner.start(child)
    runner.wait_ready([child])
    return url


def start_live_feed(runner, data_dir: Path, _runner) -> dict | None:
    """The council's MQTT subscriber and the demo feed, when the broker answers."""
    from datatrust._ingest_cli import LIVE_TOPICS, subscriber_client_id
    from datatrust.ingest import broker_address
    from datatrust.settings import NodeSettings

    config = data_dir / "config" / "council.toml"
    broker = load_settings(NodeSettings, toml_path=config, environ={}).mqtt_broker
    host, port = broker_address(broker)
    reason = _runner.broker_unreachable_reason(host, port)
    if reason is not None:
        console.print(
            f"Live feed off: no MQTT broker answers at {broker} ({reason}); "
            "start one (e.g. mosquitto) and run up again for live uplinks.",
            highlight=False,
        )
        return None
    base = [sys.executable, "-m", "datatrust"]
    topics = [arg for topic in LIVE_TOPICS for arg in ("--topic", topic)]
    subscriber = _runner.ChildProcess(
        name="council MQTT subscriber",
        argv=[
            *(*base, "ingest", "mqtt", "--node", "council", "--data-dir", str(data_dir)),
            *("--broker", broker, "--client-id", subscriber_client_id("council", data_dir)),
            *("--session-expiry", "3600", *topics),
        ],
        ready_url=None,
        log_path=data_dir / "logs" / "council-mqtt.log",
        stop_first=True,
    )
    feed = _runner.ChildProcess(
        name="demo feed",
        argv=[*base, "demo-feed", "--data-dir", str(data_dir), "--broker", broker],
        ready_url=None,
        log_path=data_dir / "logs" / "demo-feed.log",
        stop_first=True,
    )
    runner.start(subscriber)
    runner.start(feed)
    console.print(
        f"Live feed on: demo uplinks published to {broker} every few seconds and loaded "
        "at the council node.",
        highlight=False,
    )
    return {"broker": broker, "topics": list(LIVE_TOPICS)}


def print_endpoints(
    gateway_url: str,
    nodes: dict[str, str],
    issuer: str,
    portal: str,
    run_path: Path,
    seconds: float,
    *,
    data_dir: str | None,
    credentials: dict | None,
) -> None:
    table = Table(title=f"datatrust is up (ready in {seconds:.1f} s)", show_lines=False)
    table.add_column("part")
    table.add_column("endpoint")
    table.add_row("gateway", gateway_url)
    for name, url in nodes.items():
        table.add_row(f"{name} node", url)
    table.add_row("identity server (OAuth 2.0 / OIDC issuer)", issuer)
    table.add_row("citizen portal (sign in as citizen)", portal)
    table.add_row(
        "DPO console (sign in as dpo, dpo2, health-dpo, health-dpo2)", f"{portal}/console/"
    )
    table.add_row("analyst explorer (sign in as analyst)", f"{portal}/explorer/")
    console.print(table)
    console.print(f"run.json: {run_path}")
    if credentials is not None:
        console.print(
            "Demo accounts, generated now and shown once (also kept, owner-only, in "
            "identity/demo-credentials.json):",
            highlight=False,
        )
        for who, password in credentials["passwords"].items():
            console.print(f"  person {who}: password {password}", highlight=False)
        for client, secret in credentials["client_secrets"].items():
            console.print(f"  client {client}: secret {secret}", highlight=False)
    console.print("Try the example query (service planning, all three agencies):")
    print(example_curl(gateway_url, data_dir), flush=True)
    console.print("Press Ctrl-C to stop.")
