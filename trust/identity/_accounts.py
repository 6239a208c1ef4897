"""The identity service: its store, keys and server, and the clients and people it knows.

Secrets (client secrets, people's passwords) are generated here and returned exactly once;
only their digests are stored, so ``datatrust up`` can print them and nothing can show them
again.
"""

from __future__ import annotations

import functools
import secrets
import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from datatrust.errors import SettingsError
from datatrust.trust._purposes import demo_purpose_register
from datatrust.trust.identity._keys import KeyRing
from datatrust.trust.identity._models import OIDC_SCOPES, User
from datatrust.trust.identity._passwords import hash_password, verify_password
from datatrust.trust.identity._server import TrustAuthorizationServer
from datatrust.trust.identity._settings import IdentitySettings
from datatrust.trust.identity._store import IdentityStore, digest

__all__ = ["DemoAccounts", "IdentityService", "create_demo_accounts"]

AUTH_METHODS = ("client_secret_basic", "private_key_jwt", "none")
CITIZEN_AGENCY = "public"
"""The ``agency`` claim of a citizen's token: citizens act for themselves, not an agency."""


class IdentityService:
    """Everything the identity server holds, opened from ``settings.data_dir``."""

    def __init__(self, settings: IdentitySettings) -> None:
        self.settings = settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        settings.data_dir.chmod(0o700)  # the database's WAL files inherit the umask's mode
        self.store = IdentityStore(settings.database_path)
        self.keys = KeyRing(
            settings.key_dir,
            max_token_lifetime_seconds=max(
                settings.access_token_lifetime_seconds, settings.id_token_lifetime_seconds
            ),
        )
        self.server = TrustAuthorizationServer(settings, self.store, self.keys)

    def register_client(
        self,
        client_id: str,
        *,
        agency: str,
        purposes: Collection[str],
        grant_types: Collection[str] = ("client_credentials",),
        auth_method: str = "client_secret_basic",
        roles: Collection[str] = ("partner-system",),
        redirect_uris: Collection[str] = (),
        jwks: Mapping[str, Any] | None = None,
        may_introspect: bool = False,
        name: str | None = None,
    ) -> str | None:
        """Register (or replace) a client; returns its new secret for ``client_secret_basic``.

        ``private_key_jwt`` clients register their public ``jwks`` instead; public clients
        (``none``, the portal) have no secret and must use PKCE.
        """
        if auth_method not in AUTH_METHODS:
            raise SettingsError(
                f"client {client_id!r}: auth method {auth_method!r} is not one of "
                f"{', '.join(AUTH_METHODS)}"
            )
        if auth_method == "private_key_jwt" and not jwks:
            raise SettingsError(f"client {client_id!r} uses private_key_jwt but has no jwks")
        if auth_method == "none" and "client_credentials" in grant_types:
            raise SettingsError(f"public client {client_id!r} may not use client_credentials")
        secret = secrets.token_urlsafe(32) if auth_method == "client_secret_basic" else None
        self.store.add_client(
            client_id=client_id,
            name=name or client_id,
            auth_method=auth_method,
            secret_digest=digest(secret) if secret else None,
            jwks=dict(jwks) if jwks else None,
            grant_types=list(grant_types),
            redirect_uris=list(redirect_uris),
            agency=agency,
            roles=list(roles),
            purposes=list(purposes),
            may_introspect=may_introspect,
        )
        return secret

    def add_person(
        self,
        username: str,
        *,
        name: str,
        agency: str,
        roles: Collection[str],
        purposes: Collection[str] = (),
        nhs_number: str | None = None,
    ) -> str:
        """Add (or replace) a person with a generated password, returned once."""
        password = secrets.token_urlsafe(16)
        self.store.add_user(
            user_id=uuid.uuid4().hex,
            username=username,
            password_hash=hash_password(password),
            name=name,
            agency=agency,
            roles=list(roles),
            purposes=list(purposes),
            nhs_number=nhs_number,
        )
        return password

    def authenticate_person(self, username: str, password: str) -> User | None:
        row = self.store.user_by_name(username)
        if row is None:
            verify_password(password, _dummy_hash())  # same cost, so timing names no one
            return None
        return User(row) if verify_password(password, row["password_hash"]) else None

    def discovery_document(self) -> dict[str, Any]:
        """OpenID Connect discovery metadata (also valid RFC 8414 metadata)."""
        s = self.settings
        return {
            "issuer": s.issuer,
            "authorization_endpoint": s.endpoint("/authorize"),
            "token_endpoint": s.endpoint("/token"),
            "jwks_uri": s.endpoint("/jwks.json"),
            "revocation_endpoint": s.endpoint("/revoke"),
            "introspection_endpoint": s.endpoint("/introspect"),
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code", "client_credentials", "refresh_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["ES256"],
            "token_endpoint_auth_methods_supported": list(AUTH_METHODS),
            "token_endpoint_auth_signing_alg_values_supported": ["ES256", "RS256"],
            "revocation_endpoint_auth_methods_supported": list(AUTH_METHODS),
            "introspection_endpoint_auth_methods_supported": list(AUTH_METHODS),
            "code_challenge_methods_supported": ["S256"],
            "scopes_supported": [*OIDC_SCOPES, *demo_purpose_register().ids],
            "claims_supported": [
                "sub",
                "name",
                "preferred_username",
                "agency",
                "roles",
                "nhs_number",
            ],
        }


