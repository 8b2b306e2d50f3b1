"""The figures of `bench e2e --plot`, `bench ring --plot` and `demo --plot`
(tools/plots.py) drawn from small synthetic data sets, and the clear error
(exit 2, before anything runs) when matplotlib is not installed.  The
drawing tests need the bench extra; the error tests run everywhere."""
from __future__ import annotations

import sys

import numpy as np
import pytest

from zksidecar.tools import cli, plots
from zksidecar.tools.bench import e2e, runner

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _assert_png(path) -> None:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    import matplotlib.image

    img = matplotlib.image.imread(str(path))
    assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100
    assert len(data) < 300_000          # small enough for the docs


def _samples(n: int = 30, rate: int = 1000) -> list[dict]:
    """A run's /status samples every 0.5 s: nothing proven at first, then a
    steady backlog of 300 operations proven about 0.3 s after being seen."""
    out = []
    for i in range(n):
        ingested = rate * i // 2
        proven = max(0, ingested - 300)
        out.append({"t": 0.5 * i, "published": ingested, "ingested": ingested, "proven": proven,
                    "lag_count": proven, "lag_mean_s": 0.3 + 0.01 * (i % 3) if proven else None,
                    "lag_p99_s": 0.45 if proven else None})
    return out


def test_interval_lag_is_the_mean_of_what_was_proven_in_between():
    samples = [
        {"t": 0.0, "lag_count": 0, "lag_mean_s": None},
        {"t": 0.5, "lag_count": 100, "lag_mean_s": 0.2},                   # 100 ops at 0.2 s
        {"t": 1.0, "lag_count": 100, "lag_mean_s": 0.2},                   # nothing proven: skipped
        {"t": 1.5, "lag_count": 300, "lag_mean_s": (100 * 0.2 + 200 * 0.5) / 300},   # 200 at 0.5 s
    ]
    ts, lags = plots.interval_lag(samples)
    assert ts == [0.5, 1.5]
    assert lags == pytest.approx([200.0, 500.0])


def test_e2e_plot_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    rates = [{"rate": r, "kept_up": r <= 10_000, "lag_ms_p50": 150 + r / 100,
              "lag_ms_p99": 300 + r / 50 if r <= 10_000 else 8000} for r in (2500, 5000, 7500, 10_000, 12_500)]
    rates.append({"rate": 15_000, "kept_up": False, "lag_ms_p50": None, "lag_ms_p99": None})
    path = tmp_path / "e2e.png"
    plots.e2e(rates, {"rate": 10_000, "seconds": 12.0, "samples": _samples(rate=10_000)}, str(path),
              machine="a test machine")
    _assert_png(path)
    # nothing sustained: the time panel says so instead of failing
    path = tmp_path / "none.png"
    plots.e2e(rates[-1:], None, str(path))
    _assert_png(path)


def test_demo_plot_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "demo.png"
    plots.demo(_samples(), str(path), rate=1000, seconds=13.0, machine="a test machine")
    _assert_png(path)
    path = tmp_path / "empty.png"           # a run stopped before any proof
    plots.demo([{"t": 0.0, "published": None, "ingested": 0, "proven": 0, "lag_count": 0,
                 "lag_mean_s": None, "lag_p99_s": None}], str(path), rate=1000)
    _assert_png(path)


def test_ring_plot_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "ring.png"
    lat = np.random.default_rng(1).lognormal(5, 0.5, 5000)
    plots.ring_latency(lat, str(path), float(np.median(lat)), float(np.quantile(lat, 0.99)))
    _assert_png(path)


def test_e2e_suite_draws_the_ladder_and_the_lag_run(tmp_path, monkeypatch):
    """The suite's wiring, without a daemon: _one_rate made up, the plot
    drawn from the 10,000 ops/s run."""
    pytest.importorskip("matplotlib")
    drawn = {}

    def one_rate(sw, state_dir, rate, window_s, drain_s):
        kept = rate <= 10_000
        return {"rate": rate, "kept_up": kept, "published": 10, "proven": 10,
                "backlog_growth_2nd_half": 0, "lag_ms_p50": 100.0, "lag_ms_p99": 200.0,
                "peak_rss": 1 << 20,
                "stages": {"proof_ops_per_s": rate, "batch_ops_mean": 100.0, "proving_s_mean": 0.2,
                           "queue_wait_s_mean": 0.0},
                "series": {"rate": rate, "seconds": window_s, "samples": _samples(rate=rate)}}

    real_e2e = plots.e2e

    def spy(rates, lag_run, path, machine=""):
        drawn.update(rates=[r["rate"] for r in rates], lag_rate=lag_run["rate"])
        real_e2e(rates, lag_run, path, machine)

    monkeypatch.setattr(e2e, "_one_rate", one_rate)
    monkeypatch.setattr(plots, "e2e", spy)
    path = tmp_path / "suite.png"
    sw = runner.Stopwatch(quiet=True, plot=str(path))
    out = e2e._sustained(sw, str(tmp_path / "rates"), (5000, 10_000, 12_500), 2.0, 1.0)
    assert out["lag_rate_ops_per_s"] == 10_000
    assert drawn == {"rates": [5000, 10_000, 12_500], "lag_rate": 10_000}
    _assert_png(path)
    # the time series stays out of the figures the suite prints
    assert "series" not in str(out)


def test_demo_plot_end_to_end(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    path = tmp_path / "demo.png"
    code = cli.main(["demo", "--ops", "600", "--rate", "600", "--dir", str(tmp_path / "d"),
                     "--plot", str(path)])
    text = capsys.readouterr().out
    assert code == 0, text
    assert f"plot: {path}" in text
    _assert_png(path)


@pytest.fixture
def no_matplotlib(monkeypatch):
    """`import matplotlib` fails, as on an install without the bench extra."""
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)     # ImportError on import


@pytest.mark.parametrize("argv", [
    ["demo", "--ops", "10", "--plot", "{tmp}/x.png", "--dir", "{tmp}/d"],
    ["bench", "e2e", "--plot", "{tmp}/x.png"],
    ["bench", "ring", "--json", "--plot", "{tmp}/x.png"],
])
def test_plot_without_matplotlib_says_so_and_exits_2_before_running(tmp_path, capsys, no_matplotlib,
                                                                    monkeypatch, argv):
    from zksidecar.tools import demo

    def must_not_run(*a, **k):
        raise AssertionError("ran without being able to plot")

    monkeypatch.setattr(demo, "run", must_not_run)
    monkeypatch.setattr(runner, "run", must_not_run)
    code = cli.main([a.format(tmp=tmp_path) for a in argv])
    err = capsys.readouterr().err
    assert code == 2
    assert "--plot needs matplotlib" in err and "bench" in err and "pip install" in err
    assert "Traceback" not in err
    assert not (tmp_path / "x.png").exists() and not (tmp_path / "d").exists()


def test_drawing_without_matplotlib_raises_plot_unavailable(tmp_path, no_matplotlib):
    with pytest.raises(plots.PlotUnavailable, match="bench extra"):
        plots.demo(_samples(), str(tmp_path / "x.png"), rate=1000)


@pytest.mark.parametrize("suite", [s for s in runner.SUITES if s not in runner.PLOTTING])
def test_plot_of_a_suite_that_draws_none_is_refused_before_running(tmp_path, capsys, monkeypatch,
                                                                   suite):
    monkeypatch.setattr(runner, "run", lambda *a, **k: pytest.fail("ran a suite that draws no plot"))
    assert cli.main(["bench", suite, "--plot", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err
    assert f"suite {suite} draws no plot" in err and "ring, e2e" in err
    assert not (tmp_path / "x.png").exists()
