"""``fastloss`` / ``python -m fastloss``: the command line.

``fastloss check`` (the default, also with no command): every loss against
NumPy, on a built-in data set. ``fastloss eval LOSS ...``: one loss over
arrays on disk (``.npy``, ``.npz``, Parquet), streamed through its exact
accumulator (``fastloss/_eval_cli.py``; ``fastloss eval --help``).

For each loss of ``fastloss.LOSSES`` it computes the value and the gradient of
the mean with fastloss and with its NumPy float64 reference
(``fastloss.reference``, the readable formula, not tuned for speed), and
prints the largest relative difference and both timings.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import numpy as np

import fastloss as fl
from fastloss import reference

# Rows of _CLASSES classes for the row-wise losses.
_CLASSES = 10
# Options each loss is checked with (the common configuration).
_OPTIONS = {
    "binary_cross_entropy": {"from_logits": True},
    "binary_focal": {"from_logits": True},
    "categorical_cross_entropy": {"from_logits": True},
    "sparse_categorical_cross_entropy": {"from_logits": True},
    "categorical_focal": {"from_logits": True},
}
_LABEL_LOSSES = set(reference.classification.LABEL_ROWS)
_ROW_LOSSES = _LABEL_LOSSES | set(reference.classification.DENSE_ROWS)


def _softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _data(name: str, n: int, dtype, rng):
    if name in _ROW_LOSSES:
        rows = max(n // _CLASSES, 1)
        x = rng.standard_normal((rows, _CLASSES)) * 2
        t = rng.integers(0, _CLASSES, rows)
        if name in _LABEL_LOSSES:
            kind = reference.classification.LABEL_ROW_PREDICTIONS.get(name, "logits")
            if kind == "log_probabilities":
                x = np.log(_softmax(x))
            elif kind == "probabilities":
                x = _softmax(x)
            return t, x.astype(dtype)
        if name in ("kl_divergence", "jensen_shannon"):
            y = _softmax(rng.standard_normal((rows, _CLASSES)))
            return y.astype(dtype), _softmax(x).astype(dtype)
        return np.eye(_CLASSES)[t].astype(dtype), x.astype(dtype)
    if name == "cosine_similarity":
        rows = max(n // _CLASSES, 1)
        return (rng.standard_normal((rows, _CLASSES)).astype(dtype),
                rng.standard_normal((rows, _CLASSES)).astype(dtype))
    if name == "box_iou":
        m = max(n // 4, 1)
        xy = rng.random((m, 2)) * 10
        wh = rng.random((m, 2)) * 3 + 0.5
        t = np.concatenate([xy, xy + wh], -1)
        q = t + rng.standard_normal((m, 4)) * 0.3
        return t.astype(dtype), q.astype(dtype)
    if fl._core.loss_info(name)["driver"] == "regions":
        return (rng.random(n) < 0.3).astype(dtype), rng.random(n).astype(dtype)
    if name == "contrastive":
        return (rng.random(n) < 0.5).astype(dtype), (rng.random(n) * 2).astype(dtype)
    if name in ("binary_cross_entropy", "binary_focal"):
        return (rng.random(n) < 0.5).astype(dtype), (rng.standard_normal(n) * 3).astype(dtype)
    if name in ("hinge", "squared_hinge", "soft_margin"):
        return rng.choice([-1.0, 1.0], n).astype(dtype), rng.standard_normal(n).astype(dtype)
    y = rng.standard_normal(n)
    p = y + rng.standard_normal(n) * 0.5
    if name == "msle":
        y, p = np.abs(y) * 3, np.abs(p) * 3
    elif name == "mape":
        y = np.where(np.abs(y) < 0.1, 0.1, y)
    elif name == "poisson_nll":
        y = rng.poisson(2.0, n).astype(np.float64)
        p = rng.standard_normal(n) * 0.5
    return y.astype(dtype), p.astype(dtype)


def _best_time(fn, budget: float) -> float:
    fn()
    times = []
    t_end = time.perf_counter() + budget
    while True:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        if time.perf_counter() > t_end and len(times) >= 3:
            return float(np.median(times))


def _rel_err(a, b) -> float:
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    scale = max(float(np.max(np.abs(b))) if b.size else 0.0, 1e-300)
    return float(np.max(np.abs(a - b))) / scale if b.size else 0.0


_COMMANDS = """\
commands:
  check    (the default) every loss against its NumPy reference; the options above
  eval     one loss over .npy/.npz/Parquet arrays on disk, streamed through its
           exact accumulator: fastloss eval LOSS --y-true SRC --y-pred SRC ...
           (see: fastloss eval --help)
  --list   every loss and metric: driver, options with their defaults, aliases
  --version  the version and the SIMD targets of this CPU
