"""The copy after a long outage: 200,000 recommendations journaled while the database was away, drained by a
process of its own (as the mule is) in bounded batches, with flat memory. The rate is printed; the bound the
test holds is the memory's (benchmarks/README.md states the rate on an idle machine)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.store.journal import Journal
from app.store.recommendation_log import RecommendationLog, make_engine
from tests.relay import Relay, relayed_url

pytestmark = pytest.mark.service

JOURNALED = 200_000
PEAK_MEMORY_BYTES = 200 * 1024 * 1024
TITLES = [f"Movie {number} (1990)" for number in range(10)]

DRAINER = """
import json, sys, time
from pathlib import Path
from app.store.journal import Journal
from app.store.recommendation_log import RecommendationLog, make_engine
log = RecommendationLog(make_engine(sys.argv[1]), Journal(Path(sys.argv[2])))
started = time.monotonic()
copied = log.drain_journal()
seconds = time.monotonic() - started
# VmHWM, not ru_maxrss: Linux keeps ru_maxrss across execve, so it would be pytest's own.
status = Path("/proc/self/status").read_text().splitlines()
peak = 1024 * int(next(line.split()[1] for line in status if line.startswith("VmHWM:")))
print(json.dumps({"copied": copied, "seconds": seconds, "peak_bytes": peak}))
"""


def test_a_copy_after_a_long_outage_holds_one_batch_at_a_time(
    empty_postgres: str, relay: Relay, tmp_path: Path
) -> None:
    serving = RecommendationLog(make_engine(relayed_url(empty_postgres, relay)), Journal(tmp_path / "journal"))
    serving.create_tables()
    relay.cut()  # the outage: a worker journals on, asking the database nothing
    for turn in range(JOURNALED):
        serving.record_recommendation(
            age=1 + turn % 120, gender="MFO"[turn % 3], occupation="writer", max_recs=10, titles=TITLES,
            model_version="a" * 64, client=f"client-{turn}",
        )  # fmt: skip
    serving.engine.dispose()
    (journal_file,) = (tmp_path / "journal").glob("*.jsonl")
    started = time.monotonic()
    drained = subprocess.run(
        [sys.executable, "-c", DRAINER, empty_postgres, str(tmp_path / "journal")],
        capture_output=True, text=True, timeout=600, cwd=Path(__file__).resolve().parents[2],
    )  # fmt: skip
    assert drained.returncode == 0, drained.stderr[-3000:]
    figures = json.loads(drained.stdout)
    print(
        f"catch-up drill: {figures['copied']} lines ({journal_file.stat().st_size / 1e6:.0f} MB) copied in "
        f"{figures['seconds']:.1f} s ({figures['copied'] / figures['seconds']:.0f} lines/s), peak memory "
        f"{figures['peak_bytes'] / 2**20:.0f} MB, {time.monotonic() - started:.1f} s with the interpreter's start"
    )
    assert figures["copied"] == JOURNALED
    assert figures["peak_bytes"] < PEAK_MEMORY_BYTES
