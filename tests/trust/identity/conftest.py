from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.trust.identity.live import LiveIdentity, running_identity


@pytest.fixture
def identity(tmp_path: Path) -> Iterator[LiveIdentity]:
    with running_identity(tmp_path / "identity") as live:
        yield live
