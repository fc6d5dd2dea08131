#!/usr/bin/env python3
"""Detection benchmark: `trail detect` over a generated store with every detection, then an
incremental run after one new day; and each Sigma rule alone.

Usage (from the repository root):
    cargo build --release -p trail-cli
    python3 benches/detect.py --events 10000000 [--rules ../shared/data/sigma/rules]

It ingests (once, cached under --work) the generated delivery tree of
benches/ingest_vs_duckdb.py without its last day, then times as fresh processes (--runs times,
min/median/max):

  * full: `trail detect --rules RULES` on a copy of that store (every event read; every saved
    analysis marked as a detection and every Sigma rule that compiles);
  * incremental: the last day ingested into the copy, then `trail detect` again (only the
    partitions the new commit touched are read);
  * per rule: `trail sigma run RULE` alone over the whole store.

Goals (issue): a full run under 30 s, an incremental day under 3 s, on this 2-core machine.
"""
import argparse
import json
import os
import shutil
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402


def day_dirs(data):
    """The delivery tree's day directories, sorted by day: {day: [dirs]}."""
    root = os.path.join(data, "AliyunLogs", "Actiontrail")
    days = {}
    for region in sorted(os.listdir(root)):
        for y in sorted(os.listdir(os.path.join(root, region))):
            for m in sorted(os.listdir(os.path.join(root, region, y))):
                for d in sorted(os.listdir(os.path.join(root, region, y, m))):
                    days.setdefault(f"{y}-{m}-{d}", []).append(os.path.join(root, region, y, m, d))
    return days


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--work", default=os.path.join(common.ROOT, "target", "bench-data"))
    ap.add_argument("--rules", default=os.path.join(common.ROOT, "..", "shared", "data", "sigma", "rules"))
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", help="write the results here")
    a = ap.parse_args()
    import ingest_vs_duckdb as ing
    trail = common.trail_binary()
    data, _ = ing.generate(a.events, a.work)
    days = day_dirs(data)
    last = max(days)
    base = os.path.join(a.work, f"detect-base-{a.events}")
    marker = os.path.join(base, ".bench-complete")
    if not os.path.exists(marker):
        shutil.rmtree(base, ignore_errors=True)
        dirs = [d for day, ds in sorted(days.items()) if day != last for d in ds]
        common.run_measured([trail, "ingest", "-q", "--threads", "2", "--store", base, *dirs])
        open(marker, "w").close()
    check = json.loads(common.run_measured([trail, "sigma", "check", "--json", a.rules])[2])
    print(f"{len(check['compiled'])} Sigma rules compile, {len(check['skipped'])} skipped; "
          f"store without its last day ({last}): {base}")
    full_t, inc_t, report = [], [], None
    for _ in range(a.runs):
        store = os.path.join(a.work, f"detect-run-{a.events}")
        shutil.rmtree(store, ignore_errors=True)
        shutil.copytree(base, store)
        t, _, out = common.run_measured([trail, "detect", "--store", store, "--threads", str(a.threads),
                                         "--json", "--rules", a.rules])
        full_t.append(t)
        report = json.loads(out)
        common.run_measured([trail, "ingest", "-q", "--threads", "2", "--store", store, *days[last]])
        t, _, out = common.run_measured([trail, "detect", "--store", store, "--threads", str(a.threads),
                                         "--json", "--rules", a.rules])
        inc_t.append(t)
        inc = json.loads(out)
        shutil.rmtree(store, ignore_errors=True)
    print(f"full run:        {common.secs(full_t)}  ({report['findings']} findings, "
          f"Sigma scan {report['sigmaScanSeconds']:.2f} s, {len(report['rules'])} detections)")
    print(f"incremental day: {common.secs(inc_t)}  ({inc['findings']} findings, {inc['partitions']} partitions read)")
    analyses = [r for r in report["rules"] if r["kind"] == "analysis"]
    for r in sorted(analyses, key=lambda r: -r["seconds"]):
        print(f"  analysis {r['id']:<36} {r['seconds']:.2f} s  {r['findings']} findings")
    per_rule = []
    for rule in sorted(check["compiled"], key=lambda r: r["path"]):
        t, _, out = common.run_measured([trail, "sigma", "run", "--store", base, "--threads",
                                         str(a.threads), "--json", rule["path"]])
        per_rule.append((rule["path"], t, len(out.splitlines())))
    times = [t for _, t, _ in per_rule]
    print(f"each Sigma rule alone over the store: median {statistics.median(times):.2f} s, "
          f"max {max(times):.2f} s ({len(times)} rules)")
    for path, t, n in sorted(per_rule, key=lambda x: -x[1])[:5]:
        print(f"  {os.path.basename(path):<60} {t:.2f} s  {n} matches")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"full_s": full_t, "incremental_s": inc_t, "report": {k: v for k, v in report.items() if k != "records"},
                       "per_rule": per_rule}, f, indent=1)


if __name__ == "__main__":
    main()
