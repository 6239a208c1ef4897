"""Turn per-area loads into one store query per distinct set of arguments."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from datatrust.federation.subgraphs._base import NodeContext

__all__ = ["by_arguments"]

T = TypeVar("T")


def by_arguments(
    query: Callable[..., dict[str, T]], missing: Any
) -> Callable[[NodeContext, list[tuple[Any, ...]]], list[T]]:
    """A DataLoader batch function for keys ``(area code, *arguments)``.

    Keys are grouped by their arguments (a period, a date), one ``query`` call per group
    for all its areas, so a request for fifty areas costs one store query per field.
    """

    def batch(context: NodeContext, keys: list[tuple[Any, ...]]) -> list[T]:
        groups: dict[tuple[Any, ...], list[str]] = {}
        for code, *arguments in keys:
            groups.setdefault(tuple(arguments), []).append(code)
        answers = {
            arguments: query(context.engine, context.permit, sorted(set(codes)), *arguments)
            for arguments, codes in groups.items()
        }
        return [answers[tuple(arguments)].get(code, missing) for code, *arguments in keys]

    return batch
