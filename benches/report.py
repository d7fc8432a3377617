"""Turns the measurements of benches/load.sh (JSON lines) into BENCHMARKS.md.

Usage: report.py RESULTS.jsonl OUT.md BIGGEST RUNS WRK_ARGS
Each ratio is taken within one run (the daemon and its reference measured back to back)
and the median over the runs is reported, next to the medians of the raw numbers.
"""

import json
import os
import statistics
import sys
from collections import defaultdict

results, out, biggest, runs, wrk_args = sys.argv[1:6]
biggest = int(biggest)
by = defaultdict(list)
for line in open(results):
    m = json.loads(line)
    by[m["k"]].append(m["v"])


def vals(key, field):
    return [v[field] for v in by.get(key, []) if field in v]


def med(key, field):
    xs = vals(key, field)
    return statistics.median(xs) if xs else None


def paired(a, fa, b, fb, f):
    """Median over runs of f(a_i, b_i)."""
    xs = [f(x, y) for x, y in zip(vals(a, fa), vals(b, fb)) if x is not None and y]
    return statistics.median(xs) if xs else None


def n(x, unit="", digits=0):
    if x is None:
        return "n/a"
    return f"{x:,.{digits}f}{unit}"


def size_name(k):
    k = int(k)
    return {1000: "1k", 100000: "100k", 1000000: "1M"}.get(k, str(k))


machine = by["machine"][0]
rows = []


def row(what, measured, reference, ratio, target, ok):
    # A measurement left out (LOAD_PARTS, or nginx missing) is neither met nor missed.
    if measured.startswith("n/a") or ratio == "n/a":
        verdict = "not measured"
    else:
        verdict = "met" if ok else "**missed**"
    rows.append((what, measured, reference, ratio, target, verdict))


r = paired("tput202.daemon", "rps", "tput202.bare", "rps", lambda a, b: a / b)
row("`202` poll throughput", n(med("tput202.daemon", "rps"), " req/s"),
    n(med("tput202.bare", "rps"), " req/s (bare hyper)"), n(r, " ×", 2), "≥ 0.7 ×",
    r is not None and r >= 0.7)
r = paired("tput200.daemon", "rps", "tput200.bare", "rps", lambda a, b: a / b)
row("`200` poll throughput, 4 KiB files", n(med("tput200.daemon", "rps"), " req/s"),
    n(med("tput200.bare", "rps"), " req/s (bare hyper, same body size)"), n(r, " ×", 2),
    "≥ 0.4 ×", r is not None and r >= 0.4)
r = paired("tput200.daemon2", "rps", "tput200.nginx", "rps", lambda a, b: a / b)
row("`200`, one 4 KiB file per poll, wrk `-t2 -c32`", n(med("tput200.daemon2", "rps"), " req/s"),
    n(med("tput200.nginx", "rps"), " req/s (nginx, the same file: sendfile, 2 workers)"),
    n(r, " ×", 2), "≥ 0.6 ×", r is not None and r >= 0.6)
lat_big, lat_small = med(f"latency.{biggest}", "p50_us"), med("latency.1000", "p50_us")
r = paired(f"latency.{biggest}", "p50_us", "latency.1000", "p50_us", lambda a, b: a / b)
row(f"p50 poll latency at {size_name(biggest)} files",
    n(lat_big, " µs") + f" (p99 {n(med(f'latency.{biggest}', 'p99_us'), ' µs')})",
    n(lat_small, " µs at 1k") + f" (p99 {n(med('latency.1000', 'p99_us'), ' µs')})",
    n(r, " ×", 2), "≤ 1.2 ×", r is not None and r <= 1.2)
for cache, prefix in (("warm", ""), ("cold", "cold.")):
    for kind, label in (("fresh", "empty index"), ("restart", "all indexed")):
        key, ref = f"ready.{prefix}{kind}.{biggest}", f"find.{prefix}{biggest}"
        r = paired(key, "ready_s", ref, "s", lambda a, b: a / b)
        row(f"start-up scan of {size_name(biggest)} files to `/healthz` = 200 ({label}, cache {cache})",
            n(med(key, "ready_s"), " s", 2),
            n(med(ref, "s"), f" s (`find -printf`, cache {cache})", 2), n(r, " ×", 2), "≤ 1.1 ×",
            r is not None and r <= 1.1)
r = paired("drain.daemon", "per_s", "drain.bare", "per_s", lambda a, b: a / b)
drained = med("drain.daemon", "count")
row(f"sequential drain, {size_name(drained) if drained else '100k'} files of 1 KiB", n(med("drain.daemon", "per_s"), " files/s"),
    n(med("drain.bare", "per_s"), " round trips/s (bare)"), n(r, " ×", 2), "≥ 0.7 ×",
    r is not None and r >= 0.7)
