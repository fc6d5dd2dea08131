#!/usr/bin/env python3
"""The canonical queries on a store in a bucket against the same store on local disk, one run.

    cargo build --release -p trail-cli
    cargo install s3s-fs@0.14.1 --features binary --root target/s3s   # or set S3S_FS
    pip install duckdb-cli                                            # to probe query values
    python3 benches/bucket_store_queries.py [--events 1000000] [--runs 5] [--threads 2]

The store is the query benchmark's (benches/query_vs_duckdb.py, cached under target/bench-data).
Its files are hard-linked into the root of an s3s-fs server on localhost, so the bucket holds
the very same objects, and `trail` reads it as `s3://stores/trail-<N>/` through object_store's
S3 client (a store copied into a bucket reads as its manifest).

  * cold: each query as a fresh `trail sql -c` process, local and bucket alternating, the
    bucket run with an empty local file cache (every file it reads is fetched);
  * cached: the same, the bucket run with the files already in the local file cache (what a
    second process sees);
  * warm: every query --runs times in one `trail sql -f --timing` process per store (the
    footers are cached after the first run).

The OS page cache is warm for the local store (the server reads from it too).

Every run's result is compared between the two stores; a difference stops the benchmark. One
more cold run of each query goes through a counting proxy, to show the requests a query makes
(a LIST of the manifest's versions, never of the data folders; GETs of footers and columns).

Printed: medians with (min-max) per query and mode, the bucket/local ratio per run as median
(min-max), and the requests per query.
"""
import argparse
import json
import os
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import query_vs_duckdb as qvd  # noqa: E402
from bucket_vs_local import PROXY, cpu_seconds, link_tree, s3s_binary  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--work", default=os.path.join(common.ROOT, "target", "bench-data"))
    args = ap.parse_args()
    trail = common.trail_binary()
    duck = common.duckdb_binary()
    store = qvd.ensure_store(args.events, args.work)
    qs = qvd.queries(*qvd.probe(duck, store, args.threads))
    root = os.path.join(args.work, "s3stores")
    name = f"trail-{args.events}"
    files = link_tree(store, os.path.join(root, "stores", name))
    url = f"s3://stores/{name}"
    port = 18015
    server = subprocess.Popen([s3s_binary(), "--host", "127.0.0.1", "--port", str(port),
                               "--access-key", "bench", "--secret-key", "benchsecret", root],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)
    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="benchsecret",
                      AWS_REGION="us-east-1", TRAIL_ENDPOINT=f"http://127.0.0.1:{port}")
    print(f"{common.versions(duck)[0]}\n{args.events:,} events, {len(files)} objects, "
          f"{args.threads} threads, {args.runs} runs; store {store} and {url}")

    def sql(where, *rest):
        return common.run_measured([trail, "sql", "--store", where, "--threads",
                                    str(args.threads), "--format", "csv", *rest])

    cache = os.path.join(args.work, "bucket-cache")
    os.environ["TRAIL_CACHE_DIR"] = cache
    results = []
    try:
        for mode in ("cold", "cached"):
            for qname, tq, _, _ in qs:
                lt, bt = [], []
                cpu0 = cpu_seconds(server.pid)
                for _ in range(args.runs):
                    t, _, a = sql(store, "-c", tq)
                    lt.append(t)
                    if mode == "cold":
                        subprocess.run(["rm", "-rf", cache], check=True)
                    t, _, b = sql(url, "-c", tq)
                    bt.append(t)
                    common.same_answer(qname, "local", a, "bucket", b)
                cpu = (cpu_seconds(server.pid) - cpu0) / args.runs
                results.append((qname, mode, lt, bt, cpu))
        subprocess.run(["rm", "-rf", cache], check=True)
        script = "".join(f"{tq};\n" * args.runs for _, tq, _, _ in qs)
        path = os.path.join(args.work, f"bucket-warm-{args.events}.sql")
        with open(path, "w") as f:
            f.write(script)
        _, _, lout = sql(store, "--timing", "-f", path)
        _, _, bout = sql(url, "--timing", "-f", path)
        ls = common.split_trail_script_output(lout)
        bs = common.split_trail_script_output(bout)
        for i, (qname, _, _, _) in enumerate(qs):
            lp = ls[i * args.runs:(i + 1) * args.runs]
            bp = bs[i * args.runs:(i + 1) * args.runs]
            for (a, _), (b, _) in zip(lp, bp):
                common.same_answer(qname + " (warm)", "local", a, "bucket", b)
            results.append((qname, "warm", [t for _, t in lp], [t for _, t in bp], None))
        # The requests of one cold run of each query (an empty cache), through the counting
        # proxy.
        proxy = subprocess.Popen([sys.executable, PROXY, "--upstream", f"127.0.0.1:{port}"],
                                 stdout=subprocess.PIPE, text=True)
        pport = int(proxy.stdout.readline())
        requests = []
        stats = f"http://127.0.0.1:{pport}/__stats"
        before = json.load(urllib.request.urlopen(stats))
        os.environ["TRAIL_ENDPOINT"] = f"http://127.0.0.1:{pport}"
        for qname, tq, _, _ in qs:
            subprocess.run(["rm", "-rf", cache], check=True)
            sql(url, "-c", tq)
            after = json.load(urllib.request.urlopen(stats))
            requests.append({k: after[k] - before[k] for k in ("LIST", "GET", "HEAD")})
            before = after
        proxy.kill()
    finally:
        server.kill()
        subprocess.run(["rm", "-rf", cache], check=True)

    print(f"\n{'query':<30} {'mode':<5} {'local':>22} {'bucket':>22} {'bucket/local':>18} "
          f"{'server CPU':>10}")
    for qname, mode, lt, bt, cpu in results:
        ratios = [b / a for a, b in zip(lt, bt)]
        print(f"{qname:<30} {mode:<5} {common.ms(lt):>22} {common.ms(bt):>22} "
              f"{common.ratio_text(ratios):>18} {'' if cpu is None else f'{cpu:.2f} s':>10}")
    print(f"\n{'query':<30} {'LIST':>6} {'GET':>6} {'HEAD':>6}   (one cold run, via the proxy)")
    for (qname, _, _, _), r in zip(qs, requests):
        print(f"{qname:<30} {r['LIST']:>6} {r['GET']:>6} {r['HEAD']:>6}")


if __name__ == "__main__":
    main()
