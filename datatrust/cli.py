"""The ``datatrust`` command line.

Every command that acts on a local trust takes ``--data-dir`` with the same default as
``up`` (``./.datatrust``). Errors are printed as one plain sentence naming the problem,
with a non-zero exit status, never a traceback.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated

import httpx
import typer
from rich.table import Table
from typer.core import TyperCommand

from datatrust._console import console, err_console
from datatrust._demo_trust import DEMO_NODES, IDENTITY_PORT_OFFSET, PORTAL_PORT_OFFSET
from datatrust.errors import DatatrustError

__all__ = ["app", "main"]

app = typer.Typer(
    help="datatrust: a federated data trust for UK public services.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
serve_app = typer.Typer(help="Run one process of a trust (used by `up` and by deployments).")
app.add_typer(serve_app, name="serve")


DataDir = Annotated[
    Path,
    typer.Option("--data-dir", help="Data directory of the trust.", envvar="DATATRUST_DATA_DIR"),
]
DEFAULT_DATA_DIR = Path(".datatrust")


def main() -> None:
    try:
        app()
    except DatatrustError as error:
        err_console.print(f"[bold red]error:[/] {error.message}", highlight=False)
        sys.exit(2)


@app.command()
def up(
    data_dir: DataDir = DEFAULT_DATA_DIR,
    host: Annotated[str, typer.Option(help="Address every process listens on.")] = "127.0.0.1",
    base_port: Annotated[
        int, typer.Option(help="Gateway port; nodes listen on the next three ports.")
    ] = 8400,
) -> None:
    """Run a whole trust on this machine: three agency nodes and the gateway."""
    from datatrust import _prepare, _runner, _up

    started = time.perf_counter()
    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    running = _runner.read_run_file(data_dir)
    if running and _runner.is_trust_running(running):
        raise DatatrustError(
            f"a trust is already running from {data_dir} (gateway {running['gateway']}); "
            "stop it first or use another --data-dir"
        )
    ports = {"gateway": base_port} | {n.node_id: base_port + n.port_offset for n in DEMO_NODES}
    ports["identity"] = base_port + IDENTITY_PORT_OFFSET
    ports["portal"] = base_port + PORTAL_PORT_OFFSET
    parts = {"gateway": "gateway", "identity": "identity server", "portal": "citizen portal"}
    for name, port in ports.items():
        _runner.check_port_free(host, port, parts.get(name, f"{name} node"))

    from datatrust._network_cli import init_local_trust
    from datatrust.network import client_ssl_context

    trust = init_local_trust(data_dir, host=host, base_port=base_port)
    tool = trust.pki.files("tool")
    runner = _runner.TrustRunner(data_dir, ssl_context=client_ssl_context(*tool))
    runner.install_signal_handlers()
    try:
        issuer, credentials = _up.start_identity(runner, data_dir, host, ports, _runner)
        node_urls = _up.start_trust(runner, data_dir, host, ports, _prepare, _runner, trust.pki)
        gateway_url = f"http://{host}:{ports['gateway']}/graphql"
        run = {
            "gateway": gateway_url,
            "nodes": node_urls,
            "identity": issuer,
            "tls": {"ca": str(tool.ca), "cert": str(tool.cert), "key": str(tool.key)},
        }
        run["portal"] = _up.start_portal(
            runner, data_dir, host, ports, issuer, node_urls, trust.pki, _runner
        )
        run["console"] = f"{run['portal']}/console/"
        run["explorer"] = f"{run['portal']}/explorer/"
        live = _up.start_live_feed(runner, data_dir, _runner)
        if live is not None:
            run["mqtt"] = live
        run_path = runner.write_run_file(run)
        _up.print_endpoints(
            gateway_url,
            node_urls,
            issuer,
            run["portal"],
            run_path,
            time.perf_counter() - started,
            data_dir=None if data_dir == DEFAULT_DATA_DIR.resolve() else str(data_dir),
            credentials=credentials,
        )

        def on_child_exit(child: _runner.ChildProcess, code: int) -> None:
            err_console.print(
                f"[bold red]{child.name} stopped unexpectedly (status {code}); "
                f"stopping the trust.[/] End of {child.log_path}:\n{child.log_tail()}",
                highlight=False,
            )
            runner.stop_requested.set()
            raise typer.Exit(1)

        runner.watch(on_child_exit)
        console.print("Stopping the trust...")
    except KeyboardInterrupt:
        console.print("Interrupted; stopping the trust...")
    finally:
        runner.stop_all()
    console.print("Stopped.")


@app.command()
def status(data_dir: DataDir = DEFAULT_DATA_DIR) -> None:
    """Show which parts of the local trust are up, from run.json."""
    from datatrust import _runner

    run = _runner.read_run_file(data_dir.resolve())
    if run is None:
        err_console.print(
            f"No trust is running from {data_dir.resolve()} (no run.json). "
            "Start one with: datatrust up"
        )
        raise typer.Exit(1)
    parts = {"gateway": run["gateway"]} | {f"{k} node": v for k, v in run["nodes"].items()}
    table = Table(title=f"datatrust in {data_dir.resolve()}")
    table.add_column("part")
    table.add_column("endpoint")
    table.add_column("state")
    all_up = True
    tls = run.get("tls")
    verify: object = True
    if tls:
        from datatrust.network import client_ssl_context

        verify = client_ssl_context(Path(tls["cert"]), Path(tls["key"]), Path(tls["ca"]))
    with httpx.Client(timeout=2.0, verify=verify) as client:
        for name, url in parts.items():
            try:
                response = client.get(_runner.health_url(url).replace("/healthz", "/readyz"))
                state = (
                    "ready"
                    if response.status_code == 200
                    else f"not ready ({response.status_code})"
                )
            except httpx.HTTPError as error:
                state = f"down ({type(error).__name__})"
            all_up &= state == "ready"
            table.add_row(name, url, state)
    console.print(table)
    if not all_up:
        raise typer.Exit(1)


ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", help="TOML settings file.", envvar="DATATRUST_CONFIG"),
]


NODE_KEEP_ALIVE_SECONDS = 15
"""How long a node keeps an idle connection open: well past the gateway's 2 s reuse window
(``NODE_KEEPALIVE_EXPIRY_SECONDS``), so the gateway never sends on one the node is closing."""


@serve_app.command("node")
def serve_node(config: ConfigOption = None) -> None:
    """Serve one agency node (subgraph, health, readiness, metrics)."""
    import uvicorn

    from datatrust.node import create_node_app
    from datatrust.settings import NodeSettings, load_settings

    settings = load_settings(NodeSettings, toml_path=config)
    log_config = _serving(f"datatrust-node-{settings.node_id}")
    app = create_node_app(settings)
    files = settings.tls_files
    if files is None:
        uvicorn.run(
            app,
            host=settings.host,
            port=settings.port,
            log_level="warning",
            log_config=log_config,
            timeout_keep_alive=NODE_KEEP_ALIVE_SECONDS,
        )
        return
    from datatrust.network import (
        DirectoryWatcher,
        RequireDirectoryPeer,
        load_operator_public_key,
        mtls_uvicorn_config,
    )

    if settings.directory is None or settings.operator_public_key is None:
        raise DatatrustError(
            "a node served over TLS needs 'directory' and 'operator_public_key' settings, "
            "so it can tell which client certificates to accept"
        )
    watcher = DirectoryWatcher(
        settings.directory, load_operator_public_key(settings.operator_public_key)
    )
    app.state.metrics.watch_directory(lambda: watcher.expires_at)
    config = mtls_uvicorn_config(
        RequireDirectoryPeer(app, watcher),
        files,
        host=settings.host,
        port=settings.port,
        log_level="warning",
        log_config=log_config,
        timeout_keep_alive=NODE_KEEP_ALIVE_SECONDS,
    )
    uvicorn.Server(config).run()


@serve_app.command("identity")
def serve_identity(config: ConfigOption = None) -> None:
    """Serve the trust's identity server (OAuth 2.0 / OIDC issuer)."""
    import uvicorn

    from datatrust._identity_cli import identity_app
    from datatrust.settings import IdentityServerSettings, load_settings

    settings = load_settings(IdentityServerSettings, toml_path=config)
    log_config = _serving("datatrust-identity")
    files = settings.tls_files  # HTTPS when set (an issuer off loopback must be https)
    tls = {} if files is None else {"ssl_certfile": str(files.cert), "ssl_keyfile": str(files.key)}
    uvicorn.run(
        identity_app(settings),
        host=settings.host,
        port=settings.port,
        log_level="warning",
        log_config=log_config,
        **tls,
    )


