"""A day in the shop (bench/shopday.py): every feature at once through the real daemon,
its web child, the CLI and the API, with the invariants that fail the build."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.shopday import Day
from tests.conftest import require_tool

pytestmark = pytest.mark.slow


def _run(day: Day) -> None:
    figures = day.run()
    print("\n".join(figures.lines()))
    assert not figures.violations, "\n".join(figures.violations)


def test_a_day_on_sqlite_with_one_node(tmp_path: Path):
    require_tool("pdftoppm")  # the previews people open
    _run(Day(tmp_path / "day", jobs=90, arrive_s=60, resting=200, idle_s=15))


def test_a_day_on_postgresql_with_two_nodes(tmp_path: Path, pg_url: str):
    require_tool("pdftoppm")
    _run(Day(tmp_path / "day", jobs=90, arrive_s=60, pg_url=pg_url, resting=200, idle_s=15))
