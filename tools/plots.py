"""The figures of `zksidecar bench SUITE --plot PATH` and `zksidecar demo
--plot PATH`: matplotlib (the `bench` extra), imported only when a plot is
drawn, so the sidecar and its tools run without it.

`require()` is called before a long run, so a missing matplotlib is said
at once (exit status 2) rather than after minutes of measuring.  The
drawing functions take plain data (lists and dicts), not a live daemon, so
the tests can draw them from a small synthetic set.

Proof lag over time.  The daemon's /status gives, for every operation
proven so far, the count and mean of its proof lag (operation seen by
ingest -> its proof stored) and cumulative percentiles.  Sampled every
fraction of a second, the change of count x mean between two samples over
the change of count is the exact mean lag of the operations proven in
between: `interval_lag()` turns samples into that series.
"""
from __future__ import annotations

import sys

DPI = 90                  # small PNGs for the docs
INSTALL_HINT = "pip install 'zksidecar[bench]' (or: .venv/bin/pip install -e '.[dev,bench]')"


class PlotUnavailable(Exception):
    """matplotlib is not installed."""


def require() -> None:
    """Raise PlotUnavailable, with what to install, if matplotlib is missing."""
    try:
        import matplotlib  # noqa: F401
    except ImportError as exc:
        raise PlotUnavailable(f"--plot needs matplotlib, which is not installed ({exc}); "
                              f"it comes with the bench extra: {INSTALL_HINT}") from None


def check_or_exit_code(prog: str) -> int:
    """0 if plots can be drawn; otherwise the message on stderr and 2."""
    try:
        require()
    except PlotUnavailable as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    return 0


def _pyplot():
    require()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def interval_lag(samples: list[dict]) -> tuple[list[float], list[float]]:
    """(t, mean lag in ms of the operations proven since the previous
    sample) from samples {"t", "lag_count", "lag_mean_s"} in time order;
    intervals in which nothing was proven are skipped."""
    ts, lags = [], []
    prev_n, prev_sum = 0, 0.0
    for s in samples:
        n, mean = s.get("lag_count") or 0, s.get("lag_mean_s")
        if mean is None or n <= prev_n:
            continue
        total = n * mean
        ts.append(s["t"])
        lags.append(1000.0 * (total - prev_sum) / (n - prev_n))
        prev_n, prev_sum = n, total
    return ts, lags


def _lag_over_time(ax, samples: list[dict], end_s: float | None, title: str) -> None:
    ts, lags = interval_lag(samples)
    ax.plot(ts, lags, lw=1.2, marker=".", ms=3, label="mean lag of the operations proven in each sample interval")
    p99 = [(s["t"], 1000.0 * s["lag_p99_s"]) for s in samples if s.get("lag_p99_s") is not None]
    if p99:
        ax.plot([t for t, _ in p99], [v for _, v in p99], lw=1, ls="--", color="C3",
                label="p99 of every operation proven so far")
    if end_s is not None:
        ax.axvline(end_s, color="grey", lw=0.8, ls=":", label="engine stops publishing")
    ax.set_xlabel("seconds since the run started")
    ax.set_ylabel("proof lag (ms)")
    top = max(lags + [v for _, v in p99], default=1.0)
    ax.set_ylim(0, 1.45 * top)          # room for the legend above the lines
    ax.set_title(title, fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")


def e2e(rates: list[dict], lag_run: dict | None, path: str, machine: str = "") -> None:
    """`bench e2e --plot`: offered rate against proof lag p50/p99 (each rate
    of the ladder: {"rate", "kept_up", "lag_ms_p50", "lag_ms_p99"}), and
    proof lag over time in `lag_run` ({"rate", "seconds", "samples"}), the
    run the suite reports its lag from."""
    plt = _pyplot()
    f, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.2))
    xs = [r["rate"] for r in rates]
    for key, label, color in (("lag_ms_p50", "p50", "C0"), ("lag_ms_p99", "p99", "C3")):
        ys = [r.get(key) for r in rates]
        a1.plot(xs, [y if y is not None else float("nan") for y in ys], color=color, lw=1.2,
                marker="o", label=f"proof lag {label}")
        missed = [(x, y) for x, y, r in zip(xs, ys, rates) if not r["kept_up"] and y is not None]
        if missed:
            a1.plot([x for x, _ in missed], [y for _, y in missed], ls="none", marker="o", ms=11,
                    mfc="none", mec="black",
                    label="not kept up (lag of what was proven)" if key == "lag_ms_p99" else None)
    a1.axhline(2000, color="grey", lw=0.8, ls="--", label="target: p99 ≤ 2 s at 10,000 ops/s")
    a1.axvline(10_000, color="grey", lw=0.8, ls=":")
    a1.set_yscale("log")
    known = [r[k] for r in rates for k in ("lag_ms_p50", "lag_ms_p99") if r.get(k)] + [2000]
    a1.set_ylim(min(known) / 1.5, max(known) * 4)      # room for the legend above the lines
    from matplotlib.ticker import FuncFormatter

    a1.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    a1.yaxis.set_minor_formatter(FuncFormatter(      # 200, 300, 500, 2,000, …: a log axis to read
        lambda v, _: f"{v:,.0f}" if v > 0 and f"{v:.0e}"[0] in "235" else ""))
    a1.set_xlabel("offered rate (operations/s)")
    a1.set_ylabel("proof lag (ms), operation seen -> proof stored")
    a1.set_title("offered rate against proof lag", fontsize=10)
    a1.grid(True, which="both", alpha=0.3)
    a1.legend(fontsize=7, loc="upper left")
    if lag_run is not None:
        _lag_over_time(a2, lag_run["samples"], lag_run.get("seconds"),
                       f"proof lag over time at {lag_run['rate']:,} ops/s")
    else:
        a2.set_axis_off()
        a2.text(0.5, 0.5, "no offered rate was sustained", ha="center", va="center")
    if machine:
        f.suptitle(f"zksidecar bench e2e — {machine}", fontsize=10)
    f.tight_layout()
    f.savefig(path, dpi=DPI)
    plt.close(f)


