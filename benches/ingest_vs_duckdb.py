#!/usr/bin/env python3
"""Side-by-side ingest benchmark: `trail ingest` against the DuckDB binary on the same files.

Usage (from the repository root):
    cargo build --release -p trail-cli
    pip install duckdb-cli
    python3 benches/ingest_vs_duckdb.py --events 1000000 [--events 10000000] [--runs 3]

For each size it generates (once, cached under --work) an ActionTrail delivery tree with the
project's deterministic generator (with labelled anomalies, so the insight benchmark finds
some), then runs --runs times, each engine as a fresh process:

  * trail: `trail ingest --threads D` into an empty store. D decoder threads work beside a
    file reader thread and the writer (dedup, sort, encode): D + 2 threads in all;
  * DuckDB, default settings: COPY (SELECT ... FROM read_json(..., explicit columns)) TO ...
    (FORMAT parquet, PARTITION_BY (region, eventDate), COMPRESSION zstd), with
    `SET threads = D + 2`, the same number of threads;
  * DuckDB, tuned as its documentation recommends for large imports: the same with
    `SET preserve_insertion_order = false` and `SET memory_limit` (--duckdb-memory-limit).

Both engines' outputs are counted (trail's summary, DuckDB's Parquet read back) and must hold
every generated event. Printed: seconds, events/s and MB/s of JSON as the median with
(min-max), peak RSS (max over runs), and trail's throughput and RSS relative to each DuckDB row.
"""
import argparse
import json
import os
import shutil
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

DUCKDB_COLUMNS = {
    "eventId": "VARCHAR", "eventVersion": "VARCHAR", "eventSource": "VARCHAR",
    "eventName": "VARCHAR", "eventType": "VARCHAR", "eventCategory": "VARCHAR",
    "eventRW": "VARCHAR", "eventTime": "TIMESTAMPTZ", "acsRegion": "VARCHAR",
    "serviceName": "VARCHAR", "apiVersion": "VARCHAR", "requestId": "VARCHAR",
    "isGlobal": "BOOLEAN", "sourceIpAddress": "VARCHAR", "userAgent": "VARCHAR",
    "userIdentity": "STRUCT(type VARCHAR, principalId VARCHAR, accountId VARCHAR, "
                    "accessKeyId VARCHAR, userName VARCHAR, sessionContext STRUCT("
                    "attributes STRUCT(mfaAuthenticated VARCHAR, creationDate VARCHAR)))",
    "errorCode": "VARCHAR", "errorMessage": "VARCHAR",
    "requestParameters": "JSON", "responseElements": "JSON",
    "additionalEventData": "JSON", "referencedResources": "JSON",
    "resourceType": "VARCHAR", "resourceName": "VARCHAR", "recipientAccountId": "VARCHAR",
}

ANOMALIES = 20


def generate(events, work):
    """Generate (once) the delivery tree for `events` events; returns (dir, stats)."""
    labels = os.path.join(work, f"gen-{events}.labels.json")
    return common.generate_once(os.path.join(work, f"gen-{events}"),
                                ["--events", str(events), "--anomalies", str(ANOMALIES),
                                 "--labels", labels])


def duckdb_sql(src, out, threads, tuned, memory_limit):
    cols = "{" + ", ".join(f"'{k}': '{v}'" for k, v in DUCKDB_COLUMNS.items()) + "}"
    settings = f"SET threads = {threads}; SET enable_progress_bar = false; "
    if tuned:
        settings += f"SET preserve_insertion_order = false; SET memory_limit = '{memory_limit}'; "
    return settings + f"""
COPY (
  SELECT *, acsRegion AS region, CAST(eventTime AT TIME ZONE 'UTC' AS DATE) AS eventDate
  FROM read_json('{src}/**/*.json.gz', format = 'array', columns = {cols})
) TO '{out}' (FORMAT parquet, PARTITION_BY (region, eventDate), COMPRESSION zstd);
SELECT count(*) AS n FROM read_parquet('{out}/**/*.parquet');
"""


