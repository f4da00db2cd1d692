from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from livesight.core.clock import FakeClock
from tests.support.server import LiveServer, run_server


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def server(tmp_path: Path, clock: FakeClock) -> Iterator[LiveServer]:
    with run_server(tmp_path, clock=clock) as live:
        yield live
