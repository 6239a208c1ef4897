"""The trust's embedded identity server: OAuth 2.0 and OpenID Connect on authlib and Starlette.

Partner systems get access tokens with client credentials (``client_secret_basic`` or
``private_key_jwt``); people sign in with the authorization code flow and PKCE (S256). Access
tokens are RFC 9068 JWTs signed ES256 and carry ``agency``, ``roles`` and ``purposes``; nodes
and the gateway check them with ``datatrust.trust.tokens.TokenValidator``.
"""

from datatrust.trust.identity._accounts import (
    DemoAccounts,
    IdentityService,
    create_demo_accounts,
)
from datatrust.trust.identity._app import create_identity_app
from datatrust.trust.identity._keys import KeyRing
from datatrust.trust.identity._settings import IdentitySettings

__all__ = [
    "DemoAccounts",
    "IdentityService",
    "IdentitySettings",
    "KeyRing",
    "create_demo_accounts",
    "create_identity_app",
]
