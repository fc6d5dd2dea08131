#!/usr/bin/env python3
"""Side-by-side query benchmark: `trail sql` against DuckDB on the same Parquet store.

Usage (from the repository root):
    cargo build --release -p trail-cli
    pip install duckdb duckdb-cli
    python3 benches/query_vs_duckdb.py --events 1000000 [--events 10000000]

For each size it generates and ingests (once, cached under --work, shared with
benches/ingest_vs_duckdb.py) a store with `trail`, then times the canonical queries:

  * cold: each query as a fresh process, `trail sql -c` against the DuckDB CLI
    (`duckdb -c` over read_parquet(..., hive_partitioning = true)); best of --runs;
  * warm: every query in one long-lived session of each engine (trail: one `trail sql -f`
    process running each query --runs times with --timing; DuckDB: one Python connection);
    best of --runs.

Both engines use 2 threads, read the same files and must return the same number of rows.
The ratio printed is trail time / DuckDB time (below 1.0 means trail is faster).
"""
import argparse
import json
import os
import re
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIL = os.path.join(ROOT, "target", "release", "trail")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def duck_bin():
    for d in os.environ.get("PATH", "").split(os.pathsep):
        p = os.path.join(d, "duckdb")
        if os.path.isfile(p) and os.access(p, os.X_OK):
            return p
    sys.exit("the DuckDB CLI is missing: pip install duckdb-cli")


def ensure_store(events, work):
    """Generate and ingest (once) a store of `events` events; returns its path."""
    import ingest_vs_duckdb as ing  # reuse the generator cache
    store = os.path.join(work, f"trail-store-{events}")
    marker = os.path.join(store, ".bench-complete")
    if os.path.exists(marker):
        return store
    data, _ = ing.generate(events, work)
    subprocess.run(["rm", "-rf", store], check=True)
    subprocess.run([TRAIL, "ingest", "-q", "--threads", "2", "--store", store, data], check=True)
    open(marker, "w").close()
    return store


def probe(store):
    """Pick real values from the store: a busy day, a source IP, an eventId."""
    import duckdb
    con = duckdb.connect()
    glob = f"{store}/events/**/*.parquet"
    day = con.execute(
        f"SELECT eventDate FROM read_parquet('{glob}', hive_partitioning = true) "
        "GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1").fetchone()[0]
    ip, = con.execute(
        f"SELECT sourceIpAddress FROM read_parquet('{glob}') WHERE sourceIpAddress LIKE '%.%' "
        "GROUP BY 1 ORDER BY count(*), 1 LIMIT 1 OFFSET 10").fetchone()
    eid, = con.execute(
        f"SELECT eventId FROM read_parquet('{glob}') ORDER BY eventId LIMIT 1 OFFSET 777").fetchone()
    last, = con.execute(
        f"SELECT max(eventDate) FROM read_parquet('{glob}', hive_partitioning = true)").fetchone()
    return str(day), ip, eid, str(last)


def queries(day, ip, eid, last):
    """(name, SQL) written once; both engines accept it as written."""
    return [
        ("top event names",
         "SELECT eventName, count(*) AS n FROM events GROUP BY eventName ORDER BY n DESC, eventName LIMIT 10"),
        ("errors by user, one day",
         "SELECT userIdentity.userName AS u, errorCode, count(*) AS n FROM events "
         f"WHERE eventTime >= TIMESTAMP '{day} 00:00:00' AND eventTime < TIMESTAMP '{day} 00:00:00' + INTERVAL '1 day' "
         "AND errorCode IS NOT NULL GROUP BY 1, 2 ORDER BY n DESC, u, errorCode LIMIT 20"),
        ("events from one IP",
         "SELECT eventTime, eventName, userIdentity.userName AS u FROM events "
         f"WHERE sourceIpAddress = '{ip}' ORDER BY eventTime, eventName"),
        ("console sign-in without MFA",
         "SELECT eventTime, userIdentity.userName AS u, sourceIpAddress FROM events "
         "WHERE eventName = 'ConsoleSignin' AND errorCode IS NULL "
         "AND json_extract_string(additionalEventData, '$.MFAUsed') = 'false' ORDER BY eventTime, u"),
        ("distinct IPs per user",
         "SELECT userIdentity.userName AS u, count(DISTINCT sourceIpAddress) AS ips FROM events "
         "GROUP BY 1 ORDER BY ips DESC, u LIMIT 20"),
        ("unusual-IP anti-join",
         "WITH base AS (SELECT DISTINCT userIdentity.userName AS u, sourceIpAddress AS ip FROM events "
         f"WHERE eventTime < TIMESTAMP '{last} 00:00:00'), "
         "recent AS (SELECT userIdentity.userName AS u, sourceIpAddress AS ip FROM events "
         f"WHERE eventTime >= TIMESTAMP '{last} 00:00:00') "
         "SELECT r.u, r.ip, count(*) AS n FROM recent r "
         "WHERE NOT EXISTS (SELECT 1 FROM base b WHERE b.u = r.u AND b.ip = r.ip) "
         "GROUP BY 1, 2 ORDER BY n DESC, r.u, r.ip LIMIT 50"),
        ("eventId point lookup",
         f"SELECT eventTime, eventName, sourceIpAddress FROM events WHERE eventId = '{eid}'"),
    ]