@app.command()
def token(
    purpose: Annotated[str, typer.Option(help="The purpose the token is for.")],
    client: Annotated[
        str, typer.Option(help="OAuth client id (default: the demo analyst client).")
    ] = "analyst-cli",
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Get an access token from the running trust's identity server; print it alone."""
    from datatrust import _runner
    from datatrust._identity_cli import request_token

    run = _runner.read_run_file(data_dir.resolve())
    if run is None or "identity" not in run:
        raise DatatrustError(
            f"no trust with an identity server is running from {data_dir.resolve()} "
            "(no run.json): start one with datatrust up"
        )
    print(request_token(run["identity"], data_dir.resolve(), purpose, client))


@serve_app.command("gateway")
def serve_gateway(config: ConfigOption = None) -> None:
    """Serve the gateway in front of the nodes listed in its settings."""
    import uvicorn

    from datatrust.gateway import create_trust_gateway
    from datatrust.settings import GatewaySettings, load_settings

    settings = load_settings(GatewaySettings, toml_path=config)
    log_config = _serving("datatrust-gateway")
    uvicorn.run(
        create_trust_gateway(settings),
        host=settings.host,
        port=settings.port,
        log_level="warning",
        log_config=log_config,
    )


def _serving(service_name: str) -> dict | None:
    """Logs (JSON unless DATATRUST_LOG_FORMAT says text) and traces for a served process;
    returns uvicorn's log_config to match."""
    from datatrust._logs import configure_logging
    from datatrust._tracing import configure_tracing

    log_config = configure_logging("json")
    configure_tracing(service_name)
    return log_config


class _IngestCommand(TyperCommand):
    """``ingest``'s help lists the formats, read from ``ingest.FORMATS`` when asked for."""

    def format_help(self, ctx, formatter) -> None:
        from datatrust.ingest import FORMATS

        lines = [f"{name} ({', '.join(f.nodes)}): {f.title}" for name, f in sorted(FORMATS.items())]
        lines.append(
            "mqtt (council): subscribe to --topic at --broker (QoS 1) and load uplinks until Ctrl-C"
        )
        self.epilog = "Formats:\n\n" + "\n\n".join(lines)
        super().format_help(ctx, formatter)


@app.command(cls=_IngestCommand)
def ingest(
    format_name: Annotated[
        str, typer.Argument(metavar="FORMAT", help="Source format (listed below), or mqtt.")
    ],
    paths: Annotated[
        list[Path] | None,
        typer.Argument(
            metavar="[PATH]...",
            exists=True,
            help="Files, or directories (their files, sorted). Not with mqtt.",
        ),
    ] = None,
    node: Annotated[str, typer.Option(help="Node whose store receives the data.")] = ...,
    data_dir: DataDir = DEFAULT_DATA_DIR,
    database_url: Annotated[
        str | None, typer.Option(help="Store URL; default: the node's SQLite file.")
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="The node's settings file: its store (and password file), data directory "
            "and broker, as the node itself reads them; --data-dir is then not used.",
        ),
    ] = None,
    broker: Annotated[
        str | None,
        typer.Option(help="mqtt: broker URL; default: the node's mqtt_broker setting."),
    ] = None,
    topic: Annotated[
        list[str] | None, typer.Option("--topic", help="mqtt: topic filter (repeatable).")
    ] = None,
    client_id: Annotated[
        str | None,
        typer.Option(help="mqtt: MQTT client id; default: stable per node and data dir."),
    ] = None,
    session_expiry: Annotated[
        int, typer.Option(help="mqtt: seconds the broker keeps the session while away.")
    ] = 86_400,
) -> None:
    """Load source files into a node's store, or (FORMAT mqtt) subscribe to a broker."""
    from datatrust import _ingest_cli

    settings = _ingest_cli.node_settings(node, data_dir.resolve(), database_url, config)
    if format_name == "mqtt":
        if paths:
            raise DatatrustError("ingest mqtt takes no PATH; give --topic (and --broker)")
        _ingest_cli.subscribe(
            console,
            settings,
            broker or settings.mqtt_broker,
            topic or [],
            client_id=client_id,
            session_expiry_seconds=session_expiry,
        )
        return
    if not paths:
        raise DatatrustError(f"ingest {format_name} needs at least one PATH (a file or directory)")
    if topic or broker or client_id:
        raise DatatrustError("--broker, --topic and --client-id are for ingest mqtt only")
    if _ingest_cli.ingest_files(console, format_name, paths, settings):
        raise typer.Exit(1)


