"""The trust's gateway process: the federation gateway with the trust's own checks.

The gateway is defence in depth: it refuses a request the enforcement point would refuse
before calling any node, and the nodes check again for themselves.
"""

from __future__ import annotations

from starlette.applications import Starlette

from datatrust.federation.gateway import create_gateway_app
from datatrust.policies import AccessRequest, decide, skeleton_policy
from datatrust.settings import GatewaySettings
from datatrust.trust import demo_purpose_register

__all__ = ["create_trust_gateway"]


def create_trust_gateway(settings: GatewaySettings) -> Starlette:
    register = demo_purpose_register()
    policy = skeleton_policy()

    def authorize(purpose: str | None, fields: frozenset[tuple[str, str]]) -> None:
        decide(AccessRequest(purpose=purpose, node="gateway", fields=fields), register, policy)

    return create_gateway_app(
        dict(settings.nodes), authorize=authorize, timeout_seconds=settings.timeout_seconds
    )
