"""datatrust.store exports exactly its public names, sorted."""

from __future__ import annotations

import datatrust.store as store


def test_all_lists_every_public_name_once_and_sorted() -> None:
    public = {name for name in vars(store) if not name.startswith("_")}
    assert set(store.__all__) == public
    assert len(store.__all__) == len(public)
    assert store.__all__ == sorted(
        store.__all__, key=lambda n: (not n.isupper(), not n[0].isupper(), n)
    )
