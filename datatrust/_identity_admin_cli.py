"""``datatrust identity``: the identity server's accounts and signing keys, for its operators.

These commands open the identity server's own store and key ring (from its settings file,
as ``datatrust serve identity`` does) and may run while the server runs: clients and people
are rows it reads at each request, and the key ring is changed under a lock file and read
again by the server before it next signs. A generated secret or password is printed once,
alone on standard output (so a script can capture it), and only its digest is kept.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from datatrust._console import console, err_console
from datatrust.errors import SettingsError

__all__ = ["identity_admin_app"]

identity_admin_app = typer.Typer(
    help="The identity server's clients, people and signing keys.", no_args_is_help=True
)

Config = Annotated[
    Path | None,
    typer.Option(
        "--config",
        help="The identity server's TOML settings; default: <data-dir>/config/identity.toml.",
        envvar="DATATRUST_CONFIG",
    ),
]
DataDir = Annotated[
    Path,
    typer.Option("--data-dir", help="Data directory of the trust.", envvar="DATATRUST_DATA_DIR"),
]
Agency = Annotated[str, typer.Option(help="The agency it acts for (the agency claim).")]
Purposes = Annotated[
    list[str],
    typer.Option("--purpose", help="A purpose it may ask tokens for (repeat for more)."),
]
Roles = Annotated[list[str], typer.Option("--role", help="A role claim (repeat for more).")]


def _service(config: Path | None, data_dir: Path):  # type: ignore[no-untyped-def]
    """The identity service the settings describe: its store and key ring, opened here."""
    from datatrust._identity_cli import open_identity_service
    from datatrust.settings import IdentityServerSettings, load_settings

    default = data_dir / "config" / "identity.toml"
    path = config or (default if default.exists() else None)
    if config is not None and not config.exists():
        raise SettingsError(f"no identity settings at {config}")
    overrides = {} if path is not None else {"data_dir": data_dir}
    settings = load_settings(IdentityServerSettings, toml_path=path, **overrides)
    return open_identity_service(settings)


@identity_admin_app.command("add-client")
def add_client(
    client_id: Annotated[str, typer.Argument(help="The OAuth client id (e.g. housing-etl).")],
    agency: Agency,
    purpose: Purposes,
    role: Roles = ["partner-system"],  # noqa: B006  (typer reads the default, never mutates it)
    jwks: Annotated[
        Path | None,
        typer.Option(
            help="A JWKS file of the client's public keys: it signs its own client assertions "
            "(private_key_jwt) and gets no secret."
        ),
    ] = None,
    name: Annotated[str | None, typer.Option(help="A name for people to read.")] = None,
    config: Config = None,
    data_dir: DataDir = Path(".datatrust"),
) -> None:
    """Register a partner system for the client-credentials grant (replacing one of that id).

    Prints its client secret, once; with --jwks it authenticates with its own keys instead.
    """
    keys = None
    if jwks is not None:
        try:
            keys = json.loads(jwks.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise SettingsError(f"{jwks}: not a readable JWKS file ({error})") from None
        if not isinstance(keys, dict) or not isinstance(keys.get("keys"), list):
            raise SettingsError(f"{jwks}: a JWKS is an object with a 'keys' list")
    service = _service(config, data_dir)
    secret = service.register_client(
        client_id,
        agency=agency,
        purposes=purpose,
        roles=role,
        auth_method="private_key_jwt" if keys else "client_secret_basic",
        jwks=keys,
        name=name,
    )
    what = f"client {client_id!r} for {agency}, purposes {', '.join(purpose)}"
    if secret is None:
        err_console.print(f"registered {what}; it signs client assertions with its own keys")
        return
    err_console.print(f"registered {what}; its secret, shown this once:")
    print(secret)


@identity_admin_app.command("add-person")
def add_person(
    username: Annotated[str, typer.Argument(help="The sign-in name.")],
    name: Annotated[str, typer.Option(help="The person's name, as tokens carry it.")],
    agency: Agency,
    role: Roles,
    purpose: Purposes = [],  # noqa: B006
    nhs_number: Annotated[
        str | None, typer.Option(help="A citizen's NHS number (agency 'public').")
    ] = None,
    config: Config = None,
    data_dir: DataDir = Path(".datatrust"),
) -> None:
    """Add a person (an analyst, a DPO, a citizen) who signs in at the identity server.

    Prints a generated password, once; they sign in with it.
    """
    service = _service(config, data_dir)
    password = service.add_person(
        username, name=name, agency=agency, roles=role, purposes=purpose, nhs_number=nhs_number
    )
    err_console.print(f"added {username!r} ({', '.join(role)}, {agency}); password, shown once:")
    print(password)


@identity_admin_app.command("rotate-keys")
def rotate_keys(config: Config = None, data_dir: DataDir = Path(".datatrust")) -> None:
    """Rotate the signing keys: the published next key signs from now on.

    The current key is retired (still published until its tokens have expired) and a new
    next key is published. A running server takes the change at its next token.
    """
    service = _service(config, data_dir)
    kid = service.keys.rotate()
    err_console.print(f"signing now with key {kid}")
    _print_keys(service.keys.states())


@identity_admin_app.command("keys")
def keys(config: Config = None, data_dir: DataDir = Path(".datatrust")) -> None:
    """The signing keys the server publishes, and the state of each."""
    _print_keys(_service(config, data_dir).keys.states())


def _print_keys(states: dict[str, str]) -> None:
    table = Table("kid", "state", title="identity signing keys (all published in the JWKS)")
    for kid, state in states.items():
        table.add_row(kid, state)
    console.print(table)