@functools.cache
def _dummy_hash() -> str:
    return hash_password(secrets.token_urlsafe(16))


DEMO_CITIZEN_NHS_NUMBER = "9990001006"
"""The first number of the demo data's range (999 000 100x, never issued), so the demo
citizen is one of the people the demo nodes hold."""


@dataclass(frozen=True)
class DemoAccounts:
    """Generated credentials, shown once by ``datatrust up`` and never stored in clear."""

    passwords: dict[str, str] = field(repr=False)
    client_secrets: dict[str, str] = field(repr=False)


def create_demo_accounts(service: IdentityService) -> DemoAccounts:
    """People (analyst, DPOs, researcher, clinician, citizen) and clients (CLIs, portal, nodes)."""
    passwords = {
        "analyst": service.add_person(
            "analyst",
            name="Ada Analyst",
            agency="council",
            roles=["analyst"],
            purposes=["service-planning", "research"],
        ),
        "dpo": service.add_person(
            "dpo", name="Dara DPO", agency="council", roles=["dpo"], purposes=["service-planning"]
        ),
        # A second DPO of each agency: publishing a policy needs another DPO's approval.
        "dpo2": service.add_person(
            "dpo2", name="Dev DPO", agency="council", roles=["dpo"], purposes=["service-planning"]
        ),
        "health-dpo": service.add_person(
            "health-dpo", name="Hana DPO", agency="health", roles=["dpo"], purposes=[]
        ),
        "health-dpo2": service.add_person(
            "health-dpo2", name="Hugo DPO", agency="health", roles=["dpo"], purposes=[]
        ),
        "researcher": service.add_person(
            "researcher",
            name="Rae Researcher",
            agency="university",
            roles=["researcher"],
            purposes=["research"],
        ),
        "clinician": service.add_person(
            "clinician",
            name="Cal Clinician",
            agency="health",
            roles=["clinician"],
            purposes=["direct-care"],
        ),
        "citizen": service.add_person(
            "citizen",
            name="Chris Citizen",
            agency=CITIZEN_AGENCY,
            roles=["citizen"],
            nhs_number=DEMO_CITIZEN_NHS_NUMBER,
        ),
    }
    client_secrets = {
        "analyst-cli": service.register_client(
            "analyst-cli",
            agency="council",
            purposes=["service-planning", "commissioning", "research"],
            roles=["analyst"],
            name="Analyst command line",
        ),
        "research-cli": service.register_client(
            "research-cli",
            agency="university",
            purposes=["research"],
            roles=["researcher"],
            name="University research team's command line",
        ),
        "care-cli": service.register_client(
            "care-cli",
            agency="health",
            purposes=["direct-care"],
            roles=["clinician"],
            name="Hospital clinical system",
        ),
        "nodes": service.register_client(
            "nodes",
            agency="trust",
            purposes=[],
            grant_types=[],
            roles=["resource-server"],
            may_introspect=True,
            name="Nodes and gateway (token introspection)",
        ),
    }
    service.register_client(
        "portal",
        agency=CITIZEN_AGENCY,
        purposes=["service-planning", "research"],
        grant_types=["authorization_code", "refresh_token"],
        auth_method="none",
        roles=["portal"],
        redirect_uris=service.settings.portal_redirect_uris,
        name="Citizen portal and DPO console",
    )
    return DemoAccounts(
        passwords=passwords,
        client_secrets={k: v for k, v in client_secrets.items() if v is not None},
    )
