"""The --stats section of make bench, on the digits for one round: it runs end to end and says on / off and
the share of an epoch the recording took.
Nothing here is timed against a limit."""

import statistics

import pytest
from benchmarks import stats

pytestmark = pytest.mark.slow


def test_the_stats_section_runs_both_ways_and_reports_the_ratio(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNLAB_HOME", str(tmp_path / "home"))
    rows, raw = stats.run(data="digits", epochs=2, rounds=1)
    assert [r["machine"] for r in rows] == ["quiet", "busy"] == list(raw)
    for r in rows:
        on, off = statistics.median(raw[r["machine"]]["on"]), statistics.median(raw[r["machine"]]["off"])
        assert on > 0 and off > 0 and len(raw[r["machine"]]["on"]) == 1  # one steady epoch a round
        assert (r["stats_on_s"], r["stats_off_s"], r["ratio"]) == (round(on, 2), round(off, 2), round(on / off, 3))
        (share,) = raw[r["machine"]]["recording"]  # the recording's own seconds, inside the epoch's
        assert 0 < share < 1 and r["recording"] == f"{share:.1%}"
