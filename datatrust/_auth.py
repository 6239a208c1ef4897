"""Who is asking: bearer access tokens turned into the enforcement point's Requester.

Every node and the gateway authenticate each data request themselves, with the issuers
their settings list (the trust directory, when it lands, supplies the same list). With no
issuer configured, every data request is refused: access to data is never anonymous.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Sequence

import httpx

from datatrust._ratelimit import RateLimiter
from datatrust.errors import AuthenticationFailed, SettingsError
from datatrust.policies import Requester
from datatrust.settings import IssuerSetting

__all__ = ["Authenticate", "build_authenticator", "trusted_issuers"]

Authenticate = Callable[[str | None], Requester]
"""``authenticate(authorization_header)`` -> the verified Requester, or AuthenticationFailed."""


def trusted_issuers(settings) -> list[IssuerSetting]:
    """The issuers a process accepts: those its signed trust directory lists, if it has one.

    Each issuer may speak only for the agencies whose directory entries list it, so an
    agency's own identity provider cannot vouch for another agency's people. Those entries
    are the members with a node and the member agencies without one (a university that only
    receives research extracts): both may ask, and the agreements decide what they get.
    Without a directory, the issuers named in the settings.
    """
    if settings.directory is None:
        return list(settings.issuers)
    if settings.operator_public_key is None:
        raise SettingsError("a trust directory needs 'operator_public_key' to be verified")
    from datatrust.network import load_directory, load_operator_public_key

    loaded = load_directory(
        settings.directory, load_operator_public_key(settings.operator_public_key)
    )
    agencies: dict[tuple[str, str], list[str]] = {}
    directory = loaded.directory
    for member in (*directory.members, *directory.agencies):
        for issuer in member.issuers:
            agencies.setdefault((issuer.issuer, issuer.jwks_uri), []).append(member.agency)
    trust_ca = getattr(settings, "tls_ca", None)  # the trust's identity server may use it
    return [
        IssuerSetting(issuer=issuer, jwks_url=jwks, agencies=sorted(set(names)), ca_file=trust_ca)
        for (issuer, jwks), names in sorted(agencies.items())
    ]


def build_authenticator(
    issuers: Sequence[IssuerSetting],
    audience: str,
    limiter: RateLimiter | None = None,
    *,
    leeway_seconds: int = 30,
) -> Authenticate:
    """An authenticator for tokens from ``issuers`` addressed to ``audience``.

    With a ``limiter``, each verified requester also draws from its client's and (for a
    person) its own request budget; an exhausted budget is a RateLimited refusal.
    ``leeway_seconds`` is the clock skew allowed on token times (``token_leeway_seconds``).
    """
    if not issuers:

        def refuse(authorization: str | None) -> Requester:
            raise AuthenticationFailed(
                "this service trusts no identity issuer yet, so it serves no data: "
                "configure [[issuers]] in its settings"
            )

        return refuse

    from datatrust.trust.tokens import IssuerConfig, TokenValidator

    validator = TokenValidator(
        {
            setting.issuer: IssuerConfig(
                jwks_url=setting.jwks_url,
                agency=tuple(setting.agencies),
                algorithms=tuple(setting.algorithms),
            )
            for setting in issuers
        },
        audience,
        leeway_seconds=leeway_seconds,
        http_client=_jwks_client(issuers),
    )

    def authenticate(authorization: str | None) -> Requester:
        verified = validator.validate_header(authorization)
        if limiter is not None:
            keys = [f"client {verified.client_id}"]
            if verified.subject != verified.client_id:
                keys.append(f"person {verified.subject}")
            limiter.take(*keys)
        return Requester(
            subject=verified.subject,
            agency=verified.agency,
            roles=verified.roles,
            client_id=verified.client_id,
            purposes=verified.purposes,
            issuer=verified.issuer,
            person=verified.person,
        )

    return authenticate


def _jwks_client(issuers: Sequence[IssuerSetting]) -> httpx.Client | None:
    """The HTTP client for the issuers' JWKS: the system's CAs plus each issuer's own
    ``ca_file`` (None, the validator's default client, when no issuer names one)."""
    ca_files = sorted({setting.ca_file for setting in issuers if setting.ca_file is not None})
    if not ca_files:
        return None
    context = ssl.create_default_context()
    for ca_file in ca_files:
        try:
            context.load_verify_locations(cafile=str(ca_file))
        except (OSError, ssl.SSLError) as error:
            raise SettingsError(
                f"the issuer CA file {ca_file} cannot be read as a PEM certificate: {error}"
            ) from None
    return httpx.Client(timeout=5.0, verify=context)