def mib(n):
    return f"{n / (1 << 20):,.0f} MiB"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, action="append", help="sizes to run (repeatable)")
    ap.add_argument("--work", default=os.path.join(common.ROOT, "target", "bench-data"))
    ap.add_argument("--decoders", type=int, default=2,
                    help="trail's --threads (decoder threads); DuckDB gets this + 2 threads")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--duckdb-timeout", type=float, default=None,
                    help="stop a DuckDB run after this many seconds (reported as a lower bound)")
    ap.add_argument("--duckdb-memory-limit", default="4GB",
                    help="memory_limit of the tuned DuckDB row")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()
    duck = common.duckdb_binary()
    tv, dv = common.versions(duck)
    total_threads = args.decoders + 2
    print(f"{tv}\n{dv}\ntrail --threads {args.decoders} ({total_threads} threads in all), "
          f"DuckDB threads = {total_threads}; {args.runs} runs")
    os.makedirs(args.work, exist_ok=True)
    table = []
    for n in args.events or [1_000_000]:
        data, info = generate(n, args.work)
        expected = info["events"]
        rows = {"trail": [], "DuckDB": [], "DuckDB tuned": []}
        for _ in range(args.runs):
            store = os.path.join(args.work, f"ingest-bench-store-{n}")
            shutil.rmtree(store, ignore_errors=True)
            t, rss, out = common.run_measured(
                [common.trail_binary(), "ingest", "--store", store, "--json",
                 "--threads", str(args.decoders), data])
            summary = json.loads(out)
            if summary["ingested"] != expected:
                sys.exit(f"trail ingested {summary['ingested']} of {expected} events")
            rows["trail"].append((t, rss))
            shutil.rmtree(store, ignore_errors=True)
            for label, tuned in (("DuckDB", False), ("DuckDB tuned", True)):
                out_dir = os.path.join(args.work, f"duckdb-out-{n}")
                shutil.rmtree(out_dir, ignore_errors=True)
                try:
                    t, rss, out = common.run_measured(
                        [duck, "-csv", "-c", duckdb_sql(data, out_dir, total_threads, tuned,
                                                         args.duckdb_memory_limit)],
                        timeout=args.duckdb_timeout, check=False)
                except common.Failed as e:
                    if "Out of Memory" not in e.output:
                        sys.exit(f"{label} failed:\n{e}")
                    rows[label].append(("oom", 0))
                    shutil.rmtree(out_dir, ignore_errors=True)
                    continue
                if t is not None:
                    got = common.rows(out)[0][0]
                    if got != expected:
                        sys.exit(f"{label} wrote {got} of {expected} events")
                rows[label].append((t, rss))
                shutil.rmtree(out_dir, ignore_errors=True)
        table.append((n, expected, info, rows))

    print()
    print(f"{'events':>11} {'engine':<13} {'seconds':>22} {'events/s':>10} {'MB/s JSON':>10} {'peak RSS':>10}")
    results = []
    for n, expected, info, rows in table:
        trail_t = [t for t, _ in rows["trail"]]
        trail_rss = max(r for _, r in rows["trail"])
        for label, runs in rows.items():
            if any(t == "oom" for t, _ in runs):
                print(f"{expected:>11,} {label:<13} out of memory at memory_limit = "
                      f"{args.duckdb_memory_limit} ({sum(t == 'oom' for t, _ in runs)} of {len(runs)} runs)")
                results.append({"events": expected, "engine": label, "seconds": None, "oom": True})
                continue
            done = [t for t, _ in runs if t is not None]
            rss = max(r for _, r in runs)
            if len(done) < len(runs):
                print(f"{expected:>11,} {label:<13} did not finish in {args.duckdb_timeout:.0f} s "
                      f"({len(runs) - len(done)} of {len(runs)} runs); peak RSS {mib(rss)}")
                results.append({"events": expected, "engine": label, "seconds": None, "rss": rss})
                continue
            med = statistics.median(done)
            print(f"{expected:>11,} {label:<13} {common.secs(done):>22} {expected / med:>10,.0f} "
                  f"{info['bytes_uncompressed'] / med / 1e6:>10.1f} {mib(rss):>10}")
            results.append({"events": expected, "engine": label, "seconds": done, "rss": rss})
            if label != "trail":
                ratios = [d / t for t, d in zip(trail_t, done)]
                print(f"{'':>11} {'':<13} trail's throughput {common.ratio_text(ratios)} {label}'s; "
                      f"peak RSS {trail_rss / rss:.2f}x")
    print(f"(input: generated ActionTrail delivery trees, gzip JSON arrays; "
          f"{total_threads} threads each)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"trail": tv, "duckdb": dv, "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
