#!/usr/bin/env python3
"""Ingest from a bucket against ingest from local disk, and incremental sync, in one run.

    cargo build --release -p trail-cli
    cargo install s3s-fs@0.14.1 --features binary --root target/s3s   # or set S3S_FS
    python3 benches/bucket_vs_local.py [--events 1000000] [--runs 3] [--concurrency 32]

The S3-compatible server is s3s-fs (Rust, serves a directory as buckets), so the tree is not
uploaded: the generated delivery tree is hard-linked into the server's root and read both as a
local directory and as `s3://bench/` over HTTP on localhost. Each run, from fresh stores:

1. full ingest from local disk, then from the bucket (answers compared: the same rows);
2. 1% new objects (a second generated tree of two days, put on the tree's last day and the
   day after, as new deliveries arrive) appear in the tree;
3. the incremental run of each (the ledger skips what was read; a bucket lists only the days
   from its last listed day on), answers compared again.

Printed: times (median, min-max), the bucket/local ratio, the server's CPU seconds during the
bucket ingest (is the server the bottleneck?), LIST calls and objects read per run, and, for
one incremental run through a counting proxy, the LIST and GET requests the server really saw.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import ROOT, generate_once, ratio_text, run_measured, secs, trail_binary  # noqa: E402

PROXY = os.path.join(ROOT, "crates", "cli", "tests", "support", "s3_proxy.py")


def s3s_binary():
    path = os.environ.get("S3S_FS") or os.path.join(ROOT, "target", "s3s", "bin", "s3s-fs")
    if not os.path.exists(path):
        sys.exit("s3s-fs is missing: cargo install s3s-fs@0.14.1 --features binary "
                 "--root target/s3s (or set S3S_FS)")
    return path


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def link_tree(src, dst):
    """Hard-link every file of src under dst; returns the files linked (relative paths)."""
    linked = []
    for d, _, files in os.walk(src):
        for f in files:
            if f.startswith("."):
                continue
            s = os.path.join(d, f)
            rel = os.path.relpath(s, src)
            t = os.path.join(dst, rel)
            os.makedirs(os.path.dirname(t), exist_ok=True)
            if not os.path.exists(t):
                os.link(s, t)
            linked.append(rel)
    return linked


def count(store):
    _, _, out = run_measured([trail_binary(), "sql", "--store", store, "--format", "csv", "-c",
                              "SELECT count(*) AS n, count(DISTINCT eventId) AS ids, "
                              "min(eventTime) AS lo, max(eventTime) AS hi FROM events"])
    return out.strip()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--concurrency", type=int, default=128)
    args = ap.parse_args()
    trail = trail_binary()
    data = os.path.join(ROOT, "target", "bench-data")
    tree, gen = generate_once(os.path.join(data, f"gen-{args.events}"),
                              ["--events", str(args.events)])
    extra_events = max(args.events // 100, 100)
    extra, _ = generate_once(os.path.join(data, f"gen-extra-{extra_events}"),
                             ["--events", str(extra_events), "--seed", "4242", "--days", "2"])
    root = os.path.join(data, "s3root")
    bucket_dir = os.path.join(root, "bench")
    base_files = link_tree(tree, bucket_dir)
    extra_dir = tempfile.mkdtemp(prefix="extra-", dir=data)
    # The extra objects arrive as new deliveries do: on the tree's last day and the day after
    # (the generator's first two days are moved there), under names of their own.
    last = max(os.path.join(*p.split(os.sep)[-3:]) for p, _, _ in os.walk(tree)
               if len(p.split(os.sep)) >= 3 and all(x.isdigit() for x in p.split(os.sep)[-3:]))
    y, m, d0 = (int(x) for x in last.split(os.sep))
    import datetime
    last_day = datetime.date(y, m, d0)
    days = {}
    for d, _, files in os.walk(extra):
        for f in files:
            if f.startswith("."):
                continue
            rel = os.path.relpath(os.path.join(d, f), extra)
            parts = rel.split(os.sep)
            day = datetime.date(int(parts[-4]), int(parts[-3]), int(parts[-2]))
            days.setdefault(day, len(days))
            moved = last_day + datetime.timedelta(days=days[day])
            parts[-4:-1] = [f"{moved.year:04d}", f"{moved.month:02d}", f"{moved.day:02d}"]
            rel = os.path.join(*parts)
            t = os.path.join(extra_dir, os.path.dirname(rel), "new-" + f)
            os.makedirs(os.path.dirname(t), exist_ok=True)
            os.link(os.path.join(d, f), t)
    print(f"tree: {len(base_files)} objects, {args.events} events; "
          f"extra: {extra_events} events", flush=True)

    port = 18014
    server = subprocess.Popen([s3s_binary(), "--host", "127.0.0.1", "--port", str(port),
                               "--access-key", "bench", "--secret-key", "benchsecret", root],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)
    env = dict(os.environ, AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="benchsecret",
               AWS_REGION="us-east-1")
    os.environ.update(env)
    endpoint = f"http://127.0.0.1:{port}"
    bucket_args = ["s3://bench/", "--endpoint", endpoint,
                   "--fetch-concurrency", str(args.concurrency)]
    results = {k: [] for k in ("local", "bucket", "local_inc", "bucket_inc", "server_cpu")}
    calls = []
    try:
        for r in range(args.runs):
            extra_files = []
            for d, _, files in os.walk(extra_dir):
                for f in files:
                    extra_files.append(os.path.relpath(os.path.join(d, f), extra_dir))
            for rel in extra_files:
                p = os.path.join(bucket_dir, rel)
                if os.path.exists(p):
                    os.remove(p)
            work = tempfile.mkdtemp(prefix="bucket-bench-", dir=data)
            local, remote = os.path.join(work, "local"), os.path.join(work, "bucket")
            t, _, _ = run_measured([trail, "ingest", "-q", "--store", local, bucket_dir])
            results["local"].append(t)
            cpu0 = cpu_seconds(server.pid)
            t, _, out = run_measured([trail, "ingest", "-q", "--json", "--store", remote]
                                     + bucket_args)
            results["server_cpu"].append(cpu_seconds(server.pid) - cpu0)
            results["bucket"].append(t)
            full = json.loads(out)["sources"][0]
            a, b = count(local), count(remote)
            if a != b:
                sys.exit(f"different answers: local {a} bucket {b}")
            link_tree(extra_dir, bucket_dir)
            t, _, _ = run_measured([trail, "ingest", "-q", "--store", local, bucket_dir])
            results["local_inc"].append(t)
            t, _, out = run_measured([trail, "ingest", "-q", "--json", "--store", remote]
                                     + bucket_args)
            results["bucket_inc"].append(t)
            inc = json.loads(out)["sources"][0]
            a, b = count(local), count(remote)
            if a != b:
                sys.exit(f"different answers after the increment: local {a} bucket {b}")
            calls.append((full, inc))
            print(f"run {r + 1}: local {results['local'][-1]:.2f} s, bucket "
                  f"{results['bucket'][-1]:.2f} s (server CPU {results['server_cpu'][-1]:.1f} s); "
                  f"incremental local {results['local_inc'][-1]:.2f} s, bucket "
                  f"{results['bucket_inc'][-1]:.2f} s; answers equal ({b.splitlines()[-1]})",
                  flush=True)
            if r + 1 < args.runs:
                shutil.rmtree(work)
        # One more incremental run through the counting proxy: the requests the server saw.
        for rel in extra_files:
            os.remove(os.path.join(bucket_dir, rel))
        proxy = subprocess.Popen([sys.executable, PROXY, "--upstream", f"127.0.0.1:{port}"],
                                 stdout=subprocess.PIPE, text=True)
        pport = int(proxy.stdout.readline())
        run_measured([trail, "ingest", "-q", "--store", remote, "s3://bench/", "--endpoint",
                      endpoint])
        # The same increment under new names: objects the ledger has not seen.
        for rel in extra_files:
            head, name = os.path.split(rel)
            t = os.path.join(bucket_dir, head, "late-" + name)
            os.link(os.path.join(extra_dir, rel), t)
        _, _, out = run_measured([trail, "ingest", "-q", "--json", "--store", remote,
                                  "s3://bench/", "--endpoint", f"http://127.0.0.1:{pport}"])
        import urllib.request
        seen = json.load(urllib.request.urlopen(f"http://127.0.0.1:{pport}/__stats"))
        proxy.kill()
        shutil.rmtree(work)
    finally:
        server.kill()
        for d, _, files in os.walk(bucket_dir):
            for f in files:
                if f.startswith("late-") or f.startswith("new-"):
                    os.remove(os.path.join(d, f))
        shutil.rmtree(extra_dir, ignore_errors=True)

    full, inc = calls[-1]
    print()
    print(f"## Bucket against local disk ({args.events} events, {len(base_files)} objects, "
          f"{args.runs} runs, {args.concurrency} GETs in flight)")
    print(f"- full ingest, local disk: {secs(results['local'])}")
    print(f"- full ingest, s3://bench/ on s3s-fs: {secs(results['bucket'])}; "
          f"server CPU {secs(results['server_cpu'])}")
    print(f"- bucket/local time: {ratio_text([b / l for b, l in zip(results['bucket'], results['local'])])}")
    print(f"- LIST calls: full {full['list_calls']} ({full['days_listed']} day folders), "
          f"incremental {inc['list_calls']} ({inc['days_listed']} day folders)")
    print(f"- incremental (+{inc['read']} objects), local: {secs(results['local_inc'])}, "
          f"{ratio_text([i / f for i, f in zip(results['local_inc'], results['local'])])} of the full run")
    print(f"- incremental, bucket: {secs(results['bucket_inc'])}, "
          f"{ratio_text([i / f for i, f in zip(results['bucket_inc'], results['bucket'])])} of the full run")
    print(f"- requests the server saw in an incremental run: {seen['LIST']} LIST, {seen['GET']} GET "
          f"(trail: {json.loads(out)['sources'][0]['list_calls']} LIST calls, "
          f"{json.loads(out)['sources'][0]['read']} objects read)")


if __name__ == "__main__":
    main()
