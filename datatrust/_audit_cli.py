"""``datatrust audit verify``: check every ledger of a local trust, entry by entry.

Each node (and the gateway) keeps its own hash-chained ledger in its store; the command
finds them from the settings files ``up`` wrote (or the default SQLite files), verifies
each chain, and names the first entry that does not fit.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from datatrust._demo_trust import DEMO_NODES
from datatrust.errors import DatatrustError, SettingsError
from datatrust.settings import GatewaySettings, NodeSettings, load_settings
from datatrust.store import check_ready, create_store_engine
from datatrust.trust import audit_head_path, verify_audit_chain

__all__ = ["LedgerCheck", "part_settings", "verify_ledgers"]

PARTS = (*(node.node_id for node in DEMO_NODES), "gateway")


@dataclass(frozen=True, slots=True)
class LedgerCheck:
    part: str
    entries_checked: int
    first_broken_seq: int | None
    problem: str | None = None

    @property
    def is_intact(self) -> bool:
        return self.first_broken_seq is None and self.problem is None


def part_settings(data_dir: Path, part: str) -> GatewaySettings | NodeSettings:
    """The settings ``up`` wrote for a part of the trust (a node id or "gateway")."""
    config = data_dir / "config" / f"{part}.toml"
    if part == "gateway":
        return load_settings(
            GatewaySettings,
            toml_path=config if config.exists() else None,
            environ={},
            data_dir=data_dir,
        )
    return load_settings(
        NodeSettings,
        toml_path=config if config.exists() else None,
        environ={},
        node_id=part,
        agency=part,
        data_dir=data_dir,
    )


def _database_url(data_dir: Path, part: str) -> str:
    return part_settings(data_dir, part).effective_database_url


def verify_ledgers(data_dir: Path, only: str | None = None) -> list[LedgerCheck]:
    """Verify the ledger of ``only`` (a node id or "gateway"), or of every part."""
    if only is not None and only not in PARTS:
        raise SettingsError(f"unknown part {only!r}; the trust's parts are {', '.join(PARTS)}")
    checks = []
    for part in [only] if only else PARTS:
        url = _database_url(data_dir, part)
        if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
            if only:
                checks.append(LedgerCheck(part, 0, None, f"no ledger at {url}"))
            continue
        engine = create_store_engine(url)
        try:
            check_ready(engine)  # a store behind the code's schema cannot be read entry by entry
            checked, broken = verify_audit_chain(engine, audit_head_path(data_dir, part))
            checks.append(LedgerCheck(part, checked, broken))
        except DatatrustError as error:
            checks.append(LedgerCheck(part, 0, None, error.message))
        finally:
            engine.dispose()
    return checks
