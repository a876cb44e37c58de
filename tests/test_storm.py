"""The storm's phases, small: what they show is statuses, not times.

Two Lambda-like worker processes through pgbouncer, then the pooler's client limit and
PostgreSQL's max_connections exhausted and released (bench/storm.py; `make storm` runs 50
workers and reports the times). Exhausted: every answer a 503, none a 500. Released: the
same processes answer again, without a restart.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import storm

pytestmark = pytest.mark.postgres


def test_exhaustion_is_503_and_the_same_processes_recover(tmp_path: Path) -> None:
    out = tmp_path / "storm.json"
    args = ["--workers", "2", "--invocations", "20", "--exhaustion-invocations", "5"]
    assert storm.main([*args, "--json", str(out)]) == 0
    phases = {row["phase"]: row["statuses"] for row in json.loads(out.read_text())}

    assert phases.pop("one worker alone (floor)") == {"200": 80, "201": 20}
    assert phases.pop("storm through pgbouncer") == {"200": 16, "201": 4}
    for name, statuses in phases.items():
        if name.endswith("exhausted"):
            assert statuses == {"503": 10}, name
        else:
            assert statuses == {"200": 8, "201": 2}, name
    assert len(phases) == 4
