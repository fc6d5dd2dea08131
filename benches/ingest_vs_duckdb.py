#!/usr/bin/env python3
"""Side-by-side ingest benchmark: `trail ingest` against the DuckDB binary on the same files.

Usage (from the repository root):
    cargo build --release -p trail-cli
    pip install duckdb-cli
    python3 benches/ingest_vs_duckdb.py --events 1000000 [--events 10000000] [--runs 3] \
        [--shapes tree,ndjson,records,array-gz]

For each size it generates (once, cached under --work) an ActionTrail delivery tree with the
project's deterministic generator (with labelled anomalies, so the insight benchmark finds
some), and from it (once, cached) the same events in each input shape (--shapes):

  * tree: the delivery tree itself, small gzip JSON-array files (about 7 events each);
  * ndjson: NDJSON files of about 64 MB (SIEM and log-service exports, concatenated
    deliveries);
  * records: `{"Records": [...]}` files of about 64 MB, plain JSON (CloudTrail's shape);
  * array-gz: JSON-array files of about 64 MB of JSON each, gzip-compressed.

The large files hold the events in delivery order (by day and delivery time across regions).
Then, per shape, it runs --runs times, each engine as a fresh process:

  * trail: `trail ingest --threads D` into an empty store. D decoder threads work beside a
    file reader thread, the writer (dedup, sort) and D encoder threads: 2D + 2 threads in all;
  * DuckDB, default settings: COPY (SELECT ... FROM read_json(..., explicit columns)) TO ...
    (FORMAT parquet, PARTITION_BY (region, eventDate), COMPRESSION zstd), with
    `SET threads = 2D + 2`, the same number of threads;
  * DuckDB, tuned as its documentation recommends for large imports: the same with
    `SET preserve_insertion_order = false` and `SET memory_limit` (--duckdb-memory-limit);
  * DuckDB, default settings with one thread per core (`SET threads = <cores>`): on this
    2-core machine DuckDB was fastest so (ndjson at 1M: 7.9 s with 2 threads, 8.4 s with 4,
    9.1 s with 6), so this row shows it at its best.

Both engines' outputs are counted (trail's summary, DuckDB's Parquet read back) and must hold
every generated event. After each engine's first run, 200 input events (one from each of 200
files of the tree, fixed seed) are read back from its Parquet output with the DuckDB binary and
compared column by column with the input: every declared column, the userIdentity fields, the
JSON columns as parsed JSON, eventTime to the millisecond, the region and date partitions, and
(for trail) the stored record text as parsed JSON. A difference stops the run. Each trail run
prints its files, partitions and what compaction merged. Printed at the end: seconds, events/s
and MB/s of JSON as the median with (min-max), peak RSS (max over runs), and trail's throughput
and RSS relative to each DuckDB row.
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


SHAPES = ["tree", "ndjson", "records", "array-gz"]
SHAPE_BYTES = 64 << 20


def shape_events(tree):
    """The events of a generated delivery tree as JSON texts, in delivery order (by day, then
    the delivery time in the file name, then region)."""
    import gzip
    files = []
    for d, _, fs in os.walk(tree):
        for f in fs:
            if f.endswith(".json.gz"):
                parts = d.split(os.sep)
                # .../<region>/<YYYY>/<MM>/<DD>/<account>_Actiontrail_<region>_<time>_<n>.json.gz
                files.append(((parts[-3], parts[-2], parts[-1], f.split("_")[-2], f), os.path.join(d, f)))
    files.sort()
    for _, path in files:
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            for line in fh:
                line = line.rstrip("\n")
                if line.startswith("["):
                    line = line[1:]
                if line.endswith(",") or line.endswith("]"):
                    line = line[:-1]
                if line:
                    yield line


def make_shape(events, shape, work, tree):
    """The events of `tree` as large files of `shape` (once, cached); returns the folder."""
    if shape == "tree":
        return tree
    import gzip
    out = os.path.join(work, f"shape-{shape}-{events}")
    marker = os.path.join(out, ".complete")
    if os.path.exists(marker):
        return out
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    ext = {"ndjson": ".ndjson", "records": ".json", "array-gz": ".json.gz"}[shape]
    head, sep, tail = {"ndjson": ("", "\n", "\n"), "records": ('{"Records":[', ",\n", "]}\n"),
                       "array-gz": ("[", ",\n", "]\n")}[shape]
    state = {"fh": None, "n": 0, "bytes": 0}

    def close():
        if state["fh"] is not None:
            state["fh"].write(tail)
            state["fh"].close()
            state["fh"] = None

    for text in shape_events(tree):
        if state["fh"] is None or state["bytes"] >= SHAPE_BYTES:
            close()
            state["n"] += 1
            path = os.path.join(out, f"part-{state['n']:04}{ext}")
            state["fh"] = (gzip.open(path, "wt", encoding="utf-8", compresslevel=6)
                           if shape == "array-gz" else open(path, "w", encoding="utf-8"))
            state["fh"].write(head)
            state["bytes"] = 0
        elif state["bytes"]:
            state["fh"].write(sep)
        state["fh"].write(text)
        state["bytes"] += len(text) + 1
    close()
    open(marker, "w").close()
    return out


SAMPLE = 200
STRING_FIELDS = [k for k, v in DUCKDB_COLUMNS.items() if v == "VARCHAR"]
IDENTITY_FIELDS = ["type", "principalId", "accountId", "accessKeyId", "userName"]
JSON_FIELDS = [k for k, v in DUCKDB_COLUMNS.items() if v == "JSON"]


def sample_events(tree, n=SAMPLE, seed=17):
    """`n` events of the delivery tree, one from each of `n` files chosen with a fixed seed:
    the input rows both engines' outputs are checked against."""
    import gzip
    import random
    files = sorted(os.path.join(d, f) for d, _, fs in os.walk(tree)
                   for f in fs if f.endswith(".json.gz"))
    rnd = random.Random(seed)
    out = []
    for path in rnd.sample(files, min(n, len(files))):
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            events = json.load(fh)
        out.append(rnd.choice(events))
    return out


