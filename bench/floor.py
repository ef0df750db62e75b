"""Memory-bandwidth floor for the loss benchmarks.

A loss over N elements must at least read y_true and y_pred (2*N*itemsize
bytes); value_and_grad must also write the gradient (3*N*itemsize). For a
row-wise loss with integer labels (sparse cross-entropy, nll) the bytes are
logits + labels (+ gradient); spec.floor_bytes() counts them from the arrays. Dividing
those bytes by a measured streaming-read bandwidth gives the time no
implementation can beat once the arrays are out of cache. The floor is
optimistic for value_and_grad: a store that misses cache usually costs a read
for ownership as well, so the real traffic is nearer 4*N*itemsize.

Bandwidth is measured with NumPy reductions over a large buffer (default
256 MiB, far larger than any L3). NumPy reductions run on one thread; for the
multi-thread number each thread reduces its own buffer concurrently (NumPy
releases the GIL inside reductions) and the wall time of the slowest counts.
Several reduction kernels are tried because some are compute-bound on a given
CPU; the fastest (highest GB/s) one defines the floor.

    python bench/floor.py            # print measured GB/s
"""
from __future__ import annotations

import os
import statistics
import threading
import time

import numpy as np

# name -> (dtype the buffer is viewed as, reduction). All read every byte.
KERNELS = {
    "maximum.reduce[uint8]": (np.uint8, np.maximum.reduce),
    "maximum.reduce[float32]": (np.float32, np.maximum.reduce),
    "add.reduce[float64]": (np.float64, np.add.reduce),
}

OP_BYTES_PER_ELEMENT = {"value": 2, "value_and_grad": 3, "value_and_grad_out": 3}


def _percentile(xs, q):
    return float(np.percentile(np.asarray(xs, dtype=np.float64), q))


def _time_concurrent(fn, bufs):
    """Wall time for len(bufs) threads each running fn on its own buffer."""
    if len(bufs) == 1:
        t0 = time.perf_counter()
        fn(bufs[0])
        return time.perf_counter() - t0
    barrier = threading.Barrier(len(bufs) + 1)

    def work(b):
        barrier.wait()
        fn(b)

    threads = [threading.Thread(target=work, args=(b,)) for b in bufs]
    for t in threads:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    return time.perf_counter() - t0


def measure_read_bandwidth(threads: int = 1, nbytes: int = 256 << 20, repeats: int = 7,
                           kernels=None) -> dict:
    """Measure streaming-read bandwidth with `threads` concurrent NumPy reductions.

    Returns {"threads", "bytes_per_thread", "kernels": {name: {"gbps", "median_s",
    "p20_s", "p80_s", "total_bytes"}}, "best": name, "gbps": best GB/s}.
    """
    kernels = kernels or list(KERNELS)
    # np.full touches every page (np.zeros would map the shared zero page and
    # the "reads" would hit cache).
    bufs = [np.full(nbytes, 1, dtype=np.uint8) for _ in range(threads)]
    total = nbytes * threads
    out = {"threads": threads, "bytes_per_thread": nbytes, "kernels": {}}
    for name in kernels:
        view_dtype, red = KERNELS[name]
        views = [b.view(view_dtype) for b in bufs]
        _time_concurrent(red, views)  # warm-up
        ts = [_time_concurrent(red, views) for _ in range(repeats)]
        med = statistics.median(ts)
        out["kernels"][name] = {
            "gbps": total / med / 1e9,
            "median_s": med,
            "p20_s": _percentile(ts, 20),
            "p80_s": _percentile(ts, 80),
            "total_bytes": total,
            "samples_s": ts,
        }
    best = max(out["kernels"], key=lambda k: out["kernels"][k]["gbps"])
    out["best"] = best
    out["gbps"] = out["kernels"][best]["gbps"]
    del bufs
    return out


def floor_seconds(op: str, n: int, itemsize: int, gbps: float) -> float:
    """Lower bound in seconds for `op` over n elements at gbps GB/s."""
    return OP_BYTES_PER_ELEMENT[op] * n * itemsize / (gbps * 1e9)


if __name__ == "__main__":
    ncpu = os.cpu_count() or 1
    for th in sorted({1, ncpu}):
        r = measure_read_bandwidth(th)
        per = ", ".join(f"{k} {v['gbps']:.1f}" for k, v in r["kernels"].items())
        print(f"{th} thread(s): {r['gbps']:.1f} GB/s (best: {r['best']}; {per})")
