"""Throughput of ``fastloss eval`` (streaming .npy files through an
accumulator) against the in-memory call on the same arrays.

    python bench/eval_cli_bench.py                      # 1e8 float32 elements, huber, files in /tmp
    python bench/eval_cli_bench.py --n 1e7 --loss mse --chunks 1e5,1e6,1e7 --repeat 5

Writes y_true.npy and y_pred.npy (``--n`` elements each, written in pieces,
kept for the next run unless ``--clean``) and times, best of ``--repeat``:

- ``in-memory call``: ``fl.LOSS(y_true, y_pred)`` on arrays already in RAM;
- ``np.load + call``: reading both files into RAM, then the call;
- ``eval, chunk C``: ``fastloss._eval_cli.evaluate`` on the memory-mapped
  files (the work of ``fastloss eval`` without the interpreter's start), for
  each ``--chunks`` size;
- ``fastloss eval (process)``: ``python -m fastloss eval ... --json`` as a
  user runs it, start-up and import included.

The files are in the page cache after they are written (warm reads); a cold
read is bounded by the disk. Every value is checked equal (==) to the
in-memory call's. Prints a Markdown table and the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time

import numpy as np

import fastloss as fl
from fastloss import _eval_cli


def _write(path, n, dtype, seed, like=None):
    # Written a piece at a time: no array of n elements is ever in memory.
    out = np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=(n,))
    rng = np.random.default_rng(seed)
    step = 10_000_000
    for i in range(0, n, step):
        k = min(step, n - i)
        if like is None:
            out[i : i + k] = rng.standard_normal(k)
        else:
            out[i : i + k] = like[i : i + k] + rng.standard_normal(k) * 0.5
    out.flush()
    del out


def _ensure(directory, n, dtype):
    os.makedirs(directory, exist_ok=True)
    yt, yp = os.path.join(directory, "y_true.npy"), os.path.join(directory, "y_pred.npy")
    for path in (yt, yp):
        if os.path.exists(path):
            a = np.load(path, mmap_mode="r")
            if a.shape != (n,) or a.dtype != dtype:
                os.remove(path)
    if not os.path.exists(yt):
        _write(yt, n, dtype, 0)
    if not os.path.exists(yp):
        _write(yp, n, dtype, 1, like=np.load(yt, mmap_mode="r"))
    return yt, yp


def _best(fn, repeat):
    best, value = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - t0)
    return best, value


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _parse_size(text):
    return int(float(text))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=_parse_size, default=100_000_000, help="elements per array (default 1e8)")
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    p.add_argument("--loss", default="huber")
    p.add_argument("--dir", default="/tmp/fastloss_eval_bench", help="where the .npy files go")
    p.add_argument("--chunks", default="1e5,1e6,1e7", help="chunk sizes of the eval rows (elements)")
    p.add_argument("--repeat", type=int, default=3, help="best of this many runs (default 3)")
    p.add_argument("--threads", type=int, default=None, help="fastloss threads (default: fastloss's)")
    p.add_argument("--no-process", action="store_true", help="skip the `python -m fastloss eval` row")
    p.add_argument("--clean", action="store_true", help="remove the files afterwards")
    args = p.parse_args(argv)
    if args.threads:
        fl.set_num_threads(args.threads)
    dtype = np.dtype(args.dtype)
    loss = _eval_cli.resolve_loss(args.loss)
    n = args.n

    t0 = time.perf_counter()
    yt_path, yp_path = _ensure(args.dir, n, dtype)
    prep = time.perf_counter() - t0
    nbytes = 2 * n * dtype.itemsize
    rows = []  # (what, seconds, value)

    def load():
        return np.load(yt_path), np.load(yp_path)

    t_load_call, _ = _best(lambda: loss(*load()), args.repeat)
    y, pr = load()
    t_call, expected = _best(lambda: loss(y, pr), args.repeat)
    del y, pr
    rows.append(("in-memory call", t_call, expected))
    rows.append(("np.load + call", t_load_call, expected))

    for chunk in (_parse_size(c) for c in args.chunks.split(",") if c.strip()):
        t, r = _best(lambda: _eval_cli.evaluate(loss, yt_path, yp_path, chunk=chunk), args.repeat)
        rows.append((f"eval, chunk {chunk:.3g} ({r['chunk_rows']} rows)", t, r["value"]))

    if not args.no_process:
        cmd = [sys.executable, "-m", "fastloss", "eval", loss.name, "--y-true", yt_path, "--y-pred", yp_path,
               "--json"]
        if args.threads:
            cmd += ["--threads", str(args.threads)]

        def run():
            out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
            r = json.loads(out)
            return np.dtype(r["dtype"]).type(float(r["value"]))

        t, v = _best(run, args.repeat)
        rows.append(("`fastloss eval` (process, start-up included)", t, v))

    print(f"fastloss {fl.__version__}, {loss.name}, N = {n:.3g} {dtype.name} "
          f"({nbytes / 1e6:.0f} MB read per evaluation), best of {args.repeat}")
    print(f"{_cpu_model()}, {os.cpu_count()} CPU(s), {fl.get_num_threads()} fastloss thread(s), "
          f"SIMD {fl.simd_target()}, Python {platform.python_version()}, NumPy {np.__version__}; "
          f"files in {args.dir} (warm page cache; written/checked in {prep:.1f} s)")
    print()
    print("| what | seconds | M elements/s | MB/s | vs in-memory | value == call |")
    print("|---|---:|---:|---:|---:|---|")
    for what, t, v in rows:
        same = "yes" if v == expected else f"NO ({v!r})"
        print(f"| {what} | {t:.3f} | {n / t / 1e6:.0f} | {nbytes / t / 1e6:.0f} | {t / t_call:.2f}x | {same} |")
    if args.clean:
        os.remove(yt_path)
        os.remove(yp_path)
    return 0 if all(v == expected for _, _, v in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
