#!/usr/bin/env python3
"""Renders the figures of docs/performance.md from a scripts/bench results directory.

    python3 loadgen/plot/plot_bench.py [--out docs/img] target/bench/<run> [<run>…]

With several result directories, a scenario is taken from the last directory that has it (so a
re-run of some rows overrides the full run).

Writes latency-percentiles.png (end-to-end latency per scenario, medians of the runs, with the
targets) and relay-memory.png (relay RSS against open connections while 18,000 sockets connect,
and the relay's RSS while one viewer has stopped reading). Needs matplotlib (`pip install
matplotlib`).
"""

import json
import statistics
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def runs(results: list[Path], label: str) -> list[dict]:
    for directory in reversed(results):
        path = directory / f"{label}.jsonl"
        if path.exists():
            return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return []


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


PERCENTILES = [("p50", 50), ("p90", 90), ("p99", 99), ("p999", 99.9), ("max", 100)]


def latency_figure(results: list[Path], out: Path) -> None:
    series = [
        ("latency-100x10", "cpu", "100 pairs × 10 msg/s", {50: 100, 99: 300}),
        ("floor-100x10", "cpu", "same, minimal forwarder (floor)", {}),
        ("throughput-50x2000", "cpu", "50 pairs × 2,000 msg/s (100k/s)", {99: 5000}),
        ("sockets-9000x1", "cpu", "9,000 pairs × 1 msg/s (18k sockets)", {99: 2000}),
        ("latency-100x10", "beep", "viewer→desktop, 100 pairs", {}),
        ("slow-viewer", "after", "others while one viewer is stalled", {}),
    ]
    fig, ax = plt.subplots(figsize=(8, 5))
    xs = list(range(len(PERCENTILES)))
    for i, (label, prefix, name, targets) in enumerate(series):
        rs = runs(results, label)
        if not rs:
            continue
        ys = [median(r.get(f"{prefix}_{p}_us") for r in rs) for p, _ in PERCENTILES]
        if any(y is None for y in ys):
            continue
        line = ax.plot(xs, ys, marker="o", label=name)[0]
        for pct, target in targets.items():
            x = [q for _, q in PERCENTILES].index(pct)
            ax.plot([x], [target], marker="_", markersize=22, color=line.get_color())
    ax.set_yscale("log")
    ax.set_xticks(xs, ["p50", "p90", "p99", "p99.9", "max"])
    ax.set_ylabel("end-to-end latency, µs (log)")
    ax.set_title("deskbridge relay: desktop→relay→viewer latency (median of runs)\n"
                 "short bars: the targets of issue 6")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "latency-percentiles.png", dpi=110)
    plt.close(fig)


def memory_figure(results: list[Path], out: Path) -> None:
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
    for label, name in [("sockets-9000x1", "18,000 sockets, then 1 msg/s"),
                        ("idle-18000", "18,000 idle sockets")]:
        rs = runs(results, label)
        if not rs:
            continue
        r = rs[len(rs) // 2]
        points = r.get("rss_vs_open") or []
        if points:
            left.plot([p[0] for p in points], [p[1] for p in points], marker=".", label=f"{name}: connecting")
        if label == "sockets-9000x1" and r.get("relay_rss_end_mib"):
            seconds = r.get("warmup_s", 0) + r.get("duration_s", 0)
            left.plot([r["sockets"]], [r["relay_rss_end_mib"]], marker="*", markersize=12,
                      linestyle="none", label=f"after {seconds:.0f} s at 1 msg/s per desktop")
        idle = r.get("relay_rss_idle_mib")
        if idle is not None and label == "sockets-9000x1":
            xs = [0, 18000]
            left.plot(xs, [idle, idle + 18000 * 12 / 1024], linestyle="--", color="grey",
                      label="target: idle + 12 KiB per socket")
    left.set_xlabel("open WebSocket sessions")
    left.set_ylabel("relay RSS, MiB")
    left.set_title("RSS vs connections")
    left.grid(True, alpha=0.3)
    left.legend(fontsize=8)

    rs = runs(results, "slow-viewer")
    if rs:
        r = rs[len(rs) // 2]
        timeline = r.get("rss_timeline") or []
        if timeline:
            right.plot([p[0] for p in timeline], [p[1] for p in timeline])
            right.axvline(r.get("stall_at_s", 0), color="red", linestyle=":",
                          label="viewer stops reading")
            right.legend(fontsize=8)
    right.set_xlabel("seconds since traffic started")
    right.set_ylabel("relay RSS, MiB")
    right.set_title("slow viewer: relay RSS over time")
    right.set_ylim(bottom=0)
    right.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / "relay-memory.png", dpi=110)
    plt.close(fig)


def main() -> None:
    args = sys.argv[1:]
    out = Path("docs/img")
    if len(args) >= 2 and args[0] == "--out":
        out, args = Path(args[1]), args[2:]
    if not args:
        sys.exit(__doc__)
    results = [Path(a) for a in args]
    out.mkdir(parents=True, exist_ok=True)
    latency_figure(results, out)
    memory_figure(results, out)
    print(f"wrote {out / 'latency-percentiles.png'} and {out / 'relay-memory.png'}")


if __name__ == "__main__":
    main()