quarantine_app = typer.Typer(help="What ingest set aside and why; retry after a fix.")
app.add_typer(quarantine_app, name="quarantine")
NodeOption = Annotated[
    str | None, typer.Option(help="One node; default: every node store in the data dir.")
]


@quarantine_app.command("list")
def quarantine_list(
    node: NodeOption = None,
    data_dir: DataDir = DEFAULT_DATA_DIR,
    database_url: Annotated[str | None, typer.Option(help="Store URL (with --node).")] = None,
    limit: Annotated[int, typer.Option(help="At most this many per node.")] = 100,
    format_name: Annotated[
        str | None, typer.Option("--format", help="Only records of this format.")
    ] = None,
) -> None:
    """List quarantined records: id, format, location and the reason."""
    from datatrust import _ingest_cli

    _ingest_cli.list_quarantined(
        console, node, data_dir.resolve(), database_url, limit=limit, format_name=format_name
    )


@quarantine_app.command("replay")
def quarantine_replay(
    node: NodeOption = None,
    data_dir: DataDir = DEFAULT_DATA_DIR,
    database_url: Annotated[str | None, typer.Option(help="Store URL (with --node).")] = None,
    record_id: Annotated[
        list[int] | None, typer.Option("--id", help="Only this record (repeatable).")
    ] = None,
) -> None:
    """Retry quarantined records (after a codec or mapping fix); fixed ones load."""
    from datatrust import _ingest_cli

    _ingest_cli.replay_quarantined(console, node, data_dir.resolve(), database_url, record_id or [])


