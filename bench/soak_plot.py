#!/usr/bin/env python3
"""Draws a soak's CSV (written by tests/soak.rs from `--metrics` and /proc
once a second) as an SVG: events per second, event latency p50 and p99
(from the histogram's buckets, per interval) and the server's resident
memory over time, with the hot swaps and kill -9 restarts marked.

    bench/soak_plot.py target/tmp/soak/soak.csv docs/soak.svg

Python's standard library only.
"""

import csv
import sys

WIDTH, PANEL, GAP, LEFT, TOP = 900, 170, 45, 70, 40


def quantile(counts, bounds, q):
    """The upper bound of the bucket holding quantile q of one interval's
    events (counts are per bucket, not cumulative)."""
    total = sum(counts)
    if total <= 0:
        return None
    seen = 0
    for count, bound in zip(counts, bounds):
        seen += count
        if seen >= q * total:
            return bound
    return bounds[-1]


def series(rows):
    """Per-interval events/s, p50 and p99 in ms, and RSS in MiB."""
    buckets = [name for name in rows[0] if name.startswith("le_")]
    bounds = [float(name[3:]) * 1000 if name != "le_+Inf" else float("inf") for name in buckets]
    # The last finite bound stands for the overflow bucket, drawn at the top.
    bounds[-1] = bounds[-2] * 2
    out = []
    for before, after in zip(rows, rows[1:]):
        seconds = float(after["seconds"]) - float(before["seconds"])
        cumulative = [float(after[b]) - float(before[b]) for b in buckets]
        counts = [c - p for c, p in zip(cumulative, [0.0] + cumulative[:-1])]
        out.append({
            "t": float(after["seconds"]),
            "rate": (float(after["events"]) - float(before["events"])) / seconds,
            "p50": quantile(counts, bounds, 0.50),
            "p99": quantile(counts, bounds, 0.99),
            "rss": float(after["rss_bytes"]) / 2**20,
            "swap": after["swaps"] != before["swaps"],
            "kill": after["kills"] != before["kills"],
        })
    return out


def panel(svg, index, points, t_max, lines, title, unit):
    top = TOP + index * (PANEL + GAP)
    right = WIDTH - 20
    y_max = max([p[key] for p in points for key, _ in lines if p[key] is not None] + [1e-9]) * 1.1
    x = lambda t: LEFT + (right - LEFT) * t / t_max
    y = lambda v: top + PANEL - PANEL * v / y_max
    svg.append(f'<text x="{LEFT}" y="{top - 8}" font-weight="bold">{title}</text>')
    svg.append(f'<rect x="{LEFT}" y="{top}" width="{right - LEFT}" height="{PANEL}" fill="none" stroke="#999"/>')
    for i in range(5):
        v = y_max * i / 4
        svg.append(f'<text x="{LEFT - 6}" y="{y(v) + 4:.1f}" text-anchor="end" font-size="11">{v:.3g}</text>')
    svg.append(f'<text x="14" y="{top + PANEL / 2}" font-size="11" transform="rotate(-90 14 {top + PANEL / 2})" '
               f'text-anchor="middle">{unit}</text>')
    for p in points:
        for mark, colour in (("swap", "#2a2"), ("kill", "#d22")):
            if p[mark]:
                svg.append(f'<line x1="{x(p["t"]):.1f}" x2="{x(p["t"]):.1f}" y1="{top}" y2="{top + PANEL}" '
                           f'stroke="{colour}" stroke-dasharray="4 3"/>')
    for n, (key, colour) in enumerate(lines):
        coords = " ".join(f"{x(p['t']):.1f},{y(p[key]):.1f}" for p in points if p[key] is not None)
        svg.append(f'<polyline points="{coords}" fill="none" stroke="{colour}" stroke-width="1.5"/>')
        svg.append(f'<text x="{right - 10 - 70 * n}" y="{top + 14}" text-anchor="end" fill="{colour}" '
                   f'font-size="12">{key}</text>')


def main(source, target):
    with open(source, newline="") as f:
        rows = list(csv.DictReader(f))
    if len(rows) < 2:
        sys.exit(f"{source}: fewer than two samples")
    points = series(rows)
    t_max = points[-1]["t"]
    height = TOP + 3 * (PANEL + GAP) + 10
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
           f'font-family="sans-serif" font-size="13">',
           f'<rect width="{WIDTH}" height="{height}" fill="white"/>',
           f'<text x="{WIDTH - 20}" y="20" text-anchor="end" font-size="12">'
           f'{float(rows[-1]["events"]):,.0f} events counted by --metrics in {t_max:,.0f} s; '
           f'<tspan fill="#2a2">hot swap</tspan>, <tspan fill="#d22">kill -9 and restart</tspan></text>']
    panel(svg, 0, points, t_max, [("rate", "#36c")], "Events per second", "events/s")
    panel(svg, 1, points, t_max, [("p99", "#c60"), ("p50", "#36c")],
          "Event latency (histogram bucket bounds)", "ms")
    panel(svg, 2, points, t_max, [("rss", "#36c")], "Server resident memory", "MiB")
    svg.append(f'<text x="{WIDTH / 2}" y="{height - 8}" text-anchor="middle" font-size="11">seconds</text>')
    svg.append("</svg>")
    with open(target, "w") as f:
        f.write("\n".join(svg) + "\n")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
