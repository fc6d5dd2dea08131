#!/usr/bin/env python3
"""IpInsight benchmark: `trail insight ip` against the same rules in DuckDB SQL, same Parquet.

Usage (from the repository root):
    cargo build --release -p trail-cli
    pip install duckdb-cli
    python3 benches/insight_vs_duckdb.py --events 1000000 [--events 10000000] [--runs 5]

For each size it reuses (or makes, cached under --work) the store of
benches/query_vs_duckdb.py, whose generated events carry labelled anomalies, and times as fresh
processes, both engines with --threads threads (`trail insight ip --threads N`, DuckDB
`SET threads = N`):

  * full: every day of the store judged (`trail insight ip --backtest --dry-run`);
  * incremental: the last day judged (`--since <last day> --dry-run`).

The DuckDB SQL implements IpInsight's rules (see crates/insight/src/ip.rs): per identity,
source and day, an identity with at least 3 active days and 20 events in the 14 days before
is judged on its own IPs, else on its account's (if the account has that history), else not
at all; a source is unusual when it is an IP address whose /24 (IPv4) or /64 (IPv6) network
the baseline did not use. It returns the unusual (account, principal, IP, day) groups; trail's
insights name the same groups (each insight's identity, address and first day), and the two
sets must be equal or the benchmark stops. trail also reads the flagged operations to build
the insight records (the detail step), which is timed with it.

Printed: times as the median with (min-max), and trail / DuckDB as the median of the per-run
ratios with (min-max); below 1.0, trail is faster.
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

WINDOW = 14
MIN_DAYS = 3
MIN_EVENTS = 20

MACROS = r"""
CREATE MACRO is_v4(ip) AS regexp_full_match(ip, '(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}');
CREATE MACRO is_v6(ip) AS ip LIKE '%:%' AND regexp_full_match(ip, '[0-9A-Fa-f:]+')
  AND len(string_split(ip, ':')) BETWEEN 3 AND 8;
CREATE MACRO v6_head(ip) AS CASE WHEN split_part(ip, '::', 1) = '' THEN []
  ELSE string_split(split_part(ip, '::', 1), ':') END;
CREATE MACRO v6_tail(ip) AS CASE WHEN position('::' IN ip) = 0 OR split_part(ip, '::', 2) = '' THEN []
  ELSE string_split(split_part(ip, '::', 2), ':') END;
CREATE MACRO v6_groups(ip) AS CASE WHEN position('::' IN ip) = 0 THEN string_split(ip, ':')
  ELSE list_concat(v6_head(ip), list_transform(range(8 - len(v6_head(ip)) - len(v6_tail(ip))), lambda x: '0'), v6_tail(ip)) END;
CREATE MACRO net(ip) AS CASE
  WHEN is_v4(ip) THEN regexp_extract(ip, '^(\d+\.\d+\.\d+)\.', 1)
  ELSE array_to_string(list_transform(v6_groups(lower(ip))[1:4], lambda g: ltrim(g, '0')), ':') END;
"""


def duck_sql(glob, since, until):
    return MACROS + f"""
WITH g AS (
  SELECT coalesce(userIdentity.accountId, recipientAccountId, '') AS account,
         coalesce(userIdentity.principalId, userIdentity.accessKeyId, userIdentity.userName, '') AS principal,
         coalesce(sourceIpAddress, '') AS ip, eventDate AS day, count(*) AS n
  FROM read_parquet('{glob}', hive_partitioning = true)
  WHERE eventDate >= DATE '{since}' - INTERVAL {WINDOW} DAY AND eventDate <= DATE '{until}'
  GROUP BY ALL
), ipg AS (
  SELECT *, net(trim(ip)) AS net FROM g WHERE is_v4(trim(ip)) OR is_v6(trim(ip))
), per_identity AS (
  SELECT account, principal, day, sum(n) AS n FROM g GROUP BY ALL
), per_account AS (
  SELECT account, day, sum(n) AS n FROM g GROUP BY ALL
), judged AS (
  SELECT j.*,
    (SELECT count(*) >= {MIN_DAYS} AND coalesce(sum(h.n), 0) >= {MIN_EVENTS} FROM per_identity h
      WHERE h.account = j.account AND h.principal = j.principal
        AND h.day >= j.day - INTERVAL {WINDOW} DAY AND h.day < j.day) AS own,
    (SELECT count(*) >= {MIN_DAYS} AND coalesce(sum(h.n), 0) >= {MIN_EVENTS} FROM per_account h
      WHERE h.account = j.account
        AND h.day >= j.day - INTERVAL {WINDOW} DAY AND h.day < j.day) AS acct
  FROM ipg j WHERE j.day >= DATE '{since}'
)
SELECT account, principal, ip, day FROM judged j
WHERE (own AND NOT EXISTS (SELECT 1 FROM ipg b WHERE b.account = j.account AND b.principal = j.principal
         AND b.net = j.net AND b.day >= j.day - INTERVAL {WINDOW} DAY AND b.day < j.day))
   OR (NOT own AND acct AND NOT EXISTS (SELECT 1 FROM ipg b WHERE b.account = j.account
         AND b.net = j.net AND b.day >= j.day - INTERVAL {WINDOW} DAY AND b.day < j.day))