@app.command("demo-feed", hidden=True)
def demo_feed(
    data_dir: DataDir = DEFAULT_DATA_DIR,
    broker: Annotated[str, typer.Option(help="Broker URL.")] = "mqtt://127.0.0.1:1883",
    interval: Annotated[float, typer.Option(help="Seconds between rounds.")] = 5.0,
) -> None:
    """Publish live demo uplinks for the demo sensors (run by `up`)."""
    import logging
    import signal
    import threading

    from datatrust._demo_feed import run_demo_feed

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    inventory = data_dir.resolve() / "demo" / "council" / "sensor_inventory.csv"
    run_demo_feed(broker, inventory, stop, interval_seconds=interval)


from datatrust._network_cli import directory_app, init_command  # noqa: E402

app.command("init")(init_command)
app.add_typer(directory_app, name="directory")


audit_app = typer.Typer(help="The nodes' tamper-evident audit ledgers.")
app.add_typer(audit_app, name="audit")


@audit_app.command("verify")
def audit_verify(
    node: Annotated[
        str | None, typer.Option(help="Only this node (or 'gateway'); default: every part.")
    ] = None,
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Check every ledger's hash chain; name the first broken entry; exit 1 if any is."""
    from datatrust._audit_cli import verify_ledgers

    checks = verify_ledgers(data_dir.resolve(), node)
    if not checks:
        err_console.print(f"No audit ledger found in {data_dir.resolve()}.")
        raise typer.Exit(1)
    for check in checks:
        if check.problem:
            console.print(f"{check.part}: cannot verify: {check.problem}", highlight=False)
        elif check.first_broken_seq is not None:
            console.print(
                f"{check.part}: BROKEN at entry {check.first_broken_seq} "
                f"({check.entries_checked} entries before it verify); the ledger was altered "
                "there: an entry was changed, removed or reordered",
                highlight=False,
            )
        else:
            console.print(
                f"{check.part}: intact ({check.entries_checked} entries verified)",
                highlight=False,
            )
    if not all(check.is_intact for check in checks):
        raise typer.Exit(1)


from datatrust._policy_cli import policy_app  # noqa: E402

app.add_typer(policy_app, name="policy")


from datatrust._consent_cli import consent_app  # noqa: E402

app.add_typer(consent_app, name="consent")


from datatrust._gateway_cli import gateway_app  # noqa: E402

app.add_typer(gateway_app, name="gateway")


from datatrust._identity_admin_cli import identity_admin_app  # noqa: E402

app.add_typer(identity_admin_app, name="identity")


from datatrust._doctor_cli import doctor_command  # noqa: E402

app.command("doctor")(doctor_command)


from datatrust._backup_cli import backup_command, restore_command  # noqa: E402

app.command("backup")(backup_command)
app.command("restore")(restore_command)
