"""Turn per-area loads into one store query per distinct period."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any, TypeVar

from datatrust.federation.subgraphs._base import NodeContext

__all__ = ["AreaKey", "by_period"]

T = TypeVar("T")
AreaKey = tuple[str, date | None, date | None]


def by_period(
    query: Callable[..., dict[str, T]], missing: Any
) -> Callable[[NodeContext, list[AreaKey]], list[T]]:
    """A DataLoader batch function: group keys by period, one ``query`` call per group."""

    def batch(context: NodeContext, keys: list[AreaKey]) -> list[T]:
        groups: dict[tuple[date | None, date | None], list[str]] = {}
        for code, since, until in keys:
            groups.setdefault((since, until), []).append(code)
        answers = {
            period: query(context.engine, context.permit, sorted(set(codes)), *period)
            for period, codes in groups.items()
        }
        return [answers[(since, until)].get(code, missing) for code, since, until in keys]

    return batch