ORDER BY ALL;
"""


def trail_groups(report):
    """The (account, principal, IP, day) groups trail's insights name."""
    out = set()
    for r in report["records"]:
        if r["insightDetails"]["state"] != "Start":
            continue
        who = r.get("userIdentity") or {}
        principal = who.get("principalId") or who.get("accessKeyId") or who.get("userName") or ""
        out.add((r["recipientAccountId"], principal, r["insightDetails"]["insightObject"],
                 r["eventTime"][:10]))
    return out


def duck_groups(csv_text):
    return {(str(a or ""), str(p or ""), str(ip or ""), str(d)[:10])
            for a, p, ip, d in common.rows(csv_text)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, action="append")
    ap.add_argument("--work", default=os.path.join(common.ROOT, "target", "bench-data"))
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", help="write the results here")
    a = ap.parse_args()
    import query_vs_duckdb as qb
    duck = common.duckdb_binary()
    tv, dv = common.versions(duck)
    print(f"{tv}\n{dv}\n{a.threads} threads each, {a.runs} runs")
    trail = common.trail_binary()
    results = []
    for events in a.events or [1_000_000]:
        store = qb.ensure_store(events, a.work)
        glob = f"{store}/events/**/*.parquet"
        first, last = common.rows(qb.duck_csv(
            duck, f"SELECT min(eventDate), max(eventDate) FROM read_parquet('{glob}', hive_partitioning = true)",
            a.threads))[0]
        first, last = str(first)[:10], str(last)[:10]
        for mode, args, since in (("full run", ["--backtest"], first),
                                  ("incremental day", ["--since", last], last)):
            t_times, d_times, groups = [], [], None
            for _ in range(a.runs):
                t, _, out = common.run_measured(
                    [trail, "insight", "ip", "--store", store, "--threads", str(a.threads),
                     "--dry-run", "--json", *args])
                report = json.loads(out)
                d, _, dout = common.run_measured(
                    [duck, "-csv", "-c", f"SET threads = {a.threads}; " + duck_sql(glob, since, last)])
                tg, dg = trail_groups(report), duck_groups(dout)
                if tg != dg:
                    sys.exit(f"{events} {mode}: the engines disagree: trail only {sorted(tg - dg)[:5]}, "
                             f"DuckDB only {sorted(dg - tg)[:5]}")
                t_times.append(t)
                d_times.append(d)
                groups = len(tg)
                insights = report["insights"]
            ratios = [x / y for x, y in zip(t_times, d_times)]
            r = {"events": events, "mode": mode, "trail_s": t_times, "duckdb_s": d_times,
                 "unusual_groups": groups, "insights": insights}
            results.append(r)
            print(f"{events:>12,} events {mode:<16} trail {common.secs(t_times):>20}  "
                  f"DuckDB {common.secs(d_times):>20}  ratio {common.ratio_text(ratios):>18}  "
                  f"({groups} unusual groups, {insights} insights, same in both)")
            sys.stdout.flush()
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"trail": tv, "duckdb": dv, "results": results}, f, indent=2)


if __name__ == "__main__":
    main()
