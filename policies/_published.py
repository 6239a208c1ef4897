"""The runtime a node or the gateway decides with: the trust's published policy, live.

Reads the version in force from ``<data_dir>/policies`` (the DPO lifecycle's store) and
polls its pointer, so a newly published version (or a rollback) is in force at the next
request after the poll, without a restart. Before anything is published the shipped demo
documents decide, labelled as such, so a fresh checkout works; ``datatrust up`` publishes
them as version 1 on first run.
"""

from __future__ import annotations

from pathlib import Path

from datatrust.policies._enforcement import PolicyRuntime, PolicySnapshot, shipped_policy

__all__ = ["published_runtime"]


def published_runtime(
    data_dir: Path,
    *,
    engine_kind: str = "embedded",
    opa_url: str | None = None,
    check_interval: float = 1.0,
) -> PolicyRuntime:
    """A ``PolicyRuntime`` over the policy published in ``data_dir``, Polar checking first."""
    from datatrust.policies._platform import query_check
    from datatrust.policies.lifecycle import current_stamp, read_published

    def source() -> PolicySnapshot:
        published = read_published(data_dir)
        if published is None:
            return shipped_policy()
        return PolicySnapshot(
            published.stamp, published.policy_version, published.register, published.agreements
        )

    def stamp() -> str:
        return current_stamp(data_dir) or "shipped"

    return PolicyRuntime(
        source,
        stamp,
        engine_factory=_engine_factory(engine_kind, opa_url),
        check_interval=check_interval,
        platform=query_check(),
    )


def _engine_factory(kind: str, opa_url: str | None):
    from datatrust.policies._engines import create_policy_engine

    def build(policy_dir: Path, documents: dict):
        return create_policy_engine(kind, policy_dir, documents, opa_url=opa_url)

    return build
