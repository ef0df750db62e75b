"""``python -m fastloss``: every loss against NumPy, on a built-in data set.

For each loss it computes the value and the gradient with fastloss and with
the NumPy expression a tutorial would write, and prints the largest relative
difference and both timings.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from typing import Callable

import numpy as np

import fastloss as fl

# NumPy references: (value, gradient) of the mean, in float64 unless the
# inputs are float32. `o` holds the loss's options.
_NUMPY: dict[str, Callable[..., tuple[np.ndarray, np.ndarray]]] = {}


def _ref(name: str):
    def register(fn):
        _NUMPY[name] = fn
        return fn

    return register


@_ref("mse")
def _mse(y, p, o):
    r = p - y
    return np.mean(r**2), 2 * r / r.size


@_ref("mae")
def _mae(y, p, o):
    r = p - y
    return np.mean(np.abs(r)), np.sign(r) / r.size


@_ref("huber")
def _huber(y, p, o):
    d = o.get("delta", 1.0)
    r = p - y
    a = np.abs(r)
    v = np.where(a <= d, 0.5 * r**2, d * (a - 0.5 * d))
    return np.mean(v), np.clip(r, -d, d) / r.size


@_ref("smooth_l1")
def _smooth_l1(y, p, o):
    b = o.get("beta", 1.0)
    r = p - y
    a = np.abs(r)
    v = np.where(a < b, 0.5 * r**2 / b, a - 0.5 * b)
    return np.mean(v), np.where(a < b, r / b, np.sign(r)) / r.size


@_ref("log_cosh")
def _log_cosh(y, p, o):
    r = p - y
    return np.mean(np.log(np.cosh(r))), np.tanh(r) / r.size


@_ref("msle")
def _msle(y, p, o):
    d = np.log1p(p) - np.log1p(y)
    return np.mean(d**2), 2 * d / (1 + p) / d.size


@_ref("mape")
def _mape(y, p, o):
    den = np.maximum(np.abs(y), o.get("eps", np.finfo(np.float64).eps))
    r = p - y
    return np.mean(np.abs(r) / den), np.sign(r) / den / r.size


@_ref("poisson_nll")
def _poisson(y, p, o):
    e = np.exp(p)
    return np.mean(e - y * p), (e - y) / p.size


@_ref("quantile")
def _quantile(y, p, o):
    q = o.get("q", 0.5)
    e = y - p
    g = np.where(e > 0, -q, np.where(e < 0, 1 - q, 0.0))
    return np.mean(np.maximum(q * e, (q - 1) * e)), g / e.size


def _data(name: str, n: int, dtype, rng):
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m fastloss",
        description="Check every fastloss loss against NumPy on a synthetic data set "
        "(value and gradient of the mean) and compare their speed.",
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
        f"{'loss':<12} {'max rel err':>11} {'fastloss':>10} {'numpy':>10} {'speed-up':>8}  ok"
    )
    print(header)
    print("-" * len(header))
    failures = 0
    for name, loss in fl.LOSSES.items():
        y, p = _data(name, n, dtype, rng)
        ref = _NUMPY[name]
        with np.errstate(all="ignore"):
            v_ref, g_ref = ref(y.astype(np.float64), p.astype(np.float64), {})
        v, g = loss.value_and_grad(y, p)
        err = max(_rel_err(v, v_ref), _rel_err(g, g_ref))
        ok = err <= tol
        failures += not ok
        t_fl = _best_time(lambda: loss.value_and_grad(y, p), args.time)
        with np.errstate(all="ignore"):
            t_np = _best_time(lambda: ref(y, p, {}), args.time)
        print(
            f"{name:<12} {err:>11.2e} {t_fl * 1e3:>8.3f}ms {t_np * 1e3:>8.3f}ms "
            f"{t_np / t_fl:>7.1f}x  {'yes' if ok else 'NO'}"
        )
    print("-" * len(header))
    print("all losses agree with NumPy" if not failures else f"{failures} loss(es) disagree")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
