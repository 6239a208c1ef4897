"""Access-token validation for every node and the gateway (RFC 9068 tokens, issuer JWKS).

``TokenValidator.validate`` turns a bearer token into a ``VerifiedRequester`` or raises
``AuthenticationFailed`` (401) saying what is wrong; ``require_purpose`` raises
``PermissionDenied`` (403) when the request's purpose is not one the token allows.
"""

from datatrust.trust.tokens._jwks import IntrospectionConfig, IssuerConfig
from datatrust.trust.tokens._validator import TokenValidator, VerifiedRequester, require_purpose

__all__ = [
    "IntrospectionConfig",
    "IssuerConfig",
    "TokenValidator",
    "VerifiedRequester",
    "require_purpose",
]
