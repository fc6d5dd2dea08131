#!/usr/bin/env python3
"""Data-audit logs side by side: `trail ingest` and `trail audit-logs` against the DuckDB binary.

Usage (from the repository root):
    cargo build --release -p trail-cli
    pip install duckdb-cli
    python3 benches/audit_logs_vs_duckdb.py --logs 1000000 [--runs 3]

It generates (once, cached under --work) --logs data-audit logs with the project's generator
(`trail gen --audit-logs`: DescribeAuditLogs response pages, 50 items per NDJSON line, one gzip
file per account and hour), then, --runs times, each engine as a fresh process:

  * Ingest. trail: `trail ingest --threads D` of the DataAudit tree into an empty store (it
    recognizes the pages, types every field, dedups, sorts by LogTime, writes `audit_logs`
    partitioned by logDate). DuckDB: `COPY` of the same files, `read_json` with every item
    field typed, `unnest(Items)`, the two times converted from milliseconds, to Parquet
    partitioned by logDate (zstd), with `SET threads = D + 2`, the same number of threads.
    DuckDB does not dedup. Both outputs are counted and must hold every log.
  * A filtered page. `trail audit-logs` with filters (a fresh process, the API's response
    shape) against DuckDB over the Parquet files trail wrote (the same data), computing the
    total and the same page in the same order (LogTime, CreationTime newest first, then the
    record's text). The totals and the page's items must be equal, or the run stops.

Printed: median (min-max) seconds, logs/s, peak RSS, and trail's time relative to DuckDB's.
"""
import argparse
import csv
import io
import json
import os
import shutil
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

TEXT = ["UserName", "UserId", "ClientIp", "ClientPort", "ClientUa", "IpType", "InstanceName",
        "InstanceDescription", "DatabaseName", "TableName", "ColumnName", "PackageName",
        "OssObjectKey", "DbType", "ProductCode", "OperateType", "SqlText", "Message", "DataSet",
        "RuleId", "RuleName", "RuleCategory", "WarnLevel", "WarnLevelName", "ModelName",
        "LogSource", "MemberAccount", "InstanceAuditStatus", "RamConsoleLink"]
INTS = ["LogTime", "CreationTime", "ProductId", "EffectRow", "ExecuteTime", "ExecuteStatus"]


def item_struct():
    fields = [f"{k} BIGINT" for k in INTS] + [f"{k} VARCHAR" for k in TEXT] + ["InWhiteList BOOLEAN"]
    return "STRUCT(" + ", ".join(fields) + ")[]"


def generate(logs, work):
    return common.generate_once(os.path.join(work, f"gen-audit-{logs}"),
                                ["--events", "1", "--days", "30", "--audit-logs", str(logs),
                                 "--anomalies", "5"])


def duck_ingest_sql(src, out, threads):
    return f"""SET threads = {threads}; SET enable_progress_bar = false;
COPY (
  SELECT * EXCLUDE (LogTime, CreationTime),
         make_timestamp(LogTime * 1000) AS LogTime, make_timestamp(CreationTime * 1000) AS CreationTime,
         CAST(make_timestamp(LogTime * 1000) AS DATE) AS logDate
  FROM (SELECT unnest(Items, recursive := true)
        FROM read_json('{src}/**/*.ndjson.gz', format = 'newline_delimited',
                       columns = {{'Items': '{item_struct()}'}}))
) TO '{out}' (FORMAT parquet, PARTITION_BY (logDate), COMPRESSION zstd);
SELECT count(*) AS n FROM read_parquet('{out}/**/*.parquet');
"""


# (name, trail audit-logs flags, the same filter in SQL over the Parquet columns)
def pages(user, start_ms, end_ms):
    return [
        ("user, time range and row range, page 2",
         ["--user-name", user, "--start-time", str(start_ms), "--end-time", str(end_ms),
          "--effect-row-range", "in[100 199]", "--page-size", "50", "--current-page", "2"],
         f"UserName = '{user}' AND LogTime >= epoch_ms({start_ms}) "
         f"AND LogTime <= epoch_ms({end_ms}) AND EffectRow BETWEEN 100 AND 199",
         50, 1),
        ("statement text and operation, page 1",
         ["--sql-text", "CUSTOMERS", "--operate-type", "update", "--page-size", "50"],
         "strpos(lower(SqlText), 'customers') > 0 AND lower(OperateType) = 'update'",
         50, 0),
    ]


def duck_page_sql(store, where, size, offset, threads):
    src = f"read_parquet('{store}/audit_logs/**/*.parquet', hive_partitioning = true)"
    return f"""SET threads = {threads}; SET enable_progress_bar = false; SET TimeZone = 'UTC';
SELECT count(*) AS total FROM {src} WHERE {where};
SELECT epoch_ms(LogTime) AS t, UserName, ClientIp, EffectRow, SqlText FROM {src} WHERE {where}
ORDER BY LogTime DESC, CreationTime DESC, raw ASC LIMIT {size} OFFSET {offset * size};
"""


def split_duck(text):
    """Two CSV results one after the other: (total, rows)."""
    lines = text.splitlines()
    total = int(lines[1])
    body = list(csv.reader(io.StringIO("\n".join(lines[3:]))))
    return total, [tuple(r) for r in body if r]