r = paired("batch.batch", "per_s", "batch.single", "per_s", lambda a, b: a / b)
batched = med("batch.batch", "count")
row(f"batch trigger, 100 files of 1 KiB per call ({size_name(batched) if batched else 'n/a'} files)",
    n(med("batch.batch", "per_s"), " files/s"),
    n(med("batch.single", "per_s"), " files/s (single trigger, same files)"), n(r, " ×", 1),
    "≥ 20 ×", r is not None and r >= 20)
r = paired("hook.daemon", "per_s", "hook.bare", "per_s", lambda a, b: a / b)
row(f"webhook deliveries to a local receiver ({n(med('hook.daemon', 'count'))} files of 1 KiB)",
    n(med("hook.daemon", "per_s"), " deliveries/s"),
    n(med("hook.bare", "per_s"), " POSTs/s (bare hyper client, same bodies, one in flight)"),
    n(r, " ×", 2), "≥ 0.5 ×", r is not None and r >= 0.5)
idx = by.get(f"index.{biggest}", [None])[0]
per_file = idx and idx["file_bytes"] / idx["files"]
live = by.get(f"index.live.{biggest}", [None])[0]
row(f"index size on disk per file at {size_name(biggest)} files (after a clean stop)",
    n(per_file, " B/file") + (f" (`index.redb` {idx['file_bytes'] / 1e6:,.1f} MB)" if idx else "")
    + (f"; {live['file_bytes'] / idx['files']:,.0f} B/file while running, before the close" if idx and live else ""),
    n(idx and idx["path_bytes"] / idx["files"], " B/file (relative path lengths)", 1),
    n(idx and idx["file_bytes"] / idx["path_bytes"], " ×", 1), "≤ 150 B/file",
    per_file is not None and per_file <= 150)
folder_files = sum(v["files"] for v in by.get("gen.folders", []) if "files" in v)
for kind, label, limit in (("fresh", "empty index to all indexed", 1.1), ("restart", "restart to ready", 1.1)):
    r = paired(f"folders.8.{kind}", "s", f"folders.1.{kind}", "s", lambda a, b: a / b)
    row(f"8 watched folders vs 1, {size_name(folder_files)} files, {label}: time",
        n(med(f"folders.8.{kind}", "s"), " s", 2), n(med(f"folders.1.{kind}", "s"), " s (1 folder)", 2),
        n(r, " ×", 2), f"≤ {limit} ×", r is not None and r <= limit)
    r = paired(f"folders.8.{kind}", "peak_kib", f"folders.1.{kind}", "peak_kib", lambda a, b: a / b)
    p8, p1 = med(f"folders.8.{kind}", "peak_kib"), med(f"folders.1.{kind}", "peak_kib")
    row(f"8 watched folders vs 1, {size_name(folder_files)} files, {label}: peak RSS",
        n(p8 and p8 / 1024, " MiB", 1), n(p1 and p1 / 1024, " MiB (1 folder)", 1),
        n(r, " ×", 2), "≤ 1.2 ×", r is not None and r <= 1.2)
for key, label in (("detect", "1,000 renames into place"), ("detect.close", "1,000 writes closed in place")):
    p99 = med(key, "p99_ms")
    row(f"detection latency p99 ({label})",
        n(p99, " ms", 0) + f" (p50 {n(med(key, 'p50_ms'), ' ms')})",
        "settle_after_close_ms = 300 (settle_ms = 2000 without the writer probe)",
        "", "≤ 600 ms", p99 is not None and p99 <= 600)
for kind, label in (("fresh", "indexing them from scratch"), ("restart", "restarted with them indexed")):
    peak = med(f"rss.{kind}.{biggest}", "peak_kib")
    row(f"peak RSS, {size_name(biggest)} files, {label}", n(peak and peak / 1024, " MiB", 1), "",
        "", "≤ 64 MiB", peak is not None and peak / 1024 <= 64)

