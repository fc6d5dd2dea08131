#!/usr/bin/env python3
"""The canonical queries on a Ballista cluster against the same store queried locally, one run.

    cargo build --release -p trail-cli
    pip install duckdb-cli                    # to probe query values
    python3 benches/cluster_vs_local.py [--events 10000000] [--runs 3] [--threads 2] [--bucket]

The store is the query benchmark's (benches/query_vs_duckdb.py, cached under target/bench-data),
on local disk: the path every process of this one-machine cluster sees. With --bucket, its files
are hard-linked into an s3s-fs server on localhost (as benches/bucket_store_queries.py does;
`cargo install s3s-fs@0.14.1 --features binary --root target/s3s`) and every process, local
or on the cluster, reads it as `s3://stores/trail-<N>/`. For each executor count
(1 and 2) the benchmark starts `trail cluster scheduler` and that many `trail cluster executor`
processes on localhost ports, with the same total task slots as the local runs' threads (one
executor: --concurrent-tasks THREADS; two: THREADS/2 each). Each query then runs --runs times as
a fresh `trail sql -c` process, locally (--threads THREADS) and with --cluster, alternating.
Every cluster answer is compared with the local one; a difference stops the benchmark.

On two cores the cluster cannot be faster: the figure is its overhead (planning on the
scheduler, shipping plans and results, shuffles between stages). Printed: medians with
(min-max) per query, and the cluster/local ratio per run as median (min-max).
"""
import argparse
import os
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import query_vs_duckdb as qvd  # noqa: E402
from bucket_vs_local import link_tree, s3s_binary  # noqa: E402


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, what):
    start = time.time()
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.time() - start > 30:
                sys.exit(f"{what} did not start on port {port}")
            time.sleep(0.1)


def start_cluster(trail, executors, slots, work):
    port = free_port()
    procs = [subprocess.Popen([trail, "cluster", "scheduler", "--bind", f"127.0.0.1:{port}"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    wait_port(port, "the scheduler")
    for i in range(executors):
        flight, grpc = free_port(), free_port()
        wd = os.path.join(work, f"executor-{i}")
        os.makedirs(wd, exist_ok=True)
        procs.append(subprocess.Popen(
            [trail, "cluster", "executor", "--scheduler", f"127.0.0.1:{port}",
             "--bind-host", "127.0.0.1", "--external-host", "127.0.0.1",
             "--flight-port", str(flight), "--grpc-port", str(grpc),
             "--concurrent-tasks", str(slots), "--work-dir", wd],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_port(flight, "an executor")
    return f"df://127.0.0.1:{port}", procs


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--executors", default="1,2")
    ap.add_argument("--bucket", action="store_true")
    ap.add_argument("--work", default=os.path.join(common.ROOT, "target", "bench-data"))
    args = ap.parse_args()
    trail = common.trail_binary()
    duck = common.duckdb_binary()
    store = qvd.ensure_store(args.events, args.work)
    qs = qvd.queries(*qvd.probe(duck, store, args.threads))
    counts = [int(n) for n in args.executors.split(",")]
    server = None
    if args.bucket:
        root = os.path.join(args.work, "s3stores")
        name = f"trail-{args.events}"
        link_tree(store, os.path.join(root, "stores", name))
        port = free_port()
        server = subprocess.Popen([s3s_binary(), "--host", "127.0.0.1", "--port", str(port),
                                   "--access-key", "bench", "--secret-key", "benchsecret", root],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(port, "s3s-fs")
        os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="benchsecret",
                          AWS_REGION="us-east-1", TRAIL_ENDPOINT=f"http://127.0.0.1:{port}",
                          TRAIL_CACHE_DIR=os.path.join(args.work, "cluster-bucket-cache"))
        store = f"s3://stores/{name}"
    print(f"{args.events:,} events, store {store}, {args.threads} threads locally and as many "
          f"task slots on the cluster, {args.runs} runs")

    def sql(*extra):
        return common.run_measured([trail, "sql", "--store", store, "--threads",
                                    str(args.threads), "--format", "csv", *extra])

    results = {}
    try:
        measure(trail, store, qs, counts, args, sql, results)
    finally:
        if server:
            server.kill()
    report(qs, counts, results)


def measure(trail, store, qs, counts, args, sql, results):
    for n in counts:
        address, procs = start_cluster(trail, n, max(1, args.threads // n),
                                       os.path.join(args.work, "cluster"))
        try:
            # The first query waits for the executors to register.
            for _ in range(60):
                try:
                    common.run_measured([trail, "sql", "--store", store, "--cluster", address,
                                         "-c", "SELECT 1"], check=False)
                    break
                except common.Failed:
                    time.sleep(0.5)
            for qname, tq, _, _ in qs:
                lt, ct = [], []
                for _ in range(args.runs):
                    t, _, a = sql("-c", tq)
                    lt.append(t)
                    t, _, b = sql("--cluster", address, "-c", tq)
                    ct.append(t)
                    common.same_answer(qname, "local", a, f"cluster of {n}", b)
                r = results.setdefault(qname, {})
                r.setdefault("local", []).extend(lt)
                r[n] = (ct, [c / l for c, l in zip(ct, lt)])
        finally:
            for p in procs:
                p.kill()
                p.wait()


def report(qs, counts, results):
    header = f"{'query':<30} {'local':>22}"
    for n in counts:
        header += f" {f'{n} executor(s)':>22} {'ratio':>18}"
    print("\n" + header)
    for qname, _, _, _ in qs:
        r = results[qname]
        line = f"{qname:<30} {common.ms(r['local']):>22}"
        for n in counts:
            ct, ratios = r[n]
            line += f" {common.ms(ct):>22} {common.ratio_text(ratios):>18}"
        print(line)


if __name__ == "__main__":
    main()
