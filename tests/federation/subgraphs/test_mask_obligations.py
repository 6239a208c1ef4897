"""A masked field is null wherever it is asked for; without masks every field answers."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from datatrust.federation.subgraphs import subgraph_schema
from datatrust.federation.subgraphs._base import NodeContext
from datatrust.policies import Permit
from datatrust.policies._engines import Obligations
from datatrust.store import create_store_engine, migrate

QUERY = "{ areas(first: 2) { code name again: name } }"


def _permit(*masks: str) -> Permit:
    return Permit(
        purpose="service-planning",
        fields=frozenset(),
        policy_version="test",
        obligations=Obligations(mask=masks),
    )


@pytest.mark.parametrize("masks", [(), ("Area.name",)])
def test_masks_apply_only_where_the_permit_names_them(tmp_path: Path, masks) -> None:
    engine = create_store_engine(f"sqlite:///{tmp_path / 'node.db'}")
    migrate(engine)
    try:
        context = NodeContext(engine=engine, permit=_permit(*masks), node_id="council")
        result = asyncio.run(subgraph_schema("council").execute(QUERY, context_value=context))
    finally:
        engine.dispose()
    assert result.errors is None
    areas = result.data["areas"]
    assert len(areas) == 2
    assert all(area["code"] for area in areas)
    for area in areas:
        if masks:
            assert area["name"] is None
            assert area["again"] is None
        else:
            assert area["name"]
            assert area["again"] == area["name"]
