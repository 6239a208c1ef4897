"""Who is using the explorer: an analyst, as their access token says.

The token is checked exactly as the gateway checks it (the issuers the gateway's settings
trust, the gateway's audience), so the explorer offers nothing the gateway would refuse
at the door. It accepts only a token with the ``analyst`` role (the per-sub-application
``accept`` rule: the portal accepts citizens, the console DPOs); the purposes it offers
are the token's own, and nothing in a form can add one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from datatrust.errors import AuthenticationFailed
from datatrust.policies import Requester

__all__ = ["ANALYST_ROLE", "AnalystAuthenticator", "NotAnAnalyst", "is_analyst"]

ANALYST_ROLE = "analyst"


class NotAnAnalyst(AuthenticationFailed):
    """A valid token, but not an analyst's (the explorer refuses it)."""


def is_analyst(requester: Requester) -> bool:
    """The explorer's ``accept`` rule."""
    return ANALYST_ROLE in requester.roles and requester.person is None


class AnalystAuthenticator:
    """``analyst(access_token)`` -> the analyst's Requester, or AuthenticationFailed.

    The gateway's authenticator is built on first use (it reads the gateway's settings that
    ``up`` writes), so the portal starts before the gateway's files exist.
    """

    def __init__(self, data_dir: Path, *, accept: Callable[[Requester], bool] = is_analyst) -> None:
        self.data_dir = data_dir
        self.accept = accept
        self._lock = threading.Lock()
        self._authenticate: Callable[[str | None], Requester] | None = None

    def _built(self) -> Callable[[str | None], Requester]:
        from datatrust._audit_cli import part_settings
        from datatrust._auth import build_authenticator, trusted_issuers

        with self._lock:
            if self._authenticate is None:
                settings = part_settings(self.data_dir, "gateway")
                self._authenticate = build_authenticator(
                    trusted_issuers(settings), settings.effective_audience
                )
            return self._authenticate

    def analyst(self, access_token: str) -> Requester:
        requester = self._built()(f"Bearer {access_token}")
        if not self.accept(requester):
            raise NotAnAnalyst(
                "this account is not an analyst's: the explorer is for analysts of the "
                "trust's member agencies"
            )
        return requester
