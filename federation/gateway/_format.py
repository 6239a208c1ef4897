"""Readable query plan text, in the shape of Apollo's: Sequence, Parallel, Flatten, Fetch."""

from __future__ import annotations

from ._plan import Fetch, QueryPlan
from ._selection import SelectedField, SelectedFragment, print_selections


def format_plan(plan: QueryPlan) -> str:
    """The plan as indented text; a step of one fetch is not wrapped in ``Parallel``."""
    steps = [_step(step) for step in plan.steps if step]
    if plan.introspection is not None:
        steps.insert(0, _block('Introspection(service: "gateway")', _selection(plan.introspection)))
    if not steps:
        body: list[str] = []
    elif len(steps) == 1:
        body = steps[0]
    else:
        body = _block("Sequence", [line for step in steps for line in step])
    return "\n".join(["QueryPlan {", *_indent(body), "}"])


def _step(fetches: tuple[Fetch, ...]) -> list[str]:
    nodes = [_fetch(fetch) for fetch in fetches]
    if len(nodes) == 1:
        return nodes[0]
    return _block("Parallel", [line for node in nodes for line in node])


def _fetch(fetch: Fetch) -> list[str]:
    selection = ["{", *print_selections(fetch.selections), "}"]
    if not fetch.targets:
        return _block(f'Fetch(service: "{fetch.service}")', selection)
    requires = {
        target.type_name: SelectedFragment(
            target.type_name,
            tuple(SelectedField(name, name, "String") for name, _ in target.keys),
        )
        for target in fetch.targets
    }
    lines = ["{", *print_selections(tuple(requires.values())), "} =>", *selection]
    paths = ", ".join(f'"{".".join(target.path)}"' for target in fetch.targets)
    inner = _block(f'Fetch(service: "{fetch.service}")', lines)
    return _block(f"Flatten(path: {paths})", inner)


def _selection(document: str) -> list[str]:
    lines = document.splitlines()
    return ["{", *lines[1:-1], "}"]


def _block(head: str, lines: list[str]) -> list[str]:
    return [f"{head} {{", *_indent(lines), "},"]


def _indent(lines: list[str]) -> list[str]:
    return [f"  {line}" for line in lines]
