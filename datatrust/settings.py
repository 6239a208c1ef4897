"""One typed settings object per process, read from the environment and a TOML file.

Each setting is declared once, as a pydantic field with its type, default and help; the
CLI help and ``docs/settings.md`` are derived from those declarations. Precedence, highest
first: explicit overrides (CLI flags), environment variables ``DATATRUST_<NAME>``, the TOML
file, the default. Unknown keys are refused by name, in the file and in the environment,
so a typo never silently falls back to a default. The environment is a parameter, so tests
never touch ``os.environ``.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.engine import make_url

from datatrust.errors import SettingsError

__all__ = [
    "ENV_PREFIX",
    "GATEWAY_AUDIENCE",
    "ConsentNodeSetting",
    "GatewaySettings",
    "IdentityServerSettings",
    "IssuerSetting",
    "NodeSettings",
    "PortalSettings",
    "load_settings",
    "node_audience",
]

ENV_PREFIX = "DATATRUST_"
# Environment variables with our prefix that are not settings of any one process.
_ENV_NOT_SETTINGS = frozenset({"DATATRUST_CONFIG"})

NODE_IDS = ("council", "health", "social-care")
GATEWAY_AUDIENCE = "urn:datatrust:gateway"


def node_audience(node_id: str) -> str:
    """The audience a node checks in access tokens."""
    return f"urn:datatrust:node:{node_id}"


class IssuerSetting(BaseModel):
    """One identity issuer this process accepts access tokens from."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    issuer: str = Field(description="The issuer URL, exactly as tokens' iss claim names it.")
    jwks_url: str = Field(description="Where the issuer publishes its signing keys (JWKS).")
    agencies: list[str] = Field(
        min_length=1, description="The agencies this issuer may speak for (the agency claim)."
    )
    algorithms: list[str] = Field(["ES256"], description="Signature algorithms pinned for it.")
    ca_file: Path | None = Field(
        None,
        description=(
            "A CA certificate (PEM) trusted for the HTTPS of this issuer's JWKS URL, besides "
            "the system's CAs: for an issuer whose certificate a private CA signs. Issuers "
            "from the trust directory get the trust CA (tls_ca) here by themselves."
        ),
    )


class _Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = Field("127.0.0.1", description="Address to listen on (loopback by default).")
    port: int = Field(8400, ge=0, le=65535, description="TCP port to listen on.")
    data_dir: Path = Field(
        Path(".datatrust"), description="Directory for databases, keys, demo sources, run.json."
    )
    issuers: list[IssuerSetting] = Field(
        default_factory=list,
        description=(
            "Identity issuers whose access tokens are accepted ([[issuers]] tables in TOML). "
            "With none, every data request is refused (401): access is never anonymous."
        ),
    )
    audience: str | None = Field(
        None,
        description=(
            "The audience this process checks in access tokens; default "
            "urn:datatrust:node:<node_id> for a node, urn:datatrust:gateway for the gateway."
        ),
    )
    directory: Path | None = Field(
        None,
        description=(
            "The signed trust directory (directory.jws). Identity issuers are taken from "
            "it (each for the agencies that list it); a node with TLS also serves only "
            "clients whose certificate it lists."
        ),
    )
    operator_public_key: Path | None = Field(
        None, description="The trust operator's public key that signs the directory."
    )
    rate_limit_per_minute: int = Field(
        6000, gt=0, description="Requests a minute each client, and each person, may make."
    )
    rate_limit_burst: int = Field(
        1000, gt=0, description="How many requests above that rate a client may send at once."
    )
    tls_cert: Path | None = Field(
        None, description="This process's certificate (PEM), issued by the trust CA."
    )
    tls_key: Path | None = Field(None, description="Its private key (PEM, owner-only).")
    tls_ca: Path | None = Field(None, description="The trust CA certificate (PEM).")

    @property
    def tls_files(self):
        """The mutual-TLS material, or None when this process runs without TLS."""
        values = (self.tls_cert, self.tls_key, self.tls_ca)
        if not any(values):
            return None
        if not all(values):
            raise SettingsError("tls_cert, tls_key and tls_ca must be set together")
        from datatrust.network import TlsFiles

        return TlsFiles(cert=self.tls_cert, key=self.tls_key, ca=self.tls_ca)


