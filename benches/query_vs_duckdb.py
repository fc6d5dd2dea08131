#!/usr/bin/env python3
"""Side-by-side query benchmark: `trail sql` against the DuckDB binary on the same Parquet store.

Usage (from the repository root):
    cargo build --release -p trail-cli
    pip install duckdb-cli
    python3 benches/query_vs_duckdb.py --events 1000000 [--events 10000000] [--runs 5]
        [--shape tree|ndjson|records|array-gz]

For each size it generates and ingests (once, cached under --work, shared with the other
benchmarks) a store with `trail` from the generator's delivery tree (--shape: from the same
events in another input shape of benches/ingest_vs_duckdb.py, e.g. ndjson, whose days do not
fit the ingest's buffer, so its partitions are cut into several row groups), then times the canonical queries, each engine with the same
number of threads (--threads, set explicitly on both: `trail sql --threads N`, DuckDB
`SET threads = N`):

  * cold: each query as a fresh process, `trail sql -c` against the DuckDB binary (`duckdb
    -csv -c`, over read_parquet(..., hive_partitioning = true)), the two alternating run by run;
  * warm: every query --runs times in one long-lived process of each engine (`trail sql -f`
    with --timing; the DuckDB binary reading a script with `.timer on`).

Every run's full result is compared between the engines (sorted, values normalized), cold and
warm; a difference stops the benchmark. Queries bounded by `eventTime` at UTC midnight, which
trail turns into day filters by itself, also run on DuckDB with the equivalent `eventDate`
filter written out; the ratio is taken against the faster of DuckDB's two forms.

Printed: each time as the median with (min-max) over the runs, and the ratio trail / DuckDB
(below 1.0: trail is faster) as the median of the per-run ratios with their (min-max).
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402


def ensure_store(events, work, threads=2, shape="tree"):
    """Generate and ingest (once) a store of `events` events (with labelled anomalies, so
    the insight benchmark finds something), from input files of `shape`; returns its path."""
    import ingest_vs_duckdb as ing
    name = f"trail-store-{events}" if shape == "tree" else f"trail-store-{shape}-{events}"
    store = os.path.join(work, name)
    marker = os.path.join(store, ".bench-complete")
    if os.path.exists(marker):
        return store
    data, _ = ing.generate(events, work)
    data = ing.make_shape(events, shape, work, data)
    common.subprocess.run(["rm", "-rf", store], check=True)
    common.run_measured([common.trail_binary(), "ingest", "-q", "--threads", str(threads),
                         "--store", store, data])
    open(marker, "w").close()
    return store


def duck_csv(duck, sql, threads):
    _, _, out = common.run_measured([duck, "-csv", "-c", f"SET threads = {threads}; {sql}"])
    return out


def probe(duck, store, threads):
    """Real values from the store: a busy day, a rare source IP, an eventId, the last day."""
    src = f"read_parquet('{store}/events/**/*.parquet', hive_partitioning = true)"
    one = lambda sql: common.rows(duck_csv(duck, sql, threads))[0][0]  # noqa: E731
    day = one(f"SELECT eventDate FROM {src} GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1")
    ip = one(f"SELECT sourceIpAddress FROM {src} WHERE sourceIpAddress LIKE '%.%' "
             "GROUP BY 1 ORDER BY count(*), 1 LIMIT 1 OFFSET 10")
    eid = one(f"SELECT eventId FROM {src} ORDER BY eventId LIMIT 1 OFFSET 777")
    last = one(f"SELECT max(eventDate) FROM {src}")
    user = one(f"SELECT userIdentity.userName FROM {src} WHERE eventDate = DATE '{str(day)[:10]}' "
               "AND userIdentity.userName IS NOT NULL GROUP BY 1 ORDER BY count(*), 1 LIMIT 1 OFFSET 10")
    return str(day)[:10], ip, eid, str(last)[:10], user


def queries(day, ip, eid, last, user):
    """(name, trail SQL, DuckDB SQL as written, DuckDB SQL with eventDate filters or None).
    The SQL is the same text for both engines but for the JSON function's name."""
    q = [
        ("top event names",
         "SELECT eventName, count(*) AS n FROM events GROUP BY eventName ORDER BY n DESC, eventName LIMIT 10",
         None),
        ("errors by user, one day",
         "SELECT userIdentity.userName AS u, errorCode, count(*) AS n FROM events "
         f"WHERE eventTime >= TIMESTAMP '{day} 00:00:00' AND eventTime < TIMESTAMP '{day} 00:00:00' + INTERVAL '1 day' "
         "AND errorCode IS NOT NULL GROUP BY 1, 2 ORDER BY n DESC, u, errorCode LIMIT 20",
         "SELECT userIdentity.userName AS u, errorCode, count(*) AS n FROM events "
         f"WHERE eventDate = DATE '{day}' "
         "AND errorCode IS NOT NULL GROUP BY 1, 2 ORDER BY n DESC, u, errorCode LIMIT 20"),
        ("one user's day",
         "SELECT eventTime, eventName, sourceIpAddress FROM events "
         f"WHERE userIdentity.userName = '{user}' AND eventTime >= TIMESTAMP '{day} 00:00:00' "
         f"AND eventTime < TIMESTAMP '{day} 00:00:00' + INTERVAL '1 day' "
         "ORDER BY eventTime, eventName, sourceIpAddress",
         "SELECT eventTime, eventName, sourceIpAddress FROM events "
         f"WHERE userIdentity.userName = '{user}' AND eventDate = DATE '{day}' "
         "ORDER BY eventTime, eventName, sourceIpAddress"),
        ("events from one IP",
         "SELECT eventTime, eventName, userIdentity.userName AS u FROM events "
         f"WHERE sourceIpAddress = '{ip}' ORDER BY eventTime, eventName",
         None),
        ("console sign-in without MFA",
         "SELECT eventTime, userIdentity.userName AS u, sourceIpAddress FROM events "
         "WHERE eventName = 'ConsoleSignin' AND errorCode IS NULL "
         "AND JSONGET(additionalEventData, 'MFAUsed') = 'false' ORDER BY eventTime, u",
         None),
        ("distinct IPs per user",
         "SELECT userIdentity.userName AS u, count(DISTINCT sourceIpAddress) AS ips FROM events "
         "GROUP BY 1 ORDER BY ips DESC, u LIMIT 20",
         None),
        ("unusual-IP anti-join",
         "WITH base AS (SELECT DISTINCT userIdentity.userName AS u, sourceIpAddress AS ip FROM events "
         f"WHERE eventTime < TIMESTAMP '{last} 00:00:00'), "
         "recent AS (SELECT userIdentity.userName AS u, sourceIpAddress AS ip FROM events "
         f"WHERE eventTime >= TIMESTAMP '{last} 00:00:00') "
         "SELECT r.u, r.ip, count(*) AS n FROM recent r "
         "WHERE NOT EXISTS (SELECT 1 FROM base b WHERE b.u = r.u AND b.ip = r.ip) "
         "GROUP BY 1, 2 ORDER BY n DESC, r.u, r.ip LIMIT 50",
         "WITH base AS (SELECT DISTINCT userIdentity.userName AS u, sourceIpAddress AS ip FROM events "
         f"WHERE eventDate < DATE '{last}'), "
         "recent AS (SELECT userIdentity.userName AS u, sourceIpAddress AS ip FROM events "
         f"WHERE eventDate >= DATE '{last}') "
         "SELECT r.u, r.ip, count(*) AS n FROM recent r "
         "WHERE NOT EXISTS (SELECT 1 FROM base b WHERE b.u = r.u AND b.ip = r.ip) "
         "GROUP BY 1, 2 ORDER BY n DESC, r.u, r.ip LIMIT 50"),
        ("eventId point lookup",
         f"SELECT eventTime, eventName, sourceIpAddress FROM events WHERE eventId = '{eid}'",
         None),
    ]
    out = []
    for name, sql, by_date in q:
        trail = sql.replace("JSONGET(", "json_get_str(")
        duck = sql.replace("JSONGET(additionalEventData, 'MFAUsed')",
                           "json_extract_string(additionalEventData, '$.MFAUsed')")
        out.append((name, trail, duck, by_date))
    return out