lines = [
    "# Benchmarks",
    "",
    "Written by `bash benches/load.sh` (the load benchmark of issue 5); the index's",
    "micro-benchmarks are `cargo bench --bench index` (criterion). Do not edit by hand:",
    "run the script again.",
    "",
    f"- date: {machine['date']}",
    f"- machine: {machine['cores']} cores ({machine['cpu']}), {machine['mem_gib']} GiB memory,",
    f"  disk {machine['disk']}; Linux {machine['kernel']}; load average at start {machine['load']}",
    f"- runs per measurement: {runs}; numbers are medians over the runs, and each ratio is",
    "  the median of the ratios taken within one run (daemon and reference back to back).",
    "  The machine is shared and noisy: the ratios are what count.",
    f"- wrk: `{wrk_args}`; the reference is `benches/bare.rs`, a bare hyper server in the",
    "  same build profile with the same runtime and connection setup, answering a fixed",
    "  response of the same shape and size.",
    "",
    "## Targets",
    "",
    "| what | filetrigger | reference | ratio | target | |",
    "|---|---|---|---|---|---|",
]
lines += ["| " + " | ".join(r) + " |" for r in rows]
lines += [
    "",
    "## All measurements (medians)",
    "",
    "| tree | generated in | `find` | ready, empty index | indexed all after ready | ready, restart | peak RSS (fresh / restart) | `index.redb` (per file; relative paths per file) |",
    "|---|---|---|---|---|---|---|---|",
]
sizes = sorted({int(k.split(".")[-1]) for k in by if k.startswith(("find.", "index.")) and k.split(".")[-1].isdigit()})
for s in sizes:
    pf, pr = med(f"rss.fresh.{s}", "peak_kib"), med(f"rss.restart.{s}", "peak_kib")
    ix = by.get(f"index.{s}", [None])[0]
    ixs = (f"{ix['file_bytes'] / 1e6:,.2f} MB, {ix['disk_bytes'] / 1e6:,.2f} MB allocated "
           f"({ix['file_bytes'] / ix['files']:,.0f} B; {ix['path_bytes'] / ix['files']:,.1f} B)"
           if ix else "n/a")
    lines.append(
        f"| {s:,} files of 1 KiB | {n(med(f'gen.{s}', 's'), ' s', 1)} | {n(med(f'find.{s}', 's'), ' s', 3)} "
        f"| {n(med(f'ready.fresh.{s}', 'ready_s'), ' s', 3)} | {n(med(f'indexed.{s}', 'waited_s'), ' s', 1)} "
        f"| {n(med(f'ready.restart.{s}', 'ready_s'), ' s', 3)} "
        f"| {n(pf and pf / 1024, ' MiB', 1)} / {n(pr and pr / 1024, ' MiB', 1)} | {ixs} |")
lines += [
    "",
    "| measurement | result |",
    "|---|---|",
    f"| one poll at 1k files | p50 {n(med('latency.1000', 'p50_us'), ' µs')}, p99 {n(med('latency.1000', 'p99_us'), ' µs')}, mean {n(med('latency.1000', 'mean_us'), ' µs')} |",
    f"| one poll at {size_name(biggest)} files | p50 {n(med(f'latency.{biggest}', 'p50_us'), ' µs')}, p99 {n(med(f'latency.{biggest}', 'p99_us'), ' µs')}, mean {n(med(f'latency.{biggest}', 'mean_us'), ' µs')} |",
    f"| drain | {n(med('drain.daemon', 'count'))} files in {n(med('drain.daemon', 's'), ' s', 2)}, body {n(med('drain.daemon', 'avg_body'), ' B')}; bare: {n(med('drain.bare', 's'), ' s', 2)} |",
    f"| batch | {n(med('batch.batch', 'count'))} files in {n(med('batch.batch', 'calls'))} calls, {n(med('batch.batch', 's'), ' s', 2)}, body {n(med('batch.batch', 'avg_body'), ' B')}; single trigger: {n(med('batch.single', 's'), ' s', 2)} |",
    f"| webhook | {n(med('hook.daemon', 'count'))} deliveries in {n(med('hook.daemon', 's'), ' s', 2)}; bare client: {n(med('hook.bare', 's'), ' s', 2)}, body {n(med('hook.bare', 'avg_body'), ' B')} |",
    *[f"| detection ({mode}) | p50 {n(med(key, 'p50_ms'), ' ms')}, p99 {n(med(key, 'p99_ms'), ' ms')}, max {n(med(key, 'max_ms'), ' ms')}; missed {sum(vals(key, 'missed'))}, repeated {sum(vals(key, 'repeated'))} |"
      for key, mode in (("detect", "rename"), ("detect.close", "write and close"))],
    "",
    "Raw runs:",
    "",
    "```",
]
for line in open(results):
    lines.append(line.rstrip())
lines += ["```", ""]
notes = os.path.join(os.path.dirname(os.path.abspath(__file__)), "profile-notes.md")
if os.path.exists(notes):
    lines += ["", open(notes).read().rstrip(), ""]
open(out, "w").write("\n".join(lines))