class NodeSettings(_Settings):
    """Settings of one agency node process."""

    node_id: Literal["council", "health", "social-care"] = Field(
        description="Which member node this process is."
    )
    agency: str = Field(description="The agency (data controller) that runs this node.")
    database_url: str | None = Field(
        None,
        description=(
            "SQLAlchemy URL of the node's store; default: a SQLite file "
            "<data_dir>/<node_id>.db. Use postgresql+psycopg://... for PostgreSQL."
        ),
    )
    database_password_file: Path | None = Field(
        None,
        description=(
            "File holding the database password (a mounted secret), added to database_url "
            "so the password never appears in settings or the environment."
        ),
    )
    policy_engine: Literal["embedded", "opa"] = Field(
        "embedded",
        description=(
            "Which policy engine decides data use: embedded (regopy, in process) or opa "
            "(an OPA server at opa_url, e.g. a sidecar)."
        ),
    )
    opa_url: str | None = Field(
        None, description="Base URL of the OPA server when policy_engine is opa."
    )
    mqtt_broker: str = Field(
        "mqtt://127.0.0.1:1883",
        description=(
            "MQTT broker (mqtt://HOST[:PORT]) whose LoRaWAN uplinks the node's subscriber "
            "loads: the default of `datatrust ingest mqtt`, and the live feed of `up`."
        ),
    )
    token_leeway_seconds: int = Field(
        30,
        ge=0,
        description=(
            "Clock leeway, in seconds, allowed on access tokens' exp, nbf and iat claims: "
            "how far this machine's clock and the issuer's may differ."
        ),
    )

    @property
    def effective_audience(self) -> str:
        return self.audience or node_audience(self.node_id)

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            if self.database_password_file is None:
                return self.database_url
            password = self.database_password_file.read_text(encoding="utf-8").strip()
            url = make_url(self.database_url).set(password=password)
            return url.render_as_string(hide_password=False)
        return f"sqlite:///{(self.data_dir / f'{self.node_id}.db').resolve()}"


class GatewaySettings(_Settings):
    """Settings of the gateway process."""

    nodes: dict[str, str] = Field(
        default_factory=dict, description="Member nodes: node id -> GraphQL endpoint URL."
    )
    timeout_seconds: float = Field(
        10.0, gt=0, description="How long to wait for one node's answer before reporting it."
    )
    database_url: str | None = Field(
        None,
        description=(
            "Store of the gateway's own audit ledger; default: a SQLite file <data_dir>/gateway.db."
        ),
    )
    # The query limits' defaults are QueryLimits' (a test keeps the two equal).
    max_depth: int = Field(
        20, ge=1, description="Deepest chain of nested fields one operation may ask for."
    )
    max_aliases: int = Field(
        30, ge=1, description="Most aliased fields one operation may use (fragments expanded)."
    )
    max_cost: int = Field(
        100_000,
        ge=1,
        description=(
            "Most field resolutions one operation may be estimated at: each list multiplies "
            "what is under it by its first/last/limit argument, else default_list_size."
        ),
    )
    default_list_size: int = Field(
        20, ge=1, description="Items assumed for a list field without a first/last/limit argument."
    )
    max_document_bytes: int = Field(
        65_536,
        ge=1,
        description="Longest query document accepted, in bytes, checked before parsing.",
    )
    max_batch: int = Field(
        10, ge=1, description="Most operations one batched request (a JSON array body) may carry."
    )
    introspection: bool = Field(
        True,
        description=(
            "Whether callers may introspect the supergraph (__schema, __type); when true, "
            "introspection is still authenticated and purpose-checked like any query."
        ),
    )
    recompose_seconds: float = Field(
        30.0,
        ge=0,
        description=(
            "How often to fetch every node's SDL again and recompose if it changed; 0 never."
        ),
    )
    keys_first_plans: bool = Field(
        True,
        description=(
            "Plan so that every node answers at once: a node's own fields of an entity that "
            "other nodes also add to are fetched after its keys, alongside theirs, instead "
            "of before them (one more, cheap, call to that node). False: fewer calls, nodes "
            "one after another."
        ),
    )
    token_leeway_seconds: int = Field(
        30,
        ge=0,
        description=(
            "Clock leeway, in seconds, allowed on access tokens' exp, nbf and iat claims: "
            "how far this machine's clock and the issuer's may differ."
        ),
    )

    @property
    def query_limits(self):
        """The limits every operation is checked against, before any node is called."""
        from datatrust.federation.gateway import QueryLimits

        return QueryLimits(
            max_depth=self.max_depth,
            max_aliases=self.max_aliases,
            max_cost=self.max_cost,
            default_list_size=self.default_list_size,
            max_document_bytes=self.max_document_bytes,
            max_batch=self.max_batch,
        )

    @property
    def effective_audience(self) -> str:
        return self.audience or GATEWAY_AUDIENCE

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'gateway.db').resolve()}"