def sample_check(duck, glob, sample, label, with_raw):
    """Read the sampled events back from an engine's Parquet output (with the DuckDB binary)
    and compare every column the benchmark declares, the partition values, and (for trail)
    the stored record text with the input event. Exits on the first difference."""
    from datetime import datetime, timezone
    ids = ", ".join("'" + e["eventId"].replace("'", "''") + "'" for e in sample)
    cols = [f'"{k}"' for k in STRING_FIELDS]
    cols += [f'"userIdentity"."{k}" AS "ui_{k}"' for k in IDENTITY_FIELDS]
    cols += [f'CAST("{k}" AS VARCHAR) AS "{k}"' for k in JSON_FIELDS]
    cols += ['"isGlobal"', 'epoch_ms("eventTime") AS "ms"', '"region"',
             'CAST("eventDate" AS VARCHAR) AS "eventDate"']
    if with_raw:
        cols.append('"raw"')
    sql = (f"SELECT {', '.join(cols)} FROM read_parquet('{glob}', hive_partitioning = true) "
           f"WHERE eventId IN ({ids})")
    _, _, out = common.run_measured([duck, "-json", "-c", sql])
    got = {}
    for r in json.loads(out or "[]"):
        if r["eventId"] in got:
            sys.exit(f"{label}: event {r['eventId']} is stored twice")
        got[r["eventId"]] = r

    def differ(what, want, have):
        sys.exit(f"{label}: event {e['eventId']}: {what} is {have!r}, the input has {want!r}")

    def text(v):
        """A scalar as a VARCHAR column holds it (the event version is a number in the JSON)."""
        return v if v is None or isinstance(v, str) else json.dumps(v)

    for e in sample:
        r = got.get(e["eventId"])
        if r is None:
            sys.exit(f"{label}: event {e['eventId']} of the input is not in the output")
        for k in STRING_FIELDS:
            if r[k] != text(e.get(k)):
                differ(k, e.get(k), r[k])
        ui = e.get("userIdentity") or {}
        for k in IDENTITY_FIELDS:
            if r[f"ui_{k}"] != text(ui.get(k)):
                differ(f"userIdentity.{k}", ui.get(k), r[f"ui_{k}"])
        for k in JSON_FIELDS:
            have = None if r[k] is None else json.loads(r[k])
            if have != e.get(k):
                differ(k, e.get(k), have)
        if r["isGlobal"] != e.get("isGlobal"):
            differ("isGlobal", e.get("isGlobal"), r["isGlobal"])
        t = datetime.strptime(e["eventTime"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
        if r["ms"] != int(t.timestamp() * 1000):
            differ("eventTime (ms)", int(t.timestamp() * 1000), r["ms"])
        if r["region"] != e["acsRegion"]:
            differ("the region partition", e["acsRegion"], r["region"])
        if r["eventDate"] != t.strftime("%Y-%m-%d"):
            differ("the date partition", t.strftime("%Y-%m-%d"), r["eventDate"])
        if with_raw and json.loads(r["raw"]) != e:
            differ("raw", e, r["raw"])
    return len(sample)


def duckdb_source(src, shape, cols):
    """DuckDB's reader for a shape, giving one row per event with the explicit columns."""
    if shape == "tree":
        return f"read_json('{src}/**/*.json.gz', format = 'array', columns = {cols})"
    if shape == "array-gz":
        return f"read_json('{src}/*.json.gz', format = 'array', columns = {cols})"
    if shape == "ndjson":
        return f"read_json('{src}/*.ndjson', format = 'newline_delimited', columns = {cols})"
    # records: one object per file with an array of events
    struct = "STRUCT(" + ", ".join(f'"{k}" {v}' for k, v in DUCKDB_COLUMNS.items()) + ")"
    return (f"(SELECT e.* FROM (SELECT unnest(Records) AS e FROM read_json('{src}/*.json', "
            f"format = 'auto', columns = {{'Records': '{struct}[]'}}, "
            f"maximum_object_size = {4 * SHAPE_BYTES})))")


def duckdb_sql(src, out, threads, tuned, memory_limit, shape="tree"):
    """DuckDB's ingest; `threads` of None is one per core."""
    threads = threads or os.cpu_count() or 1
    cols = "{" + ", ".join(f"'{k}': '{v}'" for k, v in DUCKDB_COLUMNS.items()) + "}"
    settings = f"SET threads = {threads}; SET enable_progress_bar = false; "
    if tuned:
        settings += f"SET preserve_insertion_order = false; SET memory_limit = '{memory_limit}'; "
    return settings + f"""
COPY (
  SELECT *, acsRegion AS region, CAST(eventTime AT TIME ZONE 'UTC' AS DATE) AS eventDate
  FROM {duckdb_source(src, shape, cols)}
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
                    help="trail's --threads (decoder threads); DuckDB gets 2 * this + 2 threads")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--duckdb-timeout", type=float, default=None,
                    help="stop a DuckDB run after this many seconds (reported as a lower bound)")
    ap.add_argument("--duckdb-memory-limit", default="4GB",
                    help="memory_limit of the tuned DuckDB row")
    ap.add_argument("--shapes", default="tree",
                    help=f"input shapes, comma-separated, from {','.join(SHAPES)} (default tree)")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()
    shapes = [x for x in args.shapes.split(",") if x]
    for x in shapes:
        if x not in SHAPES:
            sys.exit(f"unknown shape {x}: use {', '.join(SHAPES)}")
    duck = common.duckdb_binary()
    tv, dv = common.versions(duck)
    total_threads = 2 * args.decoders + 2
    print(f"{tv}\n{dv}\ntrail --threads {args.decoders} ({total_threads} threads in all), "
          f"DuckDB threads = {total_threads} (and {os.cpu_count()}, one per core); {args.runs} runs")
    os.makedirs(args.work, exist_ok=True)
    table = []
    for n, shape in [(n, x) for n in args.events or [1_000_000] for x in shapes]:
        tree, info = generate(n, args.work)
        data = make_shape(n, shape, args.work, tree)
        expected = info["events"]
        rows = {"trail": [], "DuckDB": [], "DuckDB tuned": [], "DuckDB per core": []}
        sample = sample_events(tree)
        checked = {label: 0 for label in rows}
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
            c = summary.get("compaction") or {}
            print(f"{n:,} {shape}: trail {t:.1f} s, {summary['files_written']} files in "
                  f"{summary['partitions_written']} partitions, compaction merged "
                  f"{c.get('rows', 0):,} rows of {c.get('partitions', 0)} partitions in "
                  f"{c.get('secs', 0):.1f} s", flush=True)
            if not checked["trail"]:
                checked["trail"] = sample_check(duck, f"{store}/events/**/*.parquet", sample,
                                                "trail", with_raw=True)
            shutil.rmtree(store, ignore_errors=True)
            for label, tuned, threads in (("DuckDB", False, total_threads),
                                          ("DuckDB tuned", True, total_threads),
                                          ("DuckDB per core", False, None)):
                out_dir = os.path.join(args.work, f"duckdb-out-{n}")
                shutil.rmtree(out_dir, ignore_errors=True)
                try:
                    t, rss, out = common.run_measured(
                        [duck, "-csv", "-c", duckdb_sql(data, out_dir, threads, tuned,
                                                         args.duckdb_memory_limit, shape)],
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
                    if not checked[label]:
                        checked[label] = sample_check(duck, f"{out_dir}/**/*.parquet", sample,
                                                      label, with_raw=False)
                rows[label].append((t, rss))
                shutil.rmtree(out_dir, ignore_errors=True)
        print(f"{n:,} {shape}: input rows compared with each output: "
              + ", ".join(f"{label} {k}" for label, k in checked.items() if k), flush=True)
        table.append((n, shape, expected, info, rows))

    print()
    print(f"{'events':>11} {'shape':<9} {'engine':<15} {'seconds':>22} {'events/s':>10} "
          f"{'MB/s JSON':>10} {'peak RSS':>10}")
    results = []
    for n, shape, expected, info, rows in table:
        trail_t = [t for t, _ in rows["trail"]]
        trail_rss = max(r for _, r in rows["trail"])
        for label, runs in rows.items():
            if any(t == "oom" for t, _ in runs):
                print(f"{expected:>11,} {shape:<9} {label:<15} out of memory at memory_limit = "
                      f"{args.duckdb_memory_limit} ({sum(t == 'oom' for t, _ in runs)} of {len(runs)} runs)")
                results.append({"events": expected, "shape": shape, "engine": label,
                                "seconds": None, "oom": True})
                continue
            done = [t for t, _ in runs if t is not None]
            rss = max(r for _, r in runs)
            if len(done) < len(runs):
                print(f"{expected:>11,} {shape:<9} {label:<15} did not finish in {args.duckdb_timeout:.0f} s "
                      f"({len(runs) - len(done)} of {len(runs)} runs); peak RSS {mib(rss)}")
                results.append({"events": expected, "shape": shape, "engine": label,
                                "seconds": None, "rss": rss})
                continue
            med = statistics.median(done)
            print(f"{expected:>11,} {shape:<9} {label:<15} {common.secs(done):>22} {expected / med:>10,.0f} "
                  f"{info['bytes_uncompressed'] / med / 1e6:>10.1f} {mib(rss):>10}")
            results.append({"events": expected, "shape": shape, "engine": label,
                            "seconds": done, "rss": rss})
            if label != "trail":
                ratios = [d / t for t, d in zip(trail_t, done)]
                print(f"{'':>11} {'':<9} {'':<15} trail's throughput {common.ratio_text(ratios)} {label}'s; "
                      f"peak RSS {trail_rss / rss:.2f}x")
    print(f"(input shapes: {', '.join(shapes)}; the same generated ActionTrail events in each; "
          f"{total_threads} threads each, DuckDB per core {os.cpu_count()})")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"trail": tv, "duckdb": dv, "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
