"""Who is using the console: a data protection officer, as their access token says.

The token is checked exactly as the trust's nodes check one (and as ``datatrust policy``
checks a DPO's ``--token``): with the issuers each node's settings trust, for that node's
audience. The console acts for the token's agency only, and only for a token with the
``dpo`` role; nothing in a URL or a form can name another agency. The node authenticators
are built once (each keeps its issuer's keys cached), on first use, so the portal starts
even before the nodes' settings exist.
"""

from __future__ import annotations

import threading
from pathlib import Path

from datatrust.errors import AuthenticationFailed, DatatrustError
from datatrust.policies import Requester

__all__ = ["DPO_ROLE", "DpoAuthenticator", "NotADpo"]

DPO_ROLE = "dpo"


class NotADpo(AuthenticationFailed):
    """A valid token, but not a data protection officer's (the console refuses it)."""


class DpoAuthenticator:
    """``authenticate(access_token)`` -> the DPO's Requester, or AuthenticationFailed."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._lock = threading.Lock()
        self._authenticators: list[tuple[str, object]] | None = None

    def _built(self) -> list[tuple[str, object]]:
        from datatrust._audit_cli import part_settings
        from datatrust._auth import build_authenticator, trusted_issuers
        from datatrust._demo_trust import DEMO_NODES

        with self._lock:
            if self._authenticators is None:
                built = []
                for node in DEMO_NODES:
                    settings = part_settings(self.data_dir, node.node_id)
                    built.append(
                        (
                            node.node_id,
                            build_authenticator(
                                trusted_issuers(settings), settings.effective_audience
                            ),
                        )
                    )
                self._authenticators = built
            return self._authenticators

    def requester(self, token: str) -> Requester:
        """The requester the first node that accepts ``token`` sees (any valid token)."""
        reasons = []
        for node_id, authenticate in self._built():
            try:
                return authenticate(f"Bearer {token}")  # type: ignore[operator]
            except DatatrustError as error:
                reasons.append(f"{node_id}: {error.message}")
        raise AuthenticationFailed("no node accepts the token: " + "; ".join(reasons))

    def dpo(self, token: str) -> Requester:
        """The requester, if a DPO of an agency; NotADpo for anyone else."""
        requester = self.requester(token)
        if DPO_ROLE not in requester.roles or not requester.agency or requester.person:
            raise NotADpo(
                f"{requester.subject} ({requester.agency or 'no agency'}) is not a data "
                "protection officer: the console is for DPOs (role 'dpo') only"
            )
        return requester