class IdentityServerSettings(_Settings):
    """Settings of the trust's embedded identity server process."""

    issuer: str | None = Field(
        None,
        description="The issuer URL tokens name (default: http://<host>:<port>, https with TLS).",
    )
    audiences: list[str] = Field(
        default_factory=list,
        description="Audiences of every access token: the gateway's and each node's.",
    )
    portal_redirect_uris: list[str] = Field(
        default_factory=list, description="Exact redirect URIs of the portal and console."
    )

    @property
    def effective_issuer(self) -> str:
        scheme = "https" if self.tls_cert else "http"
        return self.issuer or f"{scheme}://{self.host}:{self.port}"


class ConsentNodeSetting(BaseModel):
    """One node whose consent API the portal shows: its id, its agency's name, its URL."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(description="The node id (the controller named in its consent records).")
    name: str = Field(description="The agency's name, as citizens know it.")
    url: str = Field(description="The node's consent API, e.g. https://HOST:PORT/consent.")


class PortalSettings(_Settings):
    """Settings of the citizen portal process (web pages; sign-in through the identity server).

    The portal acts for the signed-in citizen only: it calls each node's consent API with
    the citizen's own access token, over mutual TLS with ``tls_cert``/``tls_key`` as its
    client certificate (one the trust directory lists), and checks nodes against ``tls_ca``.
    """

    port: int = Field(8405, ge=0, le=65535, description="TCP port to listen on.")
    public_url: str | None = Field(
        None,
        description=(
            "The portal's address as browsers reach it (default http://<host>:<port>); its "
            "/callback is the redirect URI registered with the identity server, and an "
            "https address makes session cookies Secure."
        ),
    )
    issuer: str = Field(description="The identity server citizens sign in with (issuer URL).")
    client_id: str = Field("portal", description="The portal's public OAuth client id (PKCE).")
    consent_nodes: list[ConsentNodeSetting] = Field(
        default_factory=list,
        description="Nodes whose consent API the portal shows ([[consent_nodes]] tables).",
    )
    consent_purposes: list[str] = Field(
        ["research"],
        description=(
            "Purposes a citizen may give or withdraw consent for at every consent node "
            "(those whose agreements rest on consent)."
        ),
    )
    session_lifetime_seconds: int = Field(
        8 * 3600, gt=0, description="How long a sign-in lasts at most, in seconds."
    )
    session_key_file: Path | None = Field(
        None,
        description=(
            "Key that encrypts and signs session cookies (created owner-only if missing); "
            "default <data_dir>/keys/portal-session.key."
        ),
    )
    gateway: str | None = Field(
        None,
        description=(
            "The gateway's GraphQL URL, where the analyst explorer (/explorer) sends each "
            "query with the analyst's own token; without it the explorer says it is off."
        ),
    )
    explorer_purposes: list[str] = Field(
        ["service-planning", "research"],
        description=(
            "Purposes the explorer asks the identity server for at sign-in; the analyst's "
            "token carries those the person may use, and only those are offered."
        ),
    )

    @property
    def effective_public_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def redirect_uri(self) -> str:
        return f"{self.effective_public_url}/callback"

    @property
    def effective_session_key_file(self) -> Path:
        return self.session_key_file or self.data_dir / "keys" / "portal-session.key"


S = TypeVar("S", bound=_Settings)


def load_settings(
    cls: type[S],
    *,
    toml_path: Path | None = None,
    environ: Mapping[str, str] | None = None,
    **overrides: Any,
) -> S:
    """Build ``cls`` from defaults < TOML file < environment < overrides.

    Raises SettingsError naming the key and its source when a key is unknown or a value
    does not fit its type.
    """
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    if toml_path is not None:
        values.update(_read_toml(cls, toml_path))
    values.update(_read_environ(cls, environ))
    values.update({key: value for key, value in overrides.items() if value is not None})
    try:
        return cls(**values)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors()
        )
        raise SettingsError(f"invalid {cls.__name__}: {problems}") from error


def _read_toml(cls: type[_Settings], path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise SettingsError(f"settings file {path} does not exist") from error
    except tomllib.TOMLDecodeError as error:
        raise SettingsError(f"settings file {path} is not valid TOML: {error}") from error
    unknown = sorted(set(data) - set(cls.model_fields))
    if unknown:
        raise SettingsError(
            f"unknown setting {unknown[0]!r} in {path}; "
            f"{cls.__name__} knows: {', '.join(sorted(cls.model_fields))}"
        )
    return data


def _read_environ(cls: type[_Settings], environ: Mapping[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or name in _ENV_NOT_SETTINGS:
            continue
        key = name.removeprefix(ENV_PREFIX).lower()
        if key not in cls.model_fields:
            raise SettingsError(
                f"unknown setting in environment variable {name}; "
                f"{cls.__name__} knows: {', '.join(sorted(cls.model_fields))}"
            )
        values[key] = raw
    return values
