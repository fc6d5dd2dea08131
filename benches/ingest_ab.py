#!/usr/bin/env python3
"""Two builds of trail ingesting the same input, alternating run by run.

Usage (from the repository root):
    python3 benches/ingest_ab.py --a /path/to/trail-before --b target/release/trail \
        --input target/bench-data/shape-ndjson-1000000 [--runs 4] [--threads 2]

Each run is a fresh `trail ingest --threads N --json` into an empty store, timed with
/usr/bin/time (wall seconds, user + system CPU seconds, peak RSS). The two builds alternate
(A B, B A, ...), so a drift of the machine's speed falls on both. Every run must read the same
records and quarantine the same count, or the comparison stops. Printed: each run, then the
median with (min-max) per build, and B's wall and CPU time over A's, run pair by run pair.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile


def run(binary, inp, threads, store):
    shutil.rmtree(store, ignore_errors=True)
    p = subprocess.run(["/usr/bin/time", "-f", "%e %U %S %M", binary, "ingest", "--threads",
                        str(threads), "--json", "--store", store, inp],
                       capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"{binary} failed:\n{p.stderr[-2000:]}")
    wall, user, sys_, rss = p.stderr.strip().splitlines()[-1].split()
    summary = json.loads(p.stdout)
    counts = (summary.get("records"), summary.get("quarantined"))
    return float(wall), float(user) + float(sys_), int(rss) / 1024, counts


def spread(xs, fmt="{:.2f}"):
    return f"{fmt.format(statistics.median(xs))} ({fmt.format(min(xs))}-{fmt.format(max(xs))})"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--a", required=True, help="the build to compare against")
    ap.add_argument("--b", required=True, help="the build under test")
    ap.add_argument("--input", required=True)
    ap.add_argument("--runs", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    builds = {"A": os.path.abspath(args.a), "B": os.path.abspath(args.b)}
    results = {"A": [], "B": []}
    counts = None
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.runs):
            order = ["A", "B"] if r % 2 == 0 else ["B", "A"]
            for k in order:
                wall, cpu, rss, c = run(builds[k], args.input, args.threads, os.path.join(tmp, k))
                if counts is None:
                    counts = c
                elif c != counts:
                    sys.exit(f"build {k} read {c} (records, quarantined), not {counts}")
                results[k].append((wall, cpu, rss))
                print(f"run {r + 1} {k}: {wall:.2f} s wall, {cpu:.2f} CPU-s, {rss:.0f} MiB", flush=True)
    print(f"records, quarantined: {counts}")
    for k in ("A", "B"):
        v = results[k]
        print(f"{k}: wall {spread([x[0] for x in v])} s, CPU {spread([x[1] for x in v])} s, "
              f"peak RSS {max(x[2] for x in v):.0f} MiB")
    for i, name in ((0, "wall"), (1, "CPU")):
        ratios = [b[i] / a[i] for a, b in zip(results["A"], results["B"])]
        print(f"B over A, {name}: {spread(ratios)}")


if __name__ == "__main__":
    main()
