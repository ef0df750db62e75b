"""Load test of the evaluation server (eval_server.py): requests/s and latency.

Client threads POST batches to ``/update`` over keep-alive connections for a
fixed time, then the run's results are read back and checked: each thread
has its own slice and sends the same batch over and over, so each slice's
count is (requests x batch) and its mean is the batch's own mean. Standard
library and NumPy only::

    python examples/python/eval_server.py --port 8000 &
    python examples/python/load_test.py --url http://127.0.0.1:8000 --seconds 10 --threads 4 --batch 4096

Without ``--url`` it starts a server in its own process on a free loopback
port: the numbers then include the server's Python work competing with the
clients' for one GIL, so for the server's own numbers run it apart.
"""

from __future__ import annotations

import argparse
import http.client
import importlib.util
import io
import json
import math
import os
import sys
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import numpy as np


def _batch_body(fmt, batch, seed, loss):
    rng = np.random.default_rng(seed)
    if loss in ("binary_cross_entropy", "bce", "hinge", "binary_focal"):
        y = (rng.random(batch) < 0.5).astype(np.float32)
    else:
        y = rng.standard_normal(batch).astype(np.float32)
    p = (y + rng.standard_normal(batch) * 0.5).astype(np.float32)
    if fmt == "npz":
        buf = io.BytesIO()
        np.savez(buf, y_true=y, y_pred=p)
        return y, p, buf.getvalue(), "application/octet-stream"
    if fmt == "npy":
        buf = io.BytesIO()
        np.save(buf, np.stack([y, p]))
        return y, p, buf.getvalue(), "application/octet-stream"
    import pyarrow as pa

    sink = pa.BufferOutputStream()
    table = pa.table({"y_true": y, "y_pred": p})
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return y, p, sink.getvalue().to_pybytes(), "application/vnd.apache.arrow.stream"


class _Client(threading.Thread):
    def __init__(self, host, port, path, body, ctype, deadline, start):
        super().__init__(daemon=True)
        self.host, self.port, self.path = host, port, path
        self.body, self.ctype = body, ctype
        self.deadline, self.start_event = deadline, start
        self.latencies = []  # seconds, successful requests
        self.ok = 0
        self.errors = 0
        self.first_error = None

    def run(self):
        headers = {"Content-Type": self.ctype, "Content-Length": str(len(self.body))}
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        self.start_event.wait()
        clock = time.perf_counter
        try:
            while clock() < self.deadline[0]:
                t0 = clock()
                try:
                    conn.request("POST", self.path, self.body, headers)
                    resp = conn.getresponse()
                    data = resp.read()
                except (OSError, http.client.HTTPException) as e:
                    self.errors += 1
                    self.first_error = self.first_error or f"{type(e).__name__}: {e}"
                    conn.close()
                    conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
                    continue
                dt = clock() - t0
                if resp.status == 200:
                    self.ok += 1
                    self.latencies.append(dt)
                else:
                    self.errors += 1
                    self.first_error = self.first_error or f"HTTP {resp.status}: {data[:200]!r}"
        finally:
            conn.close()


def _percentile(sorted_values, q):
    if not sorted_values:
        return float("nan")
    k = min(len(sorted_values) - 1, max(0, math.ceil(q / 100 * len(sorted_values)) - 1))
    return sorted_values[k]


def _get_json(host, port, path):
    conn = http.client.HTTPConnection(host, port, timeout=30)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read() or b"null")
    finally:
        conn.close()