"""


def _prog() -> str:
    argv0 = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    return "python -m fastloss" if argv0 in ("__main__.py", "-m", "-c", "") else "fastloss"


def main(argv: list[str] | None = None) -> int:
    """The ``fastloss`` console script: ``fastloss eval ...`` evaluates a loss
    over files (``fastloss._eval_cli``); ``fastloss check ...`` or no command
    checks every loss against NumPy. Returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in ("--version", "-V"):
        print(f"fastloss {fl.__version__} (SIMD target {fl.simd_target()}; targets available: "
              f"{', '.join(fl._core.available_simd_targets())})")
        return 0
    if argv and argv[0] == "--list":
        return _list()
    if argv and argv[0] == "eval":
        from ._eval_cli import main as eval_main

        return eval_main(argv[1:])
    if argv and argv[0] == "check":
        return check(argv[1:], prog=f"{_prog()} check")
    return check(argv, prog=_prog())


def _list() -> int:
    """``fastloss --list``: every loss and metric of the registry, one a line:
    its name, driver (or kind), aliases and options with their defaults."""
    rows = []
    for name in list(fl._core.loss_names()) + list(fl._core.multi_loss_names()):
        info = fl._core.loss_info(name)
        opts = ", ".join(f"{o['name']}={o['default']!r}" for o in info["options"])
        aliases = " ".join(info["aliases"])
        kind = info["driver"] + (" metric" if info.get("metric") else "")
        rows.append((name, kind, aliases, opts))
    w0 = max(len(r[0]) for r in rows)
    w1 = max(len(r[1]) for r in rows)
    for name, kind, aliases, opts in rows:
        extra = f"  (also {aliases})" if aliases else ""
        print(f"{name:<{w0}}  {kind:<{w1}}  {opts}{extra}".rstrip())
    return 0


def check(argv: list[str] | None = None, prog: str = "fastloss check") -> int:
    """``fastloss check``: every loss against its NumPy float64 reference."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Check every fastloss loss against its NumPy float64 reference "
        "(fastloss.reference) on a synthetic data set (value and gradient of the mean) "
        "and compare their speed.",
        epilog=_COMMANDS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-n", "--size", type=float, default=1e6, help="elements (default 1e6)")
    parser.add_argument(
        "--dtype", choices=["float32", "float64"], default="float32", help="default float32"
    )
    parser.add_argument("--threads", type=int, default=None, help="fastloss threads")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--time", type=float, default=0.2, help="seconds spent timing each call (default 0.2)"
    )
    args = parser.parse_args(argv)
    if args.threads is not None:
        fl.set_num_threads(args.threads)
    n = int(args.size)
    dtype = np.dtype(args.dtype)
    rng = np.random.default_rng(args.seed)
    tol = 1e-4 if dtype == np.float32 else 1e-10

    print(f"fastloss {fl.__version__}  numpy {np.__version__}  python {platform.python_version()}")
    print(
        f"SIMD target {fl.simd_target()}, {fl.get_num_threads()} thread(s) of {os.cpu_count()}, "
        f"N = {n:,}, {dtype.name}; value and gradient of the mean"
    )
    header = (
        f"{'loss':<33} {'max rel err':>11} {'fastloss':>10} {'numpy':>10} {'speed-up':>8}  ok"
    )
    print(header)
    print("-" * len(header))
    failures = 0
    for name, loss in fl.LOSSES.items():
        y, p = _data(name, n, dtype, rng)
        opts = _OPTIONS.get(name, {})

        def ref(y=y, p=p, name=name, opts=opts):
            return reference.value_and_grad(name, y, p, **opts)

        v_ref, g_ref = ref()
        v, g = loss.value_and_grad(y, p, **opts)
        err = max(_rel_err(v, v_ref), _rel_err(g, g_ref))
        ok = err <= tol
        failures += not ok
        t_fl = _best_time(lambda: loss.value_and_grad(y, p, **opts), args.time)
        t_np = _best_time(ref, args.time)
        print(
            f"{name:<33} {err:>11.2e} {t_fl * 1e3:>8.3f}ms {t_np * 1e3:>8.3f}ms "
            f"{t_np / t_fl:>7.1f}x  {'yes' if ok else 'NO'}"
        )
    print("-" * len(header))
    print("all losses agree with NumPy" if not failures else f"{failures} loss(es) disagree")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
