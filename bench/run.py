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


def build_parser() -> argparse.ArgumentParser:
    """run.py's command line (the module docstring is its --help text)."""
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
    return ap


def apply_defaults(args, argv, group: spec.Group, M) -> None:
    """Fills in, on ``args``, what the command line left out: --quick's
    settings (only options not given explicitly), every loss of the group,
    the group's dtypes and, for regression, the default sizes."""
    given = set(a.split("=")[0].lstrip("-").replace("-", "_") for a in (argv or sys.argv[1:]) if a.startswith("--"))
    if args.quick:
        for k, v in (QUICK_CLS if group.shaped else QUICK).items():
            if k not in given:
                setattr(args, k, v)
    if args.losses is None:
        args.losses = ",".join(M.SPECS)
    if args.dtypes is None:
        args.dtypes = group.dtypes
    if args.sizes is None and not group.shaped:
        args.sizes = "8,1e3,1e5,1e7"


def output_dir(args) -> str:
    """--out, or bench/results (--quick: bench/results/quick); created if missing."""
    out_dir = args.out or os.path.join(HERE, "results", "quick" if args.quick else "")
    out_dir = os.path.normpath(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    return out_dir


def select_cells(ap, args, M, shaped: bool) -> list[tuple]:
    """The (loss, shape, dtype) cells in the order they are measured (an
    unknown loss is a usage error). Shaped groups: loss by loss, each at
    --sizes (as shapes), else its Spec's quick or default shapes. Regression:
    size by size, dtype by dtype, every loss; shape = (N,)."""
    losses = [x.strip() for x in args.losses.split(",") if x.strip()]
    unknown = [x for x in losses if x not in M.SPECS]
    if unknown:
        ap.error(f"unknown losses {unknown} for --group {args.group}; known: {list(M.SPECS)}")
    dtypes = [x.strip() for x in args.dtypes.split(",") if x.strip()]
    if shaped:
        if args.sizes is not None:
            shapes = [spec.parse_shape(x.strip()) for x in args.sizes.split(",") if x.strip()]
            shapes_of = lambda loss: shapes  # noqa: E731
        elif args.quick:
            shapes_of = lambda loss: M.SPECS[loss].quick  # noqa: E731
        else:
            shapes_of = lambda loss: M.SPECS[loss].shapes  # noqa: E731
        return [(loss, tuple(shape), dtype) for loss in losses for shape in shapes_of(loss) for dtype in dtypes]
    return [(loss, (n,), dtype) for n in parse_sizes(args.sizes) for dtype in dtypes for loss in losses]


def timing_config(args) -> dict:
    """Keyword arguments of timing.calibrate (also meta.timing)."""
    return dict(warmup_s=0.01 if args.quick else 0.02, sample_s=0.002 if args.quick else 0.004,
                min_total_s=args.min_total if args.min_total is not None else (0.05 if args.quick else 0.2),
                min_samples=5, max_samples=200)


def import_libraries(skip: set, M):
    """(fastloss, torch, jax) modules, None for those skipped or not
    importable; JAX only where the group has a jax_impl (with float64 on)."""
    fl = None if "fastloss" in skip else try_import("fastloss")
    torch = None if "torch" in skip else try_import("torch")
    jax = None
    if "jax" not in skip and hasattr(M, "jax_impl"):
        jax = try_import("jax")
        if jax is not None:
            jax.config.update("jax_enable_x64", True)  # float64 rows
            import jax.numpy  # noqa: F401
    return fl, torch, jax


class Run:
    """One run of a group: its settings, libraries and machine description,
    the rows measured so far (``rows``; with --merge, ``kept`` holds the
    earlier run's rows of other cells), the check failures and notes, and the
    files they are written to."""

    def __init__(self, args, argv, group: spec.Group, M, cells: list, out_dir: str):
        self.args, self.argv, self.group, self.M, self.cells = args, argv, group, M, cells
        self.cls = group.shaped  # shaped cells (classification, structured)
        self.skip = set(x.strip() for x in args.skip.split(",") if x.strip())
        self.tcfg = timing_config(args)
        self.fl, self.torch, self.jax = import_libraries(self.skip, M)
        fl, torch, jax = self.fl, self.torch, self.jax
        self.ncpu = os.cpu_count() or 1
        self.thread_counts = (sorted({int(x) for x in args.threads.split(",") if x.strip()}) if args.threads
                              else sorted({1, self.ncpu}))
        self.machine = f"{cpu_model()} ({self.ncpu} cores)"
        self.simd = fl.simd_target() if fl is not None else ""
        self.versions = {
            "fastloss": getattr(fl, "__version__", "") if fl else None,
            "numpy": np.__version__,
            "torch": torch.__version__ if torch else None,
            "jax": jax.__version__ if jax else None,
            "python": platform.python_version(),
        }
        self.thr = Threads(fl, torch)
        self.rows: list[dict] = []
        # Read bandwidth, measured before and after the loss timings; the floor
        # uses the higher of the two per thread count (a shared machine only
        # ever makes it look lower).
        self.bw_bytes = (64 << 20) if args.quick else (256 << 20)
        self.bw_runs = {th: [] for th in self.thread_counts}
        self.floor_cells = []  # (loss, n, dtype, shape, bytes by op): floor rows are written once the bandwidth is final
        self.csv_path = os.path.join(out_dir, group.stem + ".csv")
        self.json_path = os.path.join(out_dir, group.stem + ".json")
        self.table_path = os.path.join(out_dir, group.table)
        self.checks = []
        self.notes = []  # implementations skipped (factory failed, e.g. a fastloss function not built yet)
        self.kept, self.merged_runs = [], []

    def start(self):
        """Starts the clock; warns when the machine is already loaded; prints
        the machine, SIMD target, thread counts and library versions."""
        self.t_start = time.time()
        self.load_start = os.getloadavg()
        if self.load_start[0] > 0.5:
            print(f"[bench] warning: load average {self.load_start[0]:.2f} at start: other processes share the "
                  f"{self.ncpu} cores; multi-thread numbers will suffer", file=sys.stderr, flush=True)
        print(f"[bench] {self.machine}; SIMD {self.simd or 'n/a'}; threads {self.thread_counts}; "
              + ", ".join(f"{k} {v}" for k, v in self.versions.items() if v), flush=True)

    def row(self, op, impl, loss, n, dtype, threads, med, p20, p80, inner="", samples="", shape=None):
        """Appends one CSV row (times in seconds) and returns it."""
        v = self.versions
        r = dict(op=op, impl=impl, loss=loss, n=n, dtype=dtype, threads=threads,
                 median_s=f"{med:.6e}", p20_s=f"{p20:.6e}", p80_s=f"{p80:.6e}",
                 version=v.get(impl) or v["numpy"], simd_target=self.simd, machine=self.machine,
                 inner=inner, samples=samples, shape=shape_str(shape) if shape else str(n))
        self.rows.append(r)
        return r

    def measure_bandwidth(self, when):
        """Read bandwidth at every thread count (bench/floor.py): its rows
        (op=read_bandwidth) and an entry of bw_runs tagged ``when``."""
        quick = self.args.quick
        for th in self.thread_counts:
            m = floor_mod.measure_read_bandwidth(th, nbytes=self.bw_bytes, repeats=5 if quick else 9)
            m["when"] = when
            self.bw_runs[th].append(m)
            for name, k in m["kernels"].items():
                self.row("read_bandwidth", "floor", name, k["total_bytes"], "uint8", th,
                         k["median_s"], k["p20_s"], k["p80_s"], samples=len(k["samples_s"]))
            print(f"[bench] read bandwidth {th}T ({when}): {m['gbps']:.1f} GB/s ({m['best']})", flush=True)
        gc.collect()

    def load_merge(self):
        """--merge with an existing CSV: keeps its rows of the cells not
        measured now (and every read_bandwidth row), the earlier runs'
        metadata (merged_runs) and their checks and notes of those cells."""
        if not (self.args.merge and os.path.exists(self.csv_path)):
            return
        now = {(loss, shape_str(shape) if self.cls else str(shape[0]), dtype) for loss, shape, dtype in self.cells}
        with open(self.csv_path, newline="") as f:
            for r in csv.DictReader(f):
                r.setdefault("shape", r["n"])
                if r["op"] == "read_bandwidth" or (r["loss"], r["shape"] or r["n"], r["dtype"]) not in now:
                    self.kept.append({k: r.get(k, "") for k in COLUMNS})
        if os.path.exists(self.json_path):
            with open(self.json_path) as f:
                old = json.load(f)["meta"]
            self.merged_runs = old.pop("merged_runs", []) + [old]
            self.checks += [c for c in old.get("checks", [])
                            if not any(f" {loss} n={sz} {dt} " in c for loss, sz, dt in now)]
            self.notes += [c for c in old.get("notes", [])
                           if not any(f" {loss} n={sz} {dt}:" in c for loss, sz, dt in now)]
        print(f"[bench] --merge: keeping {len(self.kept)} rows of {self.csv_path}", flush=True)

    def flush_csv(self):
        """Writes the kept and measured rows (rewritten after every cell)."""
        with open(self.csv_path, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=COLUMNS)
            w.writeheader()
            w.writerows(self.kept + self.rows)

    def run_cell(self, loss, shape, dtype):
        """Measures one (loss, shape, dtype): builds the inputs, records the
        floor's bytes, checks and times every implementation round-robin,
        appends their rows and rewrites the CSV."""
        t_group = time.time()
        n = int(np.prod(shape))
        tag_size = shape_str(shape) if self.cls else str(n)
        # the inputs in the loss's positional order: (y_true, y_pred) for regression /
        # classification, up to three arrays for the structured group
        data = tuple(self.M.make_data(loss, shape, np.dtype(dtype)))
        self.floor_cells.append((loss, n, dtype, shape if self.cls else None,
                                 spec.floor_bytes(self.M.SPECS[loss], data)))
        cases = self.build_cases(loss, tag_size, dtype, data)
        self.check_and_calibrate(cases, loss, tag_size, dtype, data)
        gc.collect()
        timing.measure_group(cases, settle_s=self.args.settle)
        self.record(cases, loss, n, dtype, shape if self.cls else None)
        del cases, data  # large buffers die here
        gc.collect()
        self.flush_csv()
        print(f"[bench] {loss:<13} {'shape' if self.cls else 'n'}={tag_size:<11} {dtype}: "
              f"{time.time() - t_group:5.1f}s (total {time.time() - self.t_start:6.1f}s)", flush=True)

    def build_cases(self, loss, tag_size, dtype, data) -> list[timing.Case]:
        """The timing cases of one cell: fastloss and torch at every thread
        count, NumPy on 1 thread, JAX on all; an implementation whose factory
        fails is skipped with a note. The cases hold the only references to
        the factories' functions (and their buffers)."""
        M, fl, torch, jax = self.M, self.fl, self.torch, self.jax

        def factory(impl, make):
            """{op: fn} from the module's factory; a failure skips the impl with a note."""
            try:
                return make()
            except Exception as e:  # noqa: BLE001
                note = f"{impl} {loss} n={tag_size} {dtype}: skipped: {type(e).__name__}: {e}"
                self.notes.append(note)
                print(f"[bench] NOTE {note}", file=sys.stderr, flush=True)
                return {}

        cases: list[timing.Case] = []
        if fl is not None:
            fns = factory("fastloss", lambda: spec.fastloss_impl(fl, M.SPECS[loss], *data))
            for th in self.thread_counts:
                for op, fn in fns.items():
                    cases.append(timing.Case(op, "fastloss", th, fn, self.thr.setter("fastloss", th)))
        if "numpy" not in self.skip:
            for op, fn in factory("numpy", lambda: M.numpy_baseline(loss, *data)).items():
                cases.append(timing.Case(op, "numpy", 1, fn))
        if torch is not None:
            fns = factory("torch", lambda: M.torch_impl(torch, loss, *data))
            for th in self.thread_counts:
                for op, fn in fns.items():
                    cases.append(timing.Case(op, "torch", th, fn, self.thr.setter("torch", th)))
        if jax is not None:
            for op, fn in factory("jax", lambda: M.jax_impl(jax, loss, *data)).items():
                cases.append(timing.Case(op, "jax", "all", fn))
        return cases

    def check_and_calibrate(self, cases, loss, tag_size, dtype, data):
        """Unless --no-check, checks each case against the float64 reference
        (a mismatch is listed in checks, the case is timed anyway); then
        calibrates its inner loop. A case that raises gets its error set and
        is not timed."""
        no_check = self.args.no_check
        if not no_check:
            ref = self.M.reference(loss, *data)
        for c in cases:
            try:
                c.activate()
                if not no_check:
                    msg = spec.check(c.fn, ref, dtype, self.group.value_rtol)
                    if msg:
                        tag = f"{c.impl} {c.op} {loss} n={tag_size} {dtype} threads={c.threads}"
                        self.checks.append(f"{tag}: {msg}")
                        print(f"[bench] CHECK {tag}: {msg}", file=sys.stderr, flush=True)
                timing.calibrate(c, warmed=not no_check, **self.tcfg)
            except Exception as e:  # noqa: BLE001
                c.error = f"{type(e).__name__}: {e}"
                print(f"[bench] {c.impl} {c.op} {loss} n={tag_size} {dtype}: {c.error}", file=sys.stderr)

    def record(self, cases, loss, n, dtype, shape):
        """A row per case that ran (median, p20, p80 of its samples)."""
        for c in cases:
            if c.error is None and c.samples:
                med, p20, p80 = c.stats()
                self.row(c.op, c.impl, loss, n, dtype, c.threads, med, p20, p80, c.inner, len(c.samples),
                         shape=shape)

    def write_floor_rows(self):
        """Per thread count, the best bandwidth measurement (start or end):
        the floor rows of every cell (bytes / bandwidth, one value per
        bandwidth sample); then rewrites the CSV."""
        self.bw = {th: max(ms, key=lambda m: m["gbps"]) for th, ms in self.bw_runs.items()}
        for loss, n, dtype, shape, nbytes in self.floor_cells:
            for th in self.thread_counts:
                best = self.bw[th]["kernels"][self.bw[th]["best"]]
                for op in ("value", "value_and_grad"):
                    fs = [nbytes[op] / (best["total_bytes"] / s) for s in best["samples_s"]]
                    self.row(op, "floor", loss, n, dtype, th, float(np.median(fs)),
                             float(np.percentile(fs, 20)), float(np.percentile(fs, 80)), shape=shape)
        self.flush_csv()

    def write_json(self):
        """DIR/STEM.json: the run's metadata and every row."""
        args, argv = self.args, self.argv
        meta = {
            "date": _dt.datetime.now().isoformat(timespec="seconds"),
            "group": args.group,
            "floor_bytes": {f"{loss} {shape_str(shape) if shape else n} {dtype}": nbytes
                            for loss, n, dtype, shape, nbytes in self.floor_cells},
            "machine": self.machine, "cpu_count": self.ncpu, "simd_target": self.simd, "versions": self.versions,
            "thread_counts": self.thread_counts,
            "jax_threads": "all (XLA CPU pool; not pinnable per run in one process)",
            "read_bandwidth_gbps": {str(th): {"best": m["best"], "gbps": m["gbps"], "when": m["when"]}
                                    for th, m in self.bw.items()},
            "read_bandwidth_runs": {str(th): [{"when": m["when"],
                                               "kernels": {k: v["gbps"] for k, v in m["kernels"].items()}}
                                              for m in ms] for th, ms in self.bw_runs.items()},
            "bandwidth_buffer_bytes_per_thread": self.bw_bytes,
            "timing": self.tcfg, "settle_s": args.settle,
            "argv": sys.argv[1:] if argv is None else argv,
            "checks": self.checks,
            "notes": self.notes,
            "wall_s": round(time.time() - self.t_start, 1),
            "loadavg_start": self.load_start, "loadavg_end": os.getloadavg(),
        }
        if args.merge:
            meta["merged_runs"] = self.merged_runs
        with open(self.json_path, "w") as f:
            json.dump({"meta": meta, "rows": self.kept + self.rows}, f, indent=1)

    def write_table(self):
        """Renders the group's Markdown tables (bench/table.py) from the CSV,
        writes them to DIR/TABLE and stdout; summarises on stderr."""
        import table  # noqa: E402
        md = table.render(self.csv_path, self.args.group)
        with open(self.table_path, "w") as f:
            f.write(md)
        print()
        print(md)
        json_name = os.path.basename(self.json_path)
        if self.checks:
            print(f"[bench] {len(self.checks)} sanity-check mismatches (see {json_name} meta.checks)",
                  file=sys.stderr)
        if self.notes:
            print(f"[bench] {len(self.notes)} implementations skipped (see {json_name} meta.notes)",
                  file=sys.stderr)
        print(f"[bench] wrote {self.csv_path}, {self.json_path}, {self.table_path} "
              f"in {time.time() - self.t_start:.0f}s", file=sys.stderr)


def main(argv=None):
    """Parses the command line, then measures every cell of the group
    between two bandwidth measurements and writes DIR/STEM.csv, .json and the
    Markdown tables."""
    ap = build_parser()
    args = ap.parse_args(argv)
    group = GROUPS[args.group]
    M = __import__(group.module)
    apply_defaults(args, argv, group, M)
    out_dir = output_dir(args)
    cells = select_cells(ap, args, M, group.shaped)

    run = Run(args, argv, group, M, cells, out_dir)
    run.start()
    run.measure_bandwidth("start")
    run.load_merge()
    for loss, shape, dtype in cells:
        run.run_cell(loss, shape, dtype)
    run.measure_bandwidth("end")
    run.write_floor_rows()
    run.write_json()
    run.write_table()


if __name__ == "__main__":
    warnings.simplefilter("default")
    main()
