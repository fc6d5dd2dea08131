#!/usr/bin/env python3
"""A proxy in front of a real S3-compatible server that injects faults and counts requests.

    s3_proxy.py --upstream 127.0.0.1:PORT [--fail 0.1] [--drop 0.05] [--cut 0.05]
                [--lose 0.1] [--delay 0.1 --delay-ms 200] [--seed 7]

Prints the port it listens on as its first line. Each request is, at the given rates:
answered `503 SlowDown` without reaching the server (--fail), answered by closing the
connection (--drop), answered with half its body and then a closed connection (--cut, GETs of
objects), passed to the server and then answered by closing the connection (--lose, PUTs: the
write happened, the client does not know), or delayed (--delay). Everything else is passed to the server unchanged, Host header
included, so a virtual-hosted request (`bucket.localhost:PORT`, sent here as to an HTTP proxy)
stays virtual-hosted. Conditional PUTs (If-None-Match) reach the server one at a time, so
their check and write are one step as on S3. `GET /__stats` answers the counts as JSON: LIST,
GET, HEAD, PUT, other, faults injected, conditional writes refused (412), and the most requests
seen in flight at once.
"""

import argparse
import http.client
import json
import random
import socket
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
# Conditional writes (If-None-Match) pass one at a time: S3 makes check-and-write one step,
# moto's server checks and then writes, so two racing writers could both pass its check.
CONDITIONAL = threading.Lock()
STATS = {"LIST": 0, "GET": 0, "HEAD": 0, "PUT": 0, "other": 0, "faults": 0,
         "in_flight": 0, "max_in_flight": 0, "precondition_failed": 0}


def bump(key, by=1):
    with LOCK:
        STATS[key] += by
        if key == "in_flight":
            STATS["max_in_flight"] = max(STATS["max_in_flight"], STATS["in_flight"])


def make_handler(args, rng):
    up_host, up_port = args.upstream.rsplit(":", 1)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def roll(self, rate):
            with LOCK:
                return rate > 0 and rng.random() < rate

        def handle_any(self):
            target = self.path
            if target.startswith("http://") or target.startswith("https://"):
                u = urllib.parse.urlsplit(target)
                target = u.path + ("?" + u.query if u.query else "")
            if target == "/__stats":
                with LOCK:
                    body = json.dumps(STATS).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            query = urllib.parse.urlsplit(target).query
            if self.command == "GET" and ("list-type" in query or "delimiter" in query
                                          or "prefix=" in query):
                kind = "LIST"
            elif self.command in ("GET", "HEAD", "PUT"):
                kind = self.command
            else:
                kind = "other"
            bump(kind)
            if self.roll(args.delay):
                time.sleep(args.delay_ms / 1000.0)
            if self.roll(args.fail):
                bump("faults")
                msg = (b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code>'
                       b"<Message>Please reduce your request rate.</Message></Error>")
                self.send_response(503)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(msg)))
                self.end_headers()
                self.wfile.write(msg)
                return
            if self.roll(args.drop):
                bump("faults")
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            bump("in_flight")
            try:
                conn = http.client.HTTPConnection(up_host, int(up_port), timeout=120)
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("proxy-connection", "connection")}
                conditional = self.command == "PUT" and "If-None-Match" in self.headers
                if conditional:
                    CONDITIONAL.acquire()
                try:
                    conn.request(self.command, target, body=body, headers=headers)
                    resp = conn.getresponse()
                    data = resp.read()
                    conn.close()
                finally:
                    if conditional:
                        CONDITIONAL.release()
                if resp.status == 412:
                    bump("precondition_failed")
            finally:
                bump("in_flight", -1)
            if self.command == "PUT" and self.roll(args.lose):
                # The server did the write; its answer never arrives.
                bump("faults")
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            cut = (self.command == "GET" and kind == "GET" and resp.status == 200
                   and len(data) > 1 and self.roll(args.cut))
            self.send_response(resp.status, resp.reason)
            for k, v in resp.getheaders():
                if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command == "HEAD":
                return
            if cut:
                bump("faults")
                self.wfile.write(data[: len(data) // 2])
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            self.wfile.write(data)

        do_GET = do_PUT = do_HEAD = do_POST = do_DELETE = handle_any

    return Handler


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--upstream", required=True)
    p.add_argument("--fail", type=float, default=0.0)
    p.add_argument("--drop", type=float, default=0.0)
    p.add_argument("--cut", type=float, default=0.0)
    p.add_argument("--lose", type=float, default=0.0)
    p.add_argument("--delay", type=float, default=0.0)
    p.add_argument("--delay-ms", type=float, default=200.0)
    p.add_argument("--seed", type=int, default=7)
    args = p.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(args, random.Random(args.seed)))
    server.daemon_threads = True
    print(server.server_address[1], flush=True)
    sys.stdout.close()
    server.serve_forever()


if __name__ == "__main__":
    main()
