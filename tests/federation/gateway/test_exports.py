from __future__ import annotations

import datatrust.federation.gateway as gateway

# Type aliases and constants have no __module__ of their own, so they are named here.
NOT_DETECTABLE = {"Authorize", "FORWARDED_HEADERS"}


def _isort_style(name: str) -> tuple[int, str]:
    """Ruff's RUF022 order: CONSTANTS, then Classes, then functions, each alphabetical."""
    kind = 0 if name.isupper() else 1 if name[0].isupper() else 2
    return kind, name


def test_all_is_sorted_and_names_every_public_member() -> None:
    public = {
        name
        for name, value in vars(gateway).items()
        if not name.startswith("_")
        and getattr(value, "__module__", "").startswith(gateway.__name__)
    }
    assert gateway.__all__ == sorted(public | NOT_DETECTABLE, key=_isort_style)
