#!/usr/bin/env python
"""Benchmark fastloss losses against NumPy, PyTorch (CPU) and JAX.

    python bench/run.py                       # regression losses, full run (~10 min on 2 cores)
    python bench/run.py --quick               # smoke test (~1 min), writes bench/results/quick/
    python bench/run.py --losses mse,huber --sizes 8,1e7 --dtypes float32
    python bench/run.py --group classification          # classification losses (~10 min)
    python bench/run.py --group classification --quick  # small shapes, bench/results/quick/
    python bench/run.py --group classification --losses sparse_cce --sizes 4096x32000 --threads 1
    python bench/run.py --group structured              # dice, box IoU, metric learning, ranking, GAN (~4 min)
    python bench/run.py --group structured --quick      # every structured loss at small shapes
    python bench/run.py --group structured --losses dice,box_ciou

Groups: "regression" (bench/impls.py; --sizes are element counts N),
"classification" (bench/impls_classification.py) and "structured"
(bench/impls_structured.py); for the last two --sizes are shapes such as
4096x32000 or 1e7 (default: each loss's own shapes there). Every group
describes its losses the same way (bench/spec.py: a Spec per loss) and the
same renderer writes its tables (bench/table.py).

Writes long-format rows (one per op x impl x loss x n x dtype x threads) to
DIR/results.csv and DIR/results.json, then the Markdown tables of
bench/table.py to DIR/table.md (and stdout). The classification group writes
DIR/classification.csv, classification.json and classification.md instead, so
the groups never overwrite each other; the structured group writes
DIR/structured.{csv,json,md}. An implementation whose factory fails (e.g. a
fastloss function not built yet) is skipped with a note (JSON meta.notes and
the Markdown).

Rows:
  impl=fastloss  op=value | value_and_grad | value_and_grad_out (out= preallocated)
                 threads=1 and threads=os.cpu_count() (fl.set_num_threads)
  impl=numpy     op=value (tutorial expression) | value_and_grad (numpy_baseline in
                 impls*.py); threads=1
  impl=torch     op=value (forward) | value_and_grad (forward + backward);
                 threads=1 and all (torch.set_num_threads)
  impl=jax       op=value | value_and_grad (jax.jit, block_until_ready);
                 threads="all": XLA's CPU pool uses every core and cannot be
                 pinned per call inside one process
  impl=floor     op=value | value_and_grad: bytes that must move / measured read
                 bandwidth (bench/floor.py); op=read_bandwidth: the measurement
                 itself (loss = NumPy kernel, n = bytes read, median_s = time).
"""
from __future__ import annotations

import argparse
import csv
import datetime as _dt
import gc
import json
import os
import platform
import sys
import time
import warnings

os.environ.setdefault("JAX_PLATFORMS", "cpu")  # never probe for accelerators

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402

import floor as floor_mod  # noqa: E402
import spec  # noqa: E402
import timing  # noqa: E402

COLUMNS = ["op", "impl", "loss", "n", "dtype", "threads", "median_s", "p20_s", "p80_s",
           "version", "simd_target", "machine", "inner", "samples", "shape"]

QUICK = dict(losses="mse,log_cosh,quantile", sizes="8,1e5", dtypes="float32")
# Classification / structured --quick: every loss at its small shapes (its Spec's quick).
QUICK_CLS = dict(dtypes="float32")
# Per group (bench/spec.py): implementation module, default dtypes, output files, checks.
GROUPS = spec.GROUPS


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def parse_sizes(s: str) -> list[int]:
    return [int(float(x)) for x in s.split(",") if x.strip()]


shape_str = spec.shape_str


def try_import(name):
    try:
        return __import__(name)
    except Exception as e:  # ImportError, or a broken install
        print(f"[bench] {name} not importable ({type(e).__name__}: {e}); skipping its rows", file=sys.stderr)
        return None


