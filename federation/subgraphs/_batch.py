"""Turn per-area loads into one store query per distinct set of arguments."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from datatrust.federation.subgraphs._base import NodeContext
from datatrust.federation.subgraphs._data import Count
from datatrust.policies._disclosure import Cell, SdcPolicy

__all__ = ["by_arguments", "protected_counts"]

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


def protected_counts(
    query: Callable[..., dict[str, Count]], *, absent_is_zero: bool = True
) -> Callable[[NodeContext, list[tuple[Any, ...]]], list[int | None]]:
    """A DataLoader batch function for counts of people's records, disclosure-controlled.

    Like ``by_arguments``, one store query per distinct set of arguments; then every cell of
    the batch (each area, for each period the request asked about) is protected together
    under the permit's obligations, with the cells of one area as a group, so an area
    asked about for several overlapping periods through aliases cannot have a suppressed
    cell recovered by subtraction. A suppressed cell resolves to ``null``, never to 0.
    ``absent_is_zero`` False makes an area the query found nothing for ``null`` (no sensor
    there) rather than a count of 0.
    """

    def batch(context: NodeContext, keys: list[tuple[Any, ...]]) -> list[int | None]:
        permit = context.permit
        salt = context.keys.sdc_salt if context.keys else 0
        groups: dict[tuple[Any, ...], list[str]] = {}
        for code, *arguments in keys:
            groups.setdefault(tuple(arguments), []).append(code)
        counts: dict[tuple[Any, ...], Count] = {}
        absent: set[tuple[Any, ...]] = set()
        for arguments, codes in groups.items():
            found = query(context.engine, permit, sorted(set(codes)), *arguments, salt=salt)
            for code in codes:
                if code not in found and not absent_is_zero:
                    absent.add((code, *arguments))
                counts[(code, *arguments)] = found.get(code, Count(0, 0, 0))
        policy = SdcPolicy.from_obligations(permit.obligations, salt)
        cells = {key: Cell(count.count, count.cell_key) for key, count in counts.items()}
        protected = policy.protect(cells, group=lambda key: key[0])
        context.disclosed.aggregate(
            sum(c.count for c in counts.values()), sum(c.subjects for c in counts.values())
        )
        context.disclosed.suppressed(sum(p.suppressed for p in protected.values()))
        return [None if tuple(key) in absent else protected[tuple(key)].value for key in keys]

    return batch
