#!/usr/bin/env python3
"""Side-by-side ingest benchmark: `trail ingest` against DuckDB on the same generated files.

Usage (from the repository root):
    cargo build --release -p trail-cli
    python3 benches/ingest_vs_duckdb.py --events 1000000 [--events 10000000]

For each size it generates (once, cached under --work) an ActionTrail delivery tree with the
project's deterministic generator, then runs, each as a fresh process:
  * trail ingest into an empty store;
  * DuckDB: COPY (SELECT ... FROM read_json(..., explicit columns)) TO ... (FORMAT parquet,
    PARTITION_BY (region, eventDate), COMPRESSION zstd);
and prints events/s, MB/s (uncompressed JSON), peak RSS and trail's speed relative to DuckDB.
"""
import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIL = os.path.join(ROOT, "target", "release", "trail")

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

DUCKDB_SCRIPT = r"""
import duckdb, sys, json
src, out, threads, columns = sys.argv[1], sys.argv[2], int(sys.argv[3]), json.loads(sys.argv[4])
con = duckdb.connect()
con.execute(f"SET threads = {threads}")
con.execute("SET enable_progress_bar = false")
cols = "{" + ", ".join(f"'{k}': '{v}'" for k, v in columns.items()) + "}"
con.execute(f'''
COPY (
  SELECT *, acsRegion AS region, CAST(eventTime AT TIME ZONE 'UTC' AS DATE) AS eventDate
  FROM read_json('{src}/**/*.json.gz', format = 'array', columns = {cols})
) TO '{out}' (FORMAT parquet, PARTITION_BY (region, eventDate), COMPRESSION zstd)
''')
print(con.execute(f"SELECT count(*) FROM read_parquet('{out}/**/*.parquet')").fetchone()[0])
"""


def run_measured(cmd, timeout=None):
    """Run a command; return (seconds, peak RSS in bytes of that child, stdout).
    With `timeout`, a run still going after that many seconds is killed and (None, RSS, "")
    is returned: the engine did not finish within the time given."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL if timeout else subprocess.PIPE,
                            stderr=subprocess.DEVNULL if timeout else subprocess.PIPE)
    if timeout:
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() - start > timeout:
                proc.kill()
                _, status, usage = os.wait4(proc.pid, 0)
                return None, usage.ru_maxrss * 1024, ""
            time.sleep(0.5)
        elapsed = time.perf_counter() - start
        if os.waitstatus_to_exitcode(status) != 0:
            sys.exit(f"{cmd[0]} failed")
        return elapsed, usage.ru_maxrss * 1024, ""
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    out = proc.stdout.read().decode()
    err = proc.stderr.read().decode()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in (0,):
        sys.exit(f"{cmd[0]} failed ({proc.returncode}):\n{out}\n{err}")
    return elapsed, usage.ru_maxrss * 1024, out


def generate(events, work):
    """Generate (once) the delivery tree for `events` events; returns (dir, stats)."""
    data = os.path.join(work, f"gen-{events}")
    marker = os.path.join(data, ".complete.json")
    if os.path.exists(marker):
        with open(marker) as f:
            return data, json.load(f)
    shutil.rmtree(data, ignore_errors=True)
    _, _, out = run_measured([TRAIL, "gen", "--json", "--out", data, "--events", str(events)])
    stats = json.loads(out)
    stats["compressed_bytes"] = sum(
        os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(data) for f in fs)
    with open(marker, "w") as f:
        json.dump(stats, f)
    return data, stats


def mib(n):
    return f"{n / (1 << 20):.0f} MiB"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, action="append", help="sizes to run (repeatable)")
    ap.add_argument("--work", default=os.path.join(ROOT, "target", "bench-data"))
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--duckdb-timeout", type=float, default=None,
                    help="stop DuckDB after this many seconds and report a lower bound")
    args = ap.parse_args()
    sizes = args.events or [1_000_000]
    if not os.path.exists(TRAIL):
        sys.exit("build first: cargo build --release -p trail-cli")
    os.makedirs(args.work, exist_ok=True)
    rows = []
    for n in sizes:
        data, info = generate(n, args.work)
        gz_bytes = info["compressed_bytes"]
        json_bytes = info["bytes_uncompressed"]
        store = os.path.join(args.work, f"trail-store-{n}")
        shutil.rmtree(store, ignore_errors=True)
        t_trail, rss_trail, out = run_measured(
            [TRAIL, "ingest", "--store", store, "--json", "--threads", str(args.threads), data])
        summary = json.loads(out)
        assert summary["ingested"] == n, summary
        duck_out = os.path.join(args.work, f"duckdb-out-{n}")
        shutil.rmtree(duck_out, ignore_errors=True)
        t_duck, rss_duck, out = run_measured(
            [sys.executable, "-c", DUCKDB_SCRIPT, data, duck_out, str(args.threads),
             json.dumps(DUCKDB_COLUMNS)], timeout=args.duckdb_timeout)
        if t_duck is not None and not args.duckdb_timeout:
            assert int(out.strip()) == n, out
        rows.append((n, t_trail, rss_trail, t_duck, rss_duck, json_bytes, gz_bytes))
    print()
    print(f"{'events':>10} {'engine':>7} {'seconds':>8} {'events/s':>10} {'MB/s json':>10} {'peak RSS':>9}")
    for n, t_trail, rss_trail, t_duck, rss_duck, json_bytes, gz_bytes in rows:
        print(f"{n:>10} {'trail':>7} {t_trail:>8.2f} {n / t_trail:>10.0f} "
              f"{json_bytes / t_trail / 1e6:>10.1f} {mib(rss_trail):>9}")
        if t_duck is None:
            print(f"{n:>10} {'duckdb':>7} did not finish in {args.duckdb_timeout:.0f} s "
                  f"(peak RSS so far {mib(rss_duck)})")
            print(f"{n:>10} {'ratio':>7} trail is more than {args.duckdb_timeout / t_trail:.2f}x "
                  f"DuckDB's throughput")
            continue
        print(f"{n:>10} {'duckdb':>7} {t_duck:>8.2f} {n / t_duck:>10.0f} "
              f"{json_bytes / t_duck / 1e6:>10.1f} {mib(rss_duck):>9}")
        print(f"{n:>10} {'ratio':>7} trail is {t_duck / t_trail:.2f}x DuckDB's throughput; "
              f"peak RSS {rss_trail / rss_duck:.2f}x DuckDB's")
    print(f"(input: generated ActionTrail delivery trees, gzip; {args.threads} threads each)")


if __name__ == "__main__":
    main()
