"""fastloss on Dask arrays against Dask's own expression (and dask-ml).

    python bench/dask_bench.py                       # 5e7 float32 in chunks of 2^22, best of 3
    python bench/dask_bench.py --n 1e7 --chunk 1048576 --runs 5
    python bench/dask_bench.py --schedulers threads   # no LocalCluster

Mean squared error over N float32 elements held in memory as Dask arrays of
``--chunk``-element chunks, computed on the threaded scheduler (the arrays
wrap NumPy arrays of this process) and on a ``LocalCluster`` (2 worker
processes of one thread each; the inputs are made and persisted on the
workers, so only the graph and the 0-d result travel):

- ``fastloss``: ``fl.mse(y, p)`` -- one exact accumulator state per chunk,
  merged by integer addition; the same bits as ``fl.mse`` on the whole NumPy
  arrays when the chunks are multiples of 1024 elements (checked and shown);
- ``dask expression``: ``((p - y) ** 2).mean()`` (a temporary per chunk);
- ``dask_ml``: ``dask_ml.metrics.mean_squared_error(y, p)`` where dask-ml
  imports (skipped otherwise);
and, for scale, ``fl.mse`` on the whole in-memory NumPy arrays (the one-shot
call, no Dask).

Each cell is the best of ``--runs`` wall times of building the graph and
computing it, in ms, after one warm-up call; the runs of one scheduler go
round-robin over the implementations. fastloss's own thread pool is set to ``--fastloss-threads``
(default 1) in this process and on the workers: Dask supplies the parallelism
across chunks. The machine is shared: compare cells of one run only.
"""
from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time

import numpy as np


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        for line in out.splitlines():
            if line.strip().startswith("Model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def make_block(*, chunk, n, seed, out_dtype, block_id=None):
    """Block i of the input: the same values on the workers and here."""
    i = block_id[0]
    size = min(chunk, n - i * chunk)
    rng = np.random.default_rng([seed, i])
    return rng.standard_normal(size, dtype=np.float32).astype(out_dtype, copy=False)


def generated(da, n, chunk, seed, dtype):
    chunks = ((chunk,) * (n // chunk) + ((n % chunk,) if n % chunk else ()),)
    return da.map_blocks(make_block, chunk=chunk, n=n, seed=seed, out_dtype=dtype, dtype=dtype,
                         chunks=chunks,
                         meta=np.empty((0,), dtype))


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def best_ms(fns, runs):
    """{name: (best wall time in ms, last result)}, after one warm-up call
    each; the runs go round-robin over the functions (run 1 of each, run 2
    of each, ...), so that a drift of the shared machine hits all alike."""
    best = {k: float("inf") for k in fns}
    out = {k: fn() for k, fn in fns.items()}
    for _ in range(runs):
        for k, fn in fns.items():
            dt, out[k] = timed(fn)
            best[k] = min(best[k], dt)
    return {k: (best[k] * 1e3, out[k]) for k in fns}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=float, default=5e7, help="elements (default 5e7)")
    ap.add_argument("--chunk", type=int, default=1 << 22, help="elements per chunk (default 2^22)")
    ap.add_argument("--runs", type=int, default=3, help="best of this many wall times (default 3)")
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--schedulers", default="threads,cluster",
                    help="comma-separated: threads, cluster (default both)")
    ap.add_argument("--fastloss-threads", type=int, default=1)
    args = ap.parse_args(argv)

    import dask
    import dask.array as da

    import fastloss as fl

    n, chunk, dtype = int(args.n), args.chunk, np.dtype(args.dtype)
    schedulers = [s for s in args.schedulers.split(",") if s]
    try:
        import dask_ml.metrics as dml
    except Exception as e:  # ImportError, or a broken install
        dml = None
        print(f"[dask_bench] dask_ml not importable ({type(e).__name__}: {e}); its row is skipped",
              file=sys.stderr)

    fl.set_num_threads(args.fastloss_threads)
    Yg, Pg = generated(da, n, chunk, 1, dtype), generated(da, n, chunk, 2, dtype)
    y, p = dask.compute(Yg, Pg, scheduler="threads")
    expected = fl.mse(y, p)

    impls = {
        "fastloss": lambda Y, P: fl.mse(Y, P),
        "dask expression": lambda Y, P: ((P - Y) ** 2).mean(),
    }
    if dml is not None:
        impls["dask_ml"] = lambda Y, P: dml.mean_squared_error(Y, P, compute=False)

    rows = {}
    notes = []
    numpy_ms = best_ms({"numpy": lambda: fl.mse(y, p)}, args.runs)["numpy"][0]

    for sched in schedulers:
        if sched == "threads":
            Y, P = da.from_array(y, chunks=chunk), da.from_array(p, chunks=chunk)

            def run(expr):
                return expr.compute(scheduler="threads")

            cluster = client = None
        elif sched == "cluster":
            from distributed import Client, LocalCluster, wait

            cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                   dashboard_address=None)
            client = Client(cluster)
            client.run(fl.set_num_threads, args.fastloss_threads)
            Y, P = client.persist([Yg, Pg])
            wait([Y, P])

            def run(expr, client=client):
                return client.compute(expr, sync=True)
        else:
            raise SystemExit(f"unknown scheduler {sched!r} (threads, cluster)")
        try:
            timings = best_ms({impl: (lambda build=build: run(build(Y, P)))
                               for impl, build in impls.items()}, args.runs)
            for impl, (ms, out) in timings.items():
                rows.setdefault(impl, {})[sched] = ms
                if impl == "fastloss":
                    same = np.asarray(out).tobytes() == np.asarray(expected).tobytes()
                    notes.append(f"fastloss on {sched}: {out!r} ({type(out).__name__}); "
                                 f"the NumPy call: {expected!r}; same bits: {'yes' if same else 'NO'}")
                else:
                    notes.append(f"{impl} on {sched}: {out!r}")
        finally:
            if client is not None:
                client.close()
                cluster.close()

    print(f"CPU: {cpu_model()} ({os.cpu_count()} cores); dask {dask.__version__}; "
          f"fastloss {fl.__version__} ({fl.simd_target()}), {args.fastloss_threads} thread(s) per caller")
    print(f"mse over {n:.3g} {dtype.name} elements in chunks of {chunk} "
          f"({-(-n // chunk)} chunks); best of {args.runs} wall times, ms\n")
    names = {"threads": "threaded scheduler", "cluster": "LocalCluster (2 procs x 1 thread)"}
    print("| implementation | " + " | ".join(names[s] for s in schedulers) + " |")
    print("|---|" + "---:|" * len(schedulers))
    for impl, cells in rows.items():
        print(f"| {impl} | " + " | ".join(
            f"{cells[s]:.1f}" if s in cells else "—" for s in schedulers) + " |")
    print(f"\nfastloss on the whole NumPy arrays (no Dask, {args.fastloss_threads} thread(s)): "
          f"{numpy_ms:.1f} ms")
    if dml is None:
        print("dask_ml: not installed (no row)")
    print()
    for note in notes:
        print("- " + note)
    return 0


if __name__ == "__main__":
    sys.exit(main())