class Threads:
    """Tracks and sets per-library thread counts (setting only on change)."""

    def __init__(self, fl, torch):
        self.fl, self.torch = fl, torch
        self.cur = {}

    def setter(self, lib, n):
        def activate():
            if self.cur.get(lib) != n:
                (self.fl if lib == "fastloss" else self.torch).set_num_threads(n)
                self.cur[lib] = n
        return activate


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--group", choices=list(GROUPS), default="regression",
                    help="which losses: regression (default), classification or structured")
    ap.add_argument("--losses", default=None, help="comma list (default: every loss of the group)")
    ap.add_argument("--sizes", default=None,
                    help="regression: element counts (default 8,1e3,1e5,1e7); classification: shapes "
                         "like 4096x32000,65536x10,1e7 applied to every selected loss (default: each "
                         "loss's own shapes)")
    ap.add_argument("--dtypes", default=None,
                    help="default float32,float64 (regression), float32 (classification)")
    ap.add_argument("--threads", default=None,
                    help="comma list of thread counts for fastloss and torch (default 1 and os.cpu_count())")
    ap.add_argument("--quick", action="store_true",
                    help=f"short smoke run: regression {QUICK}; classification every loss at small shapes "
                         "(unless given); short timings, out=bench/results/quick")
    ap.add_argument("--out", default=None, help="output directory (default bench/results)")
    ap.add_argument("--skip", default="", help="comma list of impls to leave out: torch,jax,numpy,fastloss")
    ap.add_argument("--min-total", type=float, default=None, help="seconds of samples per case (default 0.2)")
    ap.add_argument("--settle", type=float, default=0.003, help="sleep (s) when switching implementation")
    ap.add_argument("--no-check", action="store_true", help="skip the value/grad sanity check")
    ap.add_argument("--merge", action="store_true",
                    help="update an existing CSV/JSON in the output directory: rows of the (loss, shape, dtype) "
                         "cells measured now replace the old ones, other cells are kept (e.g. to re-measure "
                         "cells a busy machine disturbed); meta.merged_runs keeps the earlier runs' metadata")
    args = ap.parse_args(argv)

    given = set(a.split("=")[0].lstrip("-").replace("-", "_") for a in (argv or sys.argv[1:]) if a.startswith("--"))
    group = GROUPS[args.group]
    M = __import__(group.module)
    cls = group.shaped  # shaped cells (classification, structured)
    if args.quick:
        for k, v in (QUICK_CLS if cls else QUICK).items():
            if k not in given:
                setattr(args, k, v)
    if args.losses is None:
        args.losses = ",".join(M.SPECS)
    if args.dtypes is None:
        args.dtypes = group.dtypes
    if args.sizes is None and not cls:
        args.sizes = "8,1e3,1e5,1e7"
    out_dir = args.out or os.path.join(HERE, "results", "quick" if args.quick else "")
    out_dir = os.path.normpath(out_dir)
    os.makedirs(out_dir, exist_ok=True)

    losses = [x.strip() for x in args.losses.split(",") if x.strip()]
    unknown = [x for x in losses if x not in M.SPECS]
    if unknown:
        ap.error(f"unknown losses {unknown} for --group {args.group}; known: {list(M.SPECS)}")
    dtypes = [x.strip() for x in args.dtypes.split(",") if x.strip()]
    skip = set(x.strip() for x in args.skip.split(",") if x.strip())
    # cells: (loss, shape, dtype) in the order they are measured
    if cls:
        if args.sizes is not None:
            shapes = [spec.parse_shape(x.strip()) for x in args.sizes.split(",") if x.strip()]
            shapes_of = lambda loss: shapes  # noqa: E731
        elif args.quick:
            shapes_of = lambda loss: M.SPECS[loss].quick  # noqa: E731
        else:
            shapes_of = lambda loss: M.SPECS[loss].shapes  # noqa: E731
        cells = [(loss, tuple(shape), dtype) for loss in losses for shape in shapes_of(loss) for dtype in dtypes]
    else:
        cells = [(loss, (n,), dtype) for n in parse_sizes(args.sizes) for dtype in dtypes for loss in losses]

    tcfg = dict(warmup_s=0.01 if args.quick else 0.02, sample_s=0.002 if args.quick else 0.004,
                min_total_s=args.min_total if args.min_total is not None else (0.05 if args.quick else 0.2),
                min_samples=5, max_samples=200)

    fl = None if "fastloss" in skip else try_import("fastloss")
    torch = None if "torch" in skip else try_import("torch")
    jax = None
    if "jax" not in skip and hasattr(M, "jax_impl"):
        jax = try_import("jax")
        if jax is not None:
            jax.config.update("jax_enable_x64", True)  # float64 rows
            import jax.numpy  # noqa: F401

    ncpu = os.cpu_count() or 1
    thread_counts = (sorted({int(x) for x in args.threads.split(",") if x.strip()}) if args.threads
                     else sorted({1, ncpu}))
    machine = f"{cpu_model()} ({ncpu} cores)"
    simd = fl.simd_target() if fl is not None else ""
    versions = {
        "fastloss": getattr(fl, "__version__", "") if fl else None,
        "numpy": np.__version__,
        "torch": torch.__version__ if torch else None,
        "jax": jax.__version__ if jax else None,
        "python": platform.python_version(),
    }
    thr = Threads(fl, torch)
    t_start = time.time()
    load_start = os.getloadavg()
    if load_start[0] > 0.5:
        print(f"[bench] warning: load average {load_start[0]:.2f} at start: other processes share the "
              f"{ncpu} cores; multi-thread numbers will suffer", file=sys.stderr, flush=True)
    print(f"[bench] {machine}; SIMD {simd or 'n/a'}; threads {thread_counts}; "
          + ", ".join(f"{k} {v}" for k, v in versions.items() if v), flush=True)

    rows: list[dict] = []

    def row(op, impl, loss, n, dtype, threads, med, p20, p80, inner="", samples="", shape=None):
        r = dict(op=op, impl=impl, loss=loss, n=n, dtype=dtype, threads=threads,
                 median_s=f"{med:.6e}", p20_s=f"{p20:.6e}", p80_s=f"{p80:.6e}",
                 version=versions.get(impl) or versions["numpy"], simd_target=simd, machine=machine,
                 inner=inner, samples=samples, shape=shape_str(shape) if shape else str(n))
        rows.append(r)
        return r

    # ---------------------------------------------------------------- bandwidth
    # Measured before and after the loss timings; the floor uses the higher of
    # the two per thread count (a shared machine only ever makes it look lower).
    bw_bytes = (64 << 20) if args.quick else (256 << 20)
    bw_runs = {th: [] for th in thread_counts}

    def measure_bandwidth(when):
        for th in thread_counts:
            m = floor_mod.measure_read_bandwidth(th, nbytes=bw_bytes, repeats=5 if args.quick else 9)
            m["when"] = when
            bw_runs[th].append(m)
            for name, k in m["kernels"].items():
                row("read_bandwidth", "floor", name, k["total_bytes"], "uint8", th,
                    k["median_s"], k["p20_s"], k["p80_s"], samples=len(k["samples_s"]))
            print(f"[bench] read bandwidth {th}T ({when}): {m['gbps']:.1f} GB/s ({m['best']})", flush=True)
        gc.collect()

    measure_bandwidth("start")
    floor_cells = []  # (loss, n, dtype, shape, bytes by op): floor rows are written once the bandwidth is final

    csv_path = os.path.join(out_dir, group.stem + ".csv")
    json_path = os.path.join(out_dir, group.stem + ".json")
    checks = []
    notes = []  # implementations skipped (factory failed, e.g. a fastloss function not built yet)
    kept, merged_runs = [], []
    if args.merge and os.path.exists(csv_path):
        now = {(loss, shape_str(shape) if cls else str(shape[0]), dtype) for loss, shape, dtype in cells}
        with open(csv_path, newline="") as f:
            for r in csv.DictReader(f):
                r.setdefault("shape", r["n"])
                if r["op"] == "read_bandwidth" or (r["loss"], r["shape"] or r["n"], r["dtype"]) not in now:
                    kept.append({k: r.get(k, "") for k in COLUMNS})
        if os.path.exists(json_path):
            with open(json_path) as f:
                old = json.load(f)["meta"]
            merged_runs = old.pop("merged_runs", []) + [old]
            checks += [c for c in old.get("checks", []) if not any(f" {loss} n={sz} {dt} " in c for loss, sz, dt in now)]
            notes += [c for c in old.get("notes", []) if not any(f" {loss} n={sz} {dt}:" in c for loss, sz, dt in now)]
        print(f"[bench] --merge: keeping {len(kept)} rows of {csv_path}", flush=True)

    def flush_csv():
        with open(csv_path, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=COLUMNS)
            w.writeheader()
            w.writerows(kept + rows)

    # ---------------------------------------------------------------- losses
    for loss, shape, dtype in cells:
        t_group = time.time()
        n = int(np.prod(shape))
        tag_size = shape_str(shape) if cls else str(n)
        # the inputs in the loss's positional order: (y_true, y_pred) for regression /
        # classification, up to three arrays for the structured group
        case_spec = M.SPECS[loss]
        data = tuple(M.make_data(loss, shape, np.dtype(dtype)))
        nbytes = spec.floor_bytes(case_spec, data)
        floor_cells.append((loss, n, dtype, shape if cls else None, nbytes))

        def factory(impl, make):
            """{op: fn} from the module's factory; a failure skips the impl with a note."""
            try:
                return make()
            except Exception as e:  # noqa: BLE001
                note = f"{impl} {loss} n={tag_size} {dtype}: skipped: {type(e).__name__}: {e}"
                notes.append(note)
                print(f"[bench] NOTE {note}", file=sys.stderr, flush=True)
                return {}

        cases: list[timing.Case] = []
        if fl is not None:
            fns = factory("fastloss", lambda: spec.fastloss_impl(fl, case_spec, *data))
            for th in thread_counts:
                for op, fn in fns.items():
                    cases.append(timing.Case(op, "fastloss", th, fn, thr.setter("fastloss", th)))
        if "numpy" not in skip:
            for op, fn in factory("numpy", lambda: M.numpy_baseline(loss, *data)).items():
                cases.append(timing.Case(op, "numpy", 1, fn))
        if torch is not None:
            fns = factory("torch", lambda: M.torch_impl(torch, loss, *data))
            for th in thread_counts:
                for op, fn in fns.items():
                    cases.append(timing.Case(op, "torch", th, fn, thr.setter("torch", th)))
        if jax is not None:
            for op, fn in factory("jax", lambda: M.jax_impl(jax, loss, *data)).items():
                cases.append(timing.Case(op, "jax", "all", fn))
        fns = None  # the cases hold the only references (large buffers die with them)

        if not args.no_check:
            ref = M.reference(loss, *data)
        for c in cases:
            try:
                c.activate()
                if not args.no_check:
                    msg = spec.check(c.fn, ref, dtype, group.value_rtol)
                    if msg:
                        tag = f"{c.impl} {c.op} {loss} n={tag_size} {dtype} threads={c.threads}"
                        checks.append(f"{tag}: {msg}")
                        print(f"[bench] CHECK {tag}: {msg}", file=sys.stderr, flush=True)
                timing.calibrate(c, warmed=not args.no_check, **tcfg)
            except Exception as e:  # noqa: BLE001
                c.error = f"{type(e).__name__}: {e}"
                print(f"[bench] {c.impl} {c.op} {loss} n={tag_size} {dtype}: {c.error}", file=sys.stderr)
        if not args.no_check:
            ref = None
        gc.collect()
        timing.measure_group(cases, settle_s=args.settle)
        for c in cases:
            if c.error is None and c.samples:
                med, p20, p80 = c.stats()
                row(c.op, c.impl, loss, n, dtype, c.threads, med, p20, p80, c.inner, len(c.samples),
                    shape=shape if cls else None)
        del cases, data
        c = None
        gc.collect()
        flush_csv()
        print(f"[bench] {loss:<13} {'shape' if cls else 'n'}={tag_size:<11} {dtype}: "
              f"{time.time() - t_group:5.1f}s (total {time.time() - t_start:6.1f}s)", flush=True)

    measure_bandwidth("end")
    bw = {th: max(ms, key=lambda m: m["gbps"]) for th, ms in bw_runs.items()}
    for loss, n, dtype, shape, nbytes in floor_cells:
        for th in thread_counts:
            best = bw[th]["kernels"][bw[th]["best"]]
            for op in ("value", "value_and_grad"):
                fs = [nbytes[op] / (best["total_bytes"] / s) for s in best["samples_s"]]
                row(op, "floor", loss, n, dtype, th, float(np.median(fs)),
                    float(np.percentile(fs, 20)), float(np.percentile(fs, 80)), shape=shape)
    flush_csv()
    meta = {
        "date": _dt.datetime.now().isoformat(timespec="seconds"),
        "group": args.group,
        "floor_bytes": {f"{loss} {shape_str(shape) if shape else n} {dtype}": nbytes
                        for loss, n, dtype, shape, nbytes in floor_cells},
        "machine": machine, "cpu_count": ncpu, "simd_target": simd, "versions": versions,
        "thread_counts": thread_counts,
        "jax_threads": "all (XLA CPU pool; not pinnable per run in one process)",
        "read_bandwidth_gbps": {str(th): {"best": m["best"], "gbps": m["gbps"], "when": m["when"]}
                                for th, m in bw.items()},
        "read_bandwidth_runs": {str(th): [{"when": m["when"], "kernels": {k: v["gbps"] for k, v in m["kernels"].items()}}
                                          for m in ms] for th, ms in bw_runs.items()},
        "bandwidth_buffer_bytes_per_thread": bw_bytes,
        "timing": tcfg, "settle_s": args.settle,
        "argv": sys.argv[1:] if argv is None else argv,
        "checks": checks,
        "notes": notes,
        "wall_s": round(time.time() - t_start, 1),
        "loadavg_start": load_start, "loadavg_end": os.getloadavg(),
    }
    if args.merge:
        meta["merged_runs"] = merged_runs
    with open(json_path, "w") as f:
        json.dump({"meta": meta, "rows": kept + rows}, f, indent=1)

    import table  # noqa: E402
    md = table.render(csv_path, args.group)
    table_path = os.path.join(out_dir, group.table)
    with open(table_path, "w") as f:
        f.write(md)
    print()
    print(md)
    if checks:
        print(f"[bench] {len(checks)} sanity-check mismatches (see {os.path.basename(json_path)} meta.checks)",
              file=sys.stderr)
    if notes:
        print(f"[bench] {len(notes)} implementations skipped (see {os.path.basename(json_path)} meta.notes)",
              file=sys.stderr)
    print(f"[bench] wrote {csv_path}, {json_path}, {table_path} in {time.time() - t_start:.0f}s", file=sys.stderr)


if __name__ == "__main__":
    warnings.simplefilter("default")
    main()