def duck_prelude(store, threads):
    return (f"SET threads = {threads}; SET enable_progress_bar = false; "
            f"CREATE VIEW events AS SELECT * FROM read_parquet('{store}/events/**/*.parquet', "
            "hive_partitioning = true); ")


def bench(events, work, runs, threads, duck, shape):
    store = ensure_store(events, work, shape=shape)
    day, ip, eid, last, user = probe(duck, store, threads)
    trail = common.trail_binary()
    qs = queries(day, ip, eid, last, user)
    print(f"\n== {events:,} events: {store} (day {day}, ip {ip}, eventId {eid}, last day {last}, "
          f"user {user}) ==")
    results = []
    # Cold: fresh processes, trail and DuckDB alternating.
    for name, tq, dq, dq_date in qs:
        t_times, d_times, dd_times = [], [], []
        answer = None
        for _ in range(runs):
            t, _, tout = common.run_measured(
                [trail, "sql", "--store", store, "--threads", str(threads), "--format", "csv", "-c", tq])
            d, _, dout = common.run_measured([duck, "-csv", "-c", duck_prelude(store, threads) + dq])
            n = common.same_answer(name, "trail", tout, "DuckDB", dout)
            t_times.append(t)
            d_times.append(d)
            if dq_date:
                dd, _, ddout = common.run_measured(
                    [duck, "-csv", "-c", duck_prelude(store, threads) + dq_date])
                common.same_answer(name, "trail", tout, "DuckDB (eventDate)", ddout)
                dd_times.append(dd)
            answer = n
        results.append(summary(name, "cold", t_times, d_times, dd_times, answer))
    # Warm: one process of each engine runs every query --runs times.
    script = "".join(f"{tq};\n" * runs for _, tq, _, _ in qs)
    path = os.path.join(work, f"warm-{events}.sql")
    with open(path, "w") as f:
        f.write(script)
    _, _, out = common.run_measured([trail, "sql", "--store", store, "--threads", str(threads),
                                     "--format", "csv", "--timing", "-f", path])
    trail_stmts = common.split_trail_script_output(out)
    duck_script = ".timer on\n" + duck_prelude(store, threads).replace("; ", ";\n") + "\n"
    for _, _, dq, dq_date in qs:
        duck_script += f"{dq};\n" * runs
        if dq_date:
            duck_script += f"{dq_date};\n" * runs
    _, _, dout = common.run_measured([duck, "-csv"], stdin=duck_script)
    duck_stmts = common.split_duckdb_timer_output(dout)[3:]  # the SET, SET, CREATE VIEW
    if len(trail_stmts) != runs * len(qs):
        sys.exit(f"expected {runs * len(qs)} results from trail, got {len(trail_stmts)}")
    k = 0
    for i, (name, _, _, dq_date) in enumerate(qs):
        t_part = trail_stmts[i * runs:(i + 1) * runs]
        d_part = duck_stmts[k:k + runs]
        k += runs
        dd_part = []
        if dq_date:
            dd_part = duck_stmts[k:k + runs]
            k += runs
        for (tcsv, _), (dcsv, _) in zip(t_part, d_part):
            common.same_answer(name + " (warm)", "trail", tcsv, "DuckDB", dcsv)
        for (tcsv, _), (dcsv, _) in zip(t_part, dd_part):
            common.same_answer(name + " (warm)", "trail", tcsv, "DuckDB (eventDate)", dcsv)
        results.append(summary(name, "warm", [t for _, t in t_part], [d for _, d in d_part],
                               [d for _, d in dd_part], None))
    print(f"{'query':<30} {'mode':<5} {'trail':>22} {'DuckDB':>22} {'DuckDB eventDate':>22} {'ratio':>18}")
    for r in results:
        print(f"{r['query']:<30} {r['mode']:<5} {common.ms(r['trail_s']):>22} {common.ms(r['duckdb_s']):>22} "
              f"{common.ms(r['duckdb_date_s']) if r['duckdb_date_s'] else '':>22} {common.ratio_text(r['ratios']):>18}"
              f"{' vs eventDate' if r['against'] == 'eventDate' else ''}")
    return results


def summary(name, mode, t, d, dd, rows):
    """Ratios per run against the faster (by median) of DuckDB's forms."""
    import statistics
    against, base = "same SQL", d
    if dd and statistics.median(dd) < statistics.median(d):
        against, base = "eventDate", dd
    return {"query": name, "mode": mode, "trail_s": t, "duckdb_s": d, "duckdb_date_s": dd,
            "against": against, "ratios": [a / b for a, b in zip(t, base)], "rows": rows}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, action="append")
    ap.add_argument("--work", default=os.path.join(common.ROOT, "target", "bench-data"))
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--shape", default="tree", choices=["tree", "ndjson", "records", "array-gz"],
                    help="input shape the store is ingested from")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()
    duck = common.duckdb_binary()
    tv, dv = common.versions(duck)
    print(f"{tv}\n{dv}\n{args.threads} threads each, {args.runs} runs")
    os.makedirs(args.work, exist_ok=True)
    out = {"trail": tv, "duckdb": dv, "threads": args.threads, "runs": args.runs, "sizes": {}}
    for n in args.events or [1_000_000]:
        out["sizes"][n] = bench(n, args.work, args.runs, args.threads, duck, args.shape)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