def demo(samples: list[dict], path: str, rate: float, seconds: float | None = None,
         machine: str = "") -> None:
    """`demo --plot`: proof lag over time, and operations published,
    ingested and proven over time.  `samples`: {"t", "published",
    "ingested", "proven", "lag_count", "lag_mean_s", "lag_p99_s"}; `seconds`:
    when the engine stopped publishing."""
    plt = _pyplot()
    f, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.2))
    _lag_over_time(a1, samples, seconds, f"proof lag over time at {rate:,.0f} ops/s")
    t = [s["t"] for s in samples]
    for key, color, label in (("published", "C2", "published (the engine's last progress report)"),
                              ("ingested", "C0", "ingested"), ("proven", "C3", "proven")):
        a2.plot(t, [s.get(key) if s.get(key) is not None else float("nan") for s in samples],
                lw=1.2, color=color, label=label)
    if seconds is not None:
        a2.axvline(seconds, color="grey", lw=0.8, ls=":")
    a2.set_xlabel("seconds since the run started")
    a2.set_ylabel("operations")
    a2.set_title("operations published (engine), ingested and proven (daemon)", fontsize=10)
    a2.grid(True, alpha=0.3)
    a2.legend(fontsize=7, loc="upper left")
    if machine:
        f.suptitle(f"zksidecar demo — {machine}", fontsize=10)
    f.tight_layout()
    f.savefig(path, dpi=DPI)
    plt.close(f)


def ring_latency(one_way, path: str, p50_ns: float, p99_ns: float) -> None:
    """`bench ring --plot`: HdrHistogram-style percentile plot of the ring's
    one-way latency (ns, one value per ping-pong half)."""
    import numpy as np

    plt = _pyplot()
    ordered = np.sort(np.asarray(one_way))
    pct = (np.arange(1, len(ordered) + 1) - 0.5) / len(ordered)
    x = 1.0 / (1.0 - pct)
    f, ax = plt.subplots(figsize=(8, 4.5))
    ax.plot(x, ordered, lw=1.5)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ticks = [1, 2, 10, 100, 1000, 10000, 100000]
    ax.set_xticks(ticks, ["0%", "50%", "90%", "99%", "99.9%", "99.99%", "99.999%"])
    ax.set_xlim(1, x[-1])
    ax.set_xlabel("percentile")
    ax.set_ylabel("one-way latency (ns)")
    ax.set_title(f"zkring one-way latency, {len(ordered):,} ping-pong halves "
                 f"(p50 {p50_ns:.0f} ns, p99 {p99_ns:.0f} ns)")
    ax.grid(True, which="both", alpha=0.3)
    f.tight_layout()
    f.savefig(path, dpi=110)
    plt.close(f)
