#!/usr/bin/env python3
"""The comparison table of a bench/race.sh run, from its JSON reports.

    race_table.py RESULTS_DIR P99_LIMIT_MS COMMAND   > table.md
    race_table.py --into BENCHMARKS.md table.md race|race-no-store   # between those markers
"""

import json
import pathlib
import re
import sys

MARKERS = {"race": ("<!-- race:start -->", "<!-- race:end -->"),
           "race-no-store": ("<!-- race-no-store:start -->", "<!-- race-no-store:end -->")}
NAMES = {"ej": "ej", "prosody": "Prosody", "ejabberd": "ejabberd"}


def load(results):
    runs = []
    for path in sorted(results.glob("*.json")):
        run = json.loads(path.read_text())
        run["file"] = path.name
        runs.append(run)
    return runs


def passed(run, limit):
    return (
        run["latency_ms"]["p99"] <= limit
        and run["lost"] == 0
        and run["stream_errors"] == 0
        and run["logins"] == run["users"]
        and run["delivered_per_second"] >= 0.95 * run["rate_target"]
    )


def cpu_per_message(run, part="cpu_us_per_delivered"):
    server = run.get("server") or {}
    return server.get(part)


def kernel_per_message(run):
    """The part of the server's CPU per message spent in the kernel."""
    return cpu_per_message(run, "cpu_us_per_delivered_system")


def fmt(value, digits=0):
    if value is None:
        return "—"
    if isinstance(value, str):
        return value
    return f"{value:,.{digits}f}"


def ratio(a, b):
    if a is None or b is None or isinstance(a, str) or isinstance(b, str) or b == 0:
        return "—"
    return f"{a / b:.2f}"


