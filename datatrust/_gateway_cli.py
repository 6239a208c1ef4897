"""``datatrust gateway plan QUERY``: how the gateway would answer a query, step by step.

The plan is made against the supergraph composed from this release's node subgraphs (the
same schemas the nodes serve), so it needs no running trust: an analyst or an operator can
see which node gets which fetch, in which order, before sending anything.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from datatrust._console import console

__all__ = ["gateway_app", "local_supergraph"]

gateway_app = typer.Typer(help="The federation gateway: see how it would answer a query.")


def local_supergraph():
    """The supergraph of this release's three node subgraphs, composed as the gateway does."""
    from datatrust.federation.gateway import compose
    from datatrust.federation.subgraphs import SUBGRAPH_MODULES, subgraph_schema

    sdl = {
        node: subgraph_schema(node).execute_sync("{ _service { sdl } }").data["_service"]["sdl"]
        for node in SUBGRAPH_MODULES
    }
    return compose(sdl)


@gateway_app.command("plan")
def plan(
    query: Annotated[
        str,
        typer.Argument(
            help="The GraphQL query; '-' reads it from standard input, @FILE from a file."
        ),
    ],
    operation_name: Annotated[
        str | None, typer.Option(help="Which operation, when the document has several.")
    ] = None,
    keys_first: Annotated[
        bool,
        typer.Option(
            help="Plan as the gateway does by default: every node's share of an entity at "
            "once, after its keys (--no-keys-first: the first node's fields before the rest)."
        ),
    ] = True,
) -> None:
    """Print the query plan: each step's fetches, the node each goes to and what it asks."""
    from datatrust.federation.gateway import format_plan, plan_operation

    if query == "-":
        text = sys.stdin.read()
    elif query.startswith("@"):
        text = Path(query[1:]).read_text(encoding="utf-8")
    else:
        text = query
    console.print(
        format_plan(
            plan_operation(local_supergraph(), text, operation_name, keys_first=keys_first)
        ),
        highlight=False,
        markup=False,
    )