def trail_rows(page):
    return [(str(i["LogTime"]), i["UserName"], i["ClientIp"], str(i["EffectRow"]), i["SqlText"])
            for i in page["Items"]]


def mib(n):
    return f"{n / (1 << 20):,.0f} MiB"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--logs", type=int, default=1_000_000)
    ap.add_argument("--work", default=os.path.join(common.ROOT, "target", "bench-data"))
    ap.add_argument("--decoders", type=int, default=2,
                    help="trail's ingest --threads; DuckDB and trail's queries get this + 2")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()
    duck = common.duckdb_binary()
    tv, dv = common.versions(duck)
    threads = args.decoders + 2
    print(f"{tv}\n{dv}\ntrail ingest --threads {args.decoders} ({threads} threads in all), "
          f"DuckDB threads = {threads}, trail queries --threads {threads}; {args.runs} runs")
    os.makedirs(args.work, exist_ok=True)
    data, info = generate(args.logs, args.work)
    src = os.path.join(data, "DataAudit")
    expected = info["audit_logs"]
    store = os.path.join(args.work, f"audit-store-{args.logs}")
    ingest = {"trail": [], "DuckDB": []}
    for _ in range(args.runs):
        shutil.rmtree(store, ignore_errors=True)
        t, rss, out = common.run_measured([common.trail_binary(), "ingest", "--store", store,
                                           "--json", "--threads", str(args.decoders), src])
        got = json.loads(out)["audit_logs_ingested"]
        if got != expected:
            sys.exit(f"trail ingested {got} of {expected} audit logs")
        ingest["trail"].append((t, rss))
        out_dir = os.path.join(args.work, f"duckdb-audit-out-{args.logs}")
        shutil.rmtree(out_dir, ignore_errors=True)
        t, rss, out = common.run_measured([duck, "-csv", "-c", duck_ingest_sql(src, out_dir, threads)])
        got = common.rows(out)[0][0]
        if got != expected:
            sys.exit(f"DuckDB wrote {got} of {expected} audit logs")
        ingest["DuckDB"].append((t, rss))
        shutil.rmtree(out_dir, ignore_errors=True)

    # The filters' values from the data itself: the busiest user, the middle two weeks.
    probe = common.run_measured([duck, "-csv", "-c", f"""
SELECT UserName, epoch_ms(min(LogTime)) + 7 * 86400000 AS s, epoch_ms(min(LogTime)) + 21 * 86400000 AS e
FROM read_parquet('{store}/audit_logs/**/*.parquet') GROUP BY UserName ORDER BY count(*) DESC, UserName LIMIT 1"""])[2]
    user, start_ms, end_ms = list(csv.reader(io.StringIO(probe)))[1]
    results = {"ingest": {}, "pages": []}
    page_rows = []
    for name, flags, where, size, offset in pages(user, int(start_ms), int(end_ms)):
        tt, dt, checked = [], [], None
        for _ in range(args.runs + 1):  # the first run warms the page cache for both
            t, _, out = common.run_measured([common.trail_binary(), "--store", store, "--threads",
                                             str(threads), "audit-logs", "--output", "json"] + flags)
            page = json.loads(out)
            d, _, dout = common.run_measured([duck, "-csv", "-c",
                                              duck_page_sql(store, where, size, offset, threads)])
            total, rows = split_duck(dout)
            if page["TotalCount"] != total or trail_rows(page) != rows:
                sys.exit(f"{name}: trail and DuckDB disagree: TotalCount {page['TotalCount']} "
                         f"against {total}\n{trail_rows(page)[:3]}\n{rows[:3]}")
            checked = (total, len(rows))
            tt.append(t)
            dt.append(d)
        tt, dt = tt[1:], dt[1:]
        page_rows.append((name, tt, dt, checked))
        results["pages"].append({"name": name, "trail": tt, "duckdb": dt,
                                 "total": checked[0], "items": checked[1]})

    print()
    print(f"ingest of {expected:,} audit logs ({info['audit_log_files']:,} files, "
          f"{info['audit_log_bytes_uncompressed'] / 1e6:,.0f} MB of JSON)")
    print(f"{'engine':<8} {'seconds':>22} {'logs/s':>10} {'peak RSS':>10}")
    for label, runs in ingest.items():
        ts = [t for t, _ in runs]
        rss = max(r for _, r in runs)
        print(f"{label:<8} {common.secs(ts):>22} {expected / statistics.median(ts):>10,.0f} {mib(rss):>10}")
        results["ingest"][label] = {"seconds": ts, "rss": rss}
    ratios = [d / t for (t, _), (d, _) in zip(ingest["trail"], ingest["DuckDB"])]
    print(f"trail's throughput: {common.ratio_text(ratios)} DuckDB's "
          f"(trail also dedups and sorts by LogTime)")
    print()
    print(f"a filtered page, fresh process each (user {user}); answers compared")
    for name, tt, dt, (total, items) in page_rows:
        ratios = [t / d for t, d in zip(tt, dt)]
        print(f"  {name}: {total} match, {items} on the page")
        print(f"    trail {common.ms(tt)}, DuckDB {common.ms(dt)}: trail/DuckDB {common.ratio_text(ratios)}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"trail": tv, "duckdb": dv, **results}, f, indent=1)


if __name__ == "__main__":
    main()