def table(results, limit, command):
    runs = load(results)
    servers = [s for s in NAMES if any(r["label"] == s for r in runs)]
    steps = sorted({r["users"] for r in runs if not r["idle"]})
    rows = []  # (label, {server: value}, digits)

    for users in steps:
        # The lowest rate, which every server ran: a like-for-like figure
        # even where a server passed no step.
        first = min((r["rate_target"] for r in runs if r["users"] == users and not r["idle"]), default=None)
        at_first = {s: next((r for r in runs if r["label"] == s and r["users"] == users and not r["idle"]
                             and r["rate_target"] == first), None) for s in servers}
        rows.append((f"{users} users at {first:,.0f} msg/s: delivered msg/s",
                     {s: (r["delivered_per_second"] if r else None) for s, r in at_first.items()}, 0))
        rows.append((f"{users} users at {first:,.0f} msg/s: p50 ms",
                     {s: (r["latency_ms"]["p50"] if r else None) for s, r in at_first.items()}, 1))
        rows.append((f"{users} users at {first:,.0f} msg/s: p99 ms",
                     {s: (r["latency_ms"]["p99"] if r else None) for s, r in at_first.items()}, 1))
        rows.append((f"{users} users at {first:,.0f} msg/s: server CPU µs per delivered message",
                     {s: (cpu_per_message(r) if r else None) for s, r in at_first.items()}, 0))
        rows.append((f"{users} users at {first:,.0f} msg/s: … of it in the kernel",
                     {s: (kernel_per_message(r) if r else None) for s, r in at_first.items()}, 0))
        best = {}
        for server in servers:
            mine = [r for r in runs if r["label"] == server and r["users"] == users and not r["idle"]]
            ok = [r for r in mine if passed(r, limit)]
            best[server] = max(ok, key=lambda r: r["rate_target"]) if ok else None
        rows.append((f"{users} users: highest target rate passed (msg/s)",
                     {s: (b["rate_target"] if b else "none") for s, b in best.items()}, 0))
        rows.append((f"{users} users: delivered msg/s at that rate",
                     {s: (b["delivered_per_second"] if b else None) for s, b in best.items()}, 0))
        rows.append((f"{users} users: p50 ms at that rate",
                     {s: (b["latency_ms"]["p50"] if b else None) for s, b in best.items()}, 1))
        rows.append((f"{users} users: p99 ms at that rate",
                     {s: (b["latency_ms"]["p99"] if b else None) for s, b in best.items()}, 1))
        rows.append((f"{users} users: server CPU µs per delivered message at that rate",
                     {s: (cpu_per_message(b) if b else None) for s, b in best.items()}, 0))
        rows.append((f"{users} users: … of it in the kernel",
                     {s: (kernel_per_message(b) if b else None) for s, b in best.items()}, 0))
        rows.append((f"{users} users: logins/s (concurrency {runs[0]['concurrency']})",
                     {s: max((r["logins_per_second"] for r in runs
                              if r["label"] == s and r["users"] == users and not r["idle"]), default=None)
                      for s in servers}, 0))
    idle = {r["label"]: r for r in runs if r["idle"]}
    if idle:
        some = next(iter(idle.values()))
        rows.append((f"memory per idle session, kB ({some['users']:,} sessions)",
                     {s: ((idle[s]["server"] or {}).get("memory_per_session_bytes", 0) / 1e3
                          if s in idle and idle[s]["logins"] == idle[s]["users"] else
                          (f'{idle[s]["logins"]} of {idle[s]["users"]} logged in' if s in idle else None))
                      for s in servers}, 1))
        rows.append((f"logins/s ({some['users']:,} sessions)",
                     {s: (idle[s]["logins_per_second"] if s in idle else None) for s in servers}, 0))
        rows.append(("login p99 ms",
                     {s: (idle[s]["login_ms"]["p99"] if s in idle else None) for s in servers}, 0))
        rows.append(("server RSS with every session, MB",
                     {s: ((idle[s]["server"] or {}).get("rss_after_login_bytes", 0) / 1e6 if s in idle else None)
                      for s in servers}, 0))

    out = []
    machine = (results / "machine").read_text().strip().splitlines() if (results / "machine").exists() else []
    versions = (results / "versions").read_text().strip().splitlines() if (results / "versions").exists() else []
    accounts = (results / "accounts-seconds").read_text().split() if (results / "accounts-seconds").exists() else []
    out.append(f"Run `{results.name}`, reproduced by `{command}`. A step passes when p99 ≤ {limit:g} ms, "
               "nothing is lost, every user logged in and ≥ 95 % of the target rate was delivered; "
               "the rate rises step by step until a step fails.")
    out.append("")
    for line in machine + versions:
        out.append(f"- {line}")
    if accounts:
        pairs = dict(zip(accounts[::2], accounts[1::2]))
        out.append("- seconds to create the accounts: "
                   + ", ".join(f"{NAMES.get(s, s)} {t}" for s, t in pairs.items()))
    out.append("")
    header = ["", *(NAMES[s] for s in servers)]
    others = [s for s in servers if s != "ej"] if "ej" in servers else []
    header += [f"ej / {NAMES[s]}" for s in others]
    out.append("| " + " | ".join(header) + " |")
    out.append("|" + "---|" + "---:|" * (len(header) - 1))
    for label, values, digits in rows:
        cells = [fmt(values.get(s), digits) for s in servers]
        cells += [ratio(values.get("ej"), values.get(s)) for s in others]
        out.append(f"| {label} | " + " | ".join(cells) + " |")
    out.append("")
    out.append("Ratios are ej's figure divided by the other server's: above 1 is better for ej in msg/s and "
               "logins/s, worse in latency, CPU and memory. Each server's CPU time and RSS are read from "
               "`/proc`; memory per session is the RSS growth from before the logins to after them, over "
               "the sessions.")
    out.append("")
    out.append("Every step:")
    out.append("")
    out.append("| server | users | target msg/s | delivered msg/s | p50 ms | p99 ms | max ms | lost | errors "
               "| server CPU µs/msg | … in the kernel | server RSS after, MB | client CPU s | load average (start) | passed |")
    out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|")
    order = {s: i for i, s in enumerate(NAMES)}
    for r in sorted(runs, key=lambda r: (order.get(r["label"], 9), r["idle"], r["users"], r["rate_target"])):
        server = r.get("server") or {}
        target = "idle" if r["idle"] else fmt(r["rate_target"])
        errors = r["stanza_errors"] + r["stream_errors"] + r["login_failures"]
        out.append(
            f'| {NAMES.get(r["label"], r["label"])} | {r["users"]:,} | {target} '
            f'| {fmt(r["delivered_per_second"]) if not r["idle"] else "—"} '
            f'| {fmt(r["latency_ms"]["p50"], 1)} | {fmt(r["latency_ms"]["p99"], 1)} | {fmt(r["latency_ms"]["max"], 1)} '
            f'| {r["lost"]:,} | {errors:,} | {fmt(cpu_per_message(r)) if not r["idle"] else "—"} '
            f'| {fmt(kernel_per_message(r)) if not r["idle"] else "—"} '
            f'| {fmt(server.get("rss_after_load_bytes", 0) / 1e6)} | {fmt(r["client_cpu_seconds"], 1)} '
            f'| {r["load_average_start"]} | {"idle" if r["idle"] else ("yes" if passed(r, limit) else "**no**")} |'
        )
    errors = sorted({(r["label"], e) for r in runs for e in r["errors"]})
    if errors:
        out.append("")
        out.append("Errors seen (the first few of each run):")
        out.append("")
        for label, error in errors[:20]:
            out.append(f"- {NAMES.get(label, label)}: `{error}`")
    return "\n".join(out) + "\n"


def into(document, table_file, marker):
    start, end = MARKERS[marker]
    path = pathlib.Path(document)
    text = path.read_text()
    block = f"{start}\n{pathlib.Path(table_file).read_text().rstrip()}\n{end}"
    if start in text and end in text:
        text = re.sub(re.escape(start) + ".*?" + re.escape(end), lambda _: block, text, flags=re.S)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text)


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--into":
        into(sys.argv[2], sys.argv[3], sys.argv[4])
    elif len(sys.argv) == 4:
        sys.stdout.write(table(pathlib.Path(sys.argv[1]), float(sys.argv[2]), sys.argv[3]))
    else:
        sys.exit(__doc__)
