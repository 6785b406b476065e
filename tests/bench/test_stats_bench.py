"""The --stats section of make bench, on the digits for one round: it runs end to end and says on / off.
Nothing here is timed against a limit."""

import pytest
from benchmarks import stats

pytestmark = pytest.mark.slow


def test_the_stats_section_runs_both_ways_and_reports_the_ratio(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNLAB_HOME", str(tmp_path / "home"))
    rows = stats.run(data="digits", epochs=2, rounds=1)
    assert [r["machine"] for r in rows] == ["quiet", "busy"]
    for r in rows:
        assert r["stats_on_s"] > 0 and r["stats_off_s"] > 0
        assert r["ratio"] == pytest.approx(r["stats_on_s"] / r["stats_off_s"], rel=0.05)  # of rounded seconds