def _start_server():
    here = Path(__file__).resolve().parent
    spec = importlib.util.spec_from_file_location("eval_server", here / "eval_server.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.start("127.0.0.1", 0)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description="Drive the fastloss evaluation server from client threads for a fixed time and print "
        "requests/s, elements/s and latency percentiles (see the module's docstring).")
    parser.add_argument("--url", default=None,
                        help="the server (default: start one in this process on a free loopback port)")
    parser.add_argument("--seconds", type=float, default=5.0, help="how long to send (default 5)")
    parser.add_argument("--threads", type=int, default=4, help="client threads, one connection each (default 4)")
    parser.add_argument("--batch", type=int, default=4096, help="elements per request (default 4096)")
    parser.add_argument("--loss", default="huber", help="the loss (default huber)")
    parser.add_argument("--format", choices=("npz", "npy", "arrow"), default="npz",
                        help="request body (default npz; arrow needs pyarrow)")
    parser.add_argument("--model", default=None, help="model name (default: a fresh one per run)")
    parser.add_argument("--no-check", action="store_true", help="skip reading the results back")
    args = parser.parse_args(argv)
    if args.threads < 1 or args.batch < 1 or not args.seconds > 0:
        parser.error("--threads, --batch and --seconds must be positive")

    server = None
    if args.url is None:
        server, _ = _start_server()
        url = server.url
    else:
        url = args.url.rstrip("/")
    parts = urlsplit(url)
    host, port = parts.hostname, parts.port or 80
    model = args.model or f"load-{os.getpid()}-{uuid.uuid4().hex[:8]}"

    try:
        status, health = _get_json(host, port, "/health")
        if status != 200:
            print(f"load_test: {url}/health answered {status}: {health}", file=sys.stderr)
            return 1
        start = threading.Event()
        deadline = [math.inf]
        clients, batches = [], []
        for i in range(args.threads):
            y, p, body, ctype = _batch_body(args.format, args.batch, i, args.loss)
            query = urlencode({"model": model, "slice": f"thread{i}", "loss": args.loss})
            clients.append(_Client(host, port, f"/update?{query}", body, ctype, deadline, start))
            batches.append((y, p))
        for c in clients:
            c.start()
        t0 = time.perf_counter()
        deadline[0] = t0 + args.seconds
        start.set()
        for c in clients:
            c.join()
        elapsed = time.perf_counter() - t0

        lat = sorted(x for c in clients for x in c.latencies)
        ok = sum(c.ok for c in clients)
        errors = sum(c.errors for c in clients)
        body_bytes = len(clients[0].body)
        print(f"load test: {args.threads} thread(s) x {args.seconds:g} s -> {url}, loss {args.loss}, "
              f"batch {args.batch} float32 ({args.format}, {body_bytes / 1e3:.1f} kB per request)")
        print(f"requests    {ok} ok, {errors} error(s)")
        print(f"requests/s  {ok / elapsed:.1f}")
        print(f"elements/s  {ok * args.batch / elapsed / 1e6:.2f} M  ({ok * body_bytes / elapsed / 1e6:.1f} MB/s of bodies)")
        print(f"latency     p50 {_percentile(lat, 50) * 1e3:.2f} ms  p90 {_percentile(lat, 90) * 1e3:.2f} ms  "
              f"p99 {_percentile(lat, 99) * 1e3:.2f} ms  max {(lat[-1] if lat else math.nan) * 1e3:.2f} ms")
        first = next((c.first_error for c in clients if c.first_error), None)
        if first:
            print(f"first error: {first}")
        rc = 0 if ok and not errors else 1

        if not args.no_check and ok:
            import fastloss as fl

            status, result = _get_json(host, port, f"/result?{urlencode({'model': model})}")
            if status != 200:
                print(f"check: /result answered {status}: {result}")
                return 1
            by_slice = {r["slice"]: r for r in result["slices"]}
            bad = []
            for i, c in enumerate(clients):
                r = by_slice.get(f"thread{i}")
                if c.ok == 0:
                    continue
                y, p = batches[i]
                want = float(getattr(fl, args.loss)(y, p))
                if r is None or r["count"] != c.ok * args.batch or not math.isclose(float(r["result"]), want,
                                                                                   rel_tol=1e-6):
                    bad.append(f"thread{i}: {r} (want count {c.ok * args.batch}, result {want})")
            print("check       ok: every slice's count and mean match what was sent" if not bad
                  else "check       FAILED: " + "; ".join(bad))
            rc = rc or (1 if bad else 0)
        return rc
    finally:
        if server is not None:
            server.shutdown()
            server.server_close()


if __name__ == "__main__":
    sys.exit(main())