def trail_sql(q):
    # trail's JSON functions are json_get_str(col, key) (datafusion-functions-json).
    return re.sub(r"json_extract_string\((\w+), '\$\.(\w+)'\)", r"json_get_str(\1, '\2')", q)


def duck_prelude(store, threads):
    return (f"SET threads = {threads}; SET enable_progress_bar = false; "
            f"CREATE VIEW events AS SELECT * FROM read_parquet('{store}/events/**/*.parquet', "
            "hive_partitioning = true); ")


def timed(cmd):
    start = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if out.returncode != 0:
        sys.exit(f"{cmd[0]} failed:\n{out.stderr}")
    return elapsed, out.stdout


def csv_rows(text):
    lines = [l for l in text.splitlines() if l.strip()]
    return max(0, len(lines) - 1)


def bench(events, work, runs, threads):
    store = ensure_store(events, work)
    day, ip, eid, last = probe(store)
    duck = duck_bin()
    qs = queries(day, ip, eid, last)
    results = []
    print(f"\n== {events:,} events: store {store} (day {day}, ip {ip}, eventId {eid}) ==")
    # Cold: fresh processes.
    for name, q in qs:
        t_best, d_best = float("inf"), float("inf")
        for _ in range(runs):
            t, tout = timed([TRAIL, "--store", store, "sql", "--format", "csv", "-c", trail_sql(q)])
            t_best = min(t_best, t)
            d, dout = timed([duck, "-csv", "-c", duck_prelude(store, threads) + q])
            d_best = min(d_best, d)
        tr, dr = csv_rows(tout), csv_rows(dout)
        if tr != dr:
            sys.exit(f"{name}: trail returned {tr} rows, DuckDB {dr}")
        results.append({"query": name, "mode": "cold", "trail_s": t_best, "duckdb_s": d_best, "rows": tr})
    # Warm: one session each.
    script = "".join(f"{trail_sql(q)};\n" * runs for _, q in qs)
    path = os.path.join(work, f"warm-{events}.sql")
    with open(path, "w") as f:
        f.write(script)
    _, out = timed([TRAIL, "--store", store, "sql", "--format", "csv", "--timing", "-f", path])
    times = [float(m) for m in re.findall(r"^Time: ([0-9.]+)s$", out, re.M)]
    if len(times) != runs * len(qs):
        sys.exit(f"expected {runs * len(qs)} timings from trail, got {len(times)}")
    import duckdb
    con = duckdb.connect()
    for stmt in duck_prelude(store, threads).split(";"):
        if stmt.strip():
            con.execute(stmt)
    for i, (name, q) in enumerate(qs):
        t_best = min(times[i * runs:(i + 1) * runs])
        d_best = float("inf")
        for _ in range(runs):
            start = time.perf_counter()
            con.execute(q).to_arrow_table()
            d_best = min(d_best, time.perf_counter() - start)
        results.append({"query": name, "mode": "warm", "trail_s": t_best, "duckdb_s": d_best})
    print(f"{'query':<30} {'mode':<5} {'trail':>9} {'duckdb':>9} {'ratio':>7}")
    for r in results:
        r["ratio"] = r["trail_s"] / r["duckdb_s"]
        print(f"{r['query']:<30} {r['mode']:<5} {r['trail_s']*1000:8.1f}ms {r['duckdb_s']*1000:8.1f}ms {r['ratio']:6.2f}x")
    return results


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, action="append")
    ap.add_argument("--work", default=os.path.join(ROOT, "target", "bench-data"))
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", help="write results here")
    args = ap.parse_args()
    if not os.path.exists(TRAIL):
        sys.exit("build first: cargo build --release -p trail-cli")
    os.makedirs(args.work, exist_ok=True)
    out = {}
    for n in args.events or [1_000_000]:
        out[n] = bench(n, args.work, args.runs, args.threads)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
