#!/usr/bin/env python3
"""IpInsight benchmark: `trail insight ip` against the equivalent DuckDB SQL on the same Parquet.

Usage (from the repository root):
    cargo build --release -p trail-cli
    pip install duckdb
    python3 benches/insight_vs_duckdb.py --events 1000000 [--events 10000000]

For each size it reuses (or makes, cached under --work) the generated store of
benches/query_vs_duckdb.py and times, as fresh processes, best of --runs:

  * full: `trail insight ip --backtest --dry-run` judging every day of the store;
  * incremental: `trail insight ip --since <last day> --dry-run` judging one new day;
  * DuckDB: the same judgement in SQL over read_parquet(..., hive_partitioning = true): per
    (identity, IP, day) groups, each identity's history over the 14 days before a day,
    then the anti-join of a day's groups against the IPs and /24 networks of that history.
    (trail does more: the account fallback for identities with little history, and reading
    the flagged operations to build the insight records.)

DuckDB uses --threads (2); trail uses every core of the machine (2 here). The ratio printed is trail time / DuckDB time (below 1.0: trail faster).
"""
import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIL = os.path.join(ROOT, "target", "release", "trail")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

WINDOW = 14
MIN_DAYS = 3
MIN_EVENTS = 20


def duck_sql(glob, since, until):
    return f"""
WITH g AS (
  SELECT coalesce(userIdentity.accountId, recipientAccountId, '') AS account,
         coalesce(userIdentity.principalId, userIdentity.accessKeyId, userIdentity.userName, '') AS principal,
         coalesce(sourceIpAddress, '') AS ip, eventDate AS day, count(*) AS n
  FROM read_parquet('{glob}', hive_partitioning = true)
  WHERE eventDate >= DATE '{since}' - INTERVAL {WINDOW} DAY AND eventDate <= DATE '{until}'
  GROUP BY ALL
), ipg AS (
  SELECT *, CASE WHEN ip LIKE '%:%' THEN ip ELSE regexp_extract(ip, '^(\\d+\\.\\d+\\.\\d+)\\.\\d+$', 1) END AS net
  FROM g WHERE regexp_matches(ip, '^\\d+\\.\\d+\\.\\d+\\.\\d+$') OR ip LIKE '%:%:%'
), days AS (
  SELECT account, principal, day, sum(n) AS n FROM g GROUP BY ALL
), judged AS (
  SELECT j.* FROM ipg j
  WHERE j.day >= DATE '{since}'
    AND (SELECT count(*) >= {MIN_DAYS} AND coalesce(sum(h.n), 0) >= {MIN_EVENTS} FROM days h
         WHERE h.account = j.account AND h.principal = j.principal
           AND h.day >= j.day - INTERVAL {WINDOW} DAY AND h.day < j.day)
)
SELECT count(*) AS groups, coalesce(sum(n), 0) AS events FROM judged j
WHERE NOT EXISTS (SELECT 1 FROM ipg b WHERE b.account = j.account AND b.principal = j.principal
                  AND b.net = j.net AND b.day >= j.day - INTERVAL {WINDOW} DAY AND b.day < j.day)
"""


def best(cmd, runs):
    times, out = [], None
    for _ in range(runs):
        t = time.perf_counter()
        p = subprocess.run(cmd, capture_output=True, text=True)
        times.append(time.perf_counter() - t)
        if p.returncode != 0:
            sys.exit(f"{cmd[:4]} failed: {p.stderr}")
        out = p.stdout
    return min(times), out


def duck(glob, since, until, runs, threads):
    import duckdb
    times, row = [], None
    for _ in range(runs):
        t = time.perf_counter()
        con = duckdb.connect()
        con.execute(f"SET threads = {threads}")
        row = con.execute(duck_sql(glob, since, until)).fetchone()
        con.close()
        times.append(time.perf_counter() - t)
    return min(times), row


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, action="append")
    ap.add_argument("--work", default=os.path.join(ROOT, "target", "bench-data"))
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", help="write results here")
    a = ap.parse_args()
    import query_vs_duckdb as qb
    results = []
    for events in a.events or [1_000_000]:
        store = qb.ensure_store(events, a.work)
        glob = f"{store}/events/**/*.parquet"
        import duckdb
        first, last = duckdb.connect().execute(
            f"SELECT min(eventDate), max(eventDate) FROM read_parquet('{glob}', hive_partitioning = true)"
        ).fetchone()
        full_t, full_out = best([TRAIL, "--store", store, "insight", "ip", "--backtest", "--dry-run", "--json"], a.runs)
        inc_t, inc_out = best([TRAIL, "--store", store, "insight", "ip", "--since", str(last), "--dry-run", "--json"], a.runs)
        dfull_t, drow = duck(glob, first, last, a.runs, a.threads)
        dinc_t, drow_inc = duck(glob, last, last, a.runs, a.threads)
        full, inc = json.loads(full_out), json.loads(inc_out)
        r = {
            "events": events,
            "full": {"trail_s": round(full_t, 3), "duckdb_s": round(dfull_t, 3), "ratio": round(full_t / dfull_t, 2),
                     "trail_insights": full["insights"], "trail_unusual_events": full["counts"]["unusual"],
                     "duckdb_unusual_groups": drow[0], "duckdb_unusual_events": int(drow[1])},
            "incremental_day": {"trail_s": round(inc_t, 3), "duckdb_s": round(dinc_t, 3), "ratio": round(inc_t / dinc_t, 2),
                                "trail_insights": inc["insights"], "duckdb_unusual_groups": drow_inc[0]},
        }
        results.append(r)
        print(f"{events:>10,} events  full run:        trail {full_t:6.2f} s  DuckDB {dfull_t:6.2f} s  "
              f"ratio {full_t / dfull_t:5.2f}  ({full['insights']} insights; unusual events trail "
              f"{full['counts']['unusual']}, DuckDB {int(drow[1])})")
        print(f"{events:>10,} events  incremental day: trail {inc_t:6.2f} s  DuckDB {dinc_t:6.2f} s  "
              f"ratio {inc_t / dinc_t:5.2f}  ({inc['insights']} insights)")
        sys.stdout.flush()
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
