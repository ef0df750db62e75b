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


# --- Classification. Row-wise losses run on rows of _CLASSES classes. ---
_CLASSES = 10
# Options each loss is checked with (the common configuration).
_OPTIONS = {
    "binary_cross_entropy": {"from_logits": True},
    "binary_focal": {"from_logits": True},
    "categorical_cross_entropy": {"from_logits": True},
    "sparse_categorical_cross_entropy": {"from_logits": True},
    "categorical_focal": {"from_logits": True},
}
_LABEL_LOSSES = {"sparse_categorical_cross_entropy", "nll", "multi_margin"}
_ROW_LOSSES = _LABEL_LOSSES | {
    "categorical_cross_entropy", "categorical_focal", "categorical_hinge",
    "kl_divergence", "jensen_shannon",
}


def _sigmoid(x):
    return 0.5 * (1 + np.tanh(0.5 * x))


def _softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


@_ref("binary_cross_entropy")
def _bce(y, x, o):
    v = np.logaddexp(0, x) - x * y
    return np.mean(v), (_sigmoid(x) - y) / x.size


@_ref("binary_focal")
def _binary_focal(y, x, o):
    p = _sigmoid(x)
    ce = np.logaddexp(0, x) - x * y
    q = p * (1 - y) + (1 - p) * y
    at = 0.25 * y + 0.75 * (1 - y)
    dq = p * (1 - p) * (1 - 2 * y)
    g = at * ((p - y) * q**2 + ce * 2 * q * dq)
    return np.mean(at * ce * q**2), g / x.size


@_ref("hinge")
def _hinge(y, p, o):
    z = 1 - y * p
    return np.mean(np.maximum(z, 0)), np.where(z > 0, -y, 0.0) / p.size


@_ref("squared_hinge")
def _squared_hinge(y, p, o):
    h = np.maximum(1 - y * p, 0)
    return np.mean(h**2), -2 * y * h / p.size


@_ref("soft_margin")
def _soft_margin(y, p, o):
    return np.mean(np.logaddexp(0, -y * p)), -y * _sigmoid(-y * p) / p.size


@_ref("categorical_cross_entropy")
def _cce(y, x, o):
    lse = np.log(np.exp(x - x.max(-1, keepdims=True)).sum(-1, keepdims=True)) + x.max(-1, keepdims=True)
    v = (y * (lse - x)).sum(-1)
    return np.mean(v), (_softmax(x) * y.sum(-1, keepdims=True) - y) / v.size


@_ref("sparse_categorical_cross_entropy")
def _sparse_cce(t, x, o):
    q = _softmax(x)
    rows = np.arange(x.shape[0])
    g = q.copy()
    g[rows, t] -= 1
    return np.mean(-np.log(q[rows, t])), g / x.shape[0]


@_ref("nll")
def _nll(t, x, o):
    rows = np.arange(x.shape[0])
    g = np.zeros_like(x)
    g[rows, t] = -1.0 / x.shape[0]
    return np.mean(-x[rows, t]), g


@_ref("multi_margin")
def _multi_margin(t, x, o):
    rows = np.arange(x.shape[0])
    z = 1 - x[rows, t][:, None] + x
    z[rows, t] = 0
    d = (z > 0) / x.shape[1]
    g = d.astype(x.dtype)
    g[rows, t] = -d.sum(-1)
    return np.mean(np.maximum(z, 0).sum(-1) / x.shape[1]), g / x.shape[0]


@_ref("categorical_focal")
def _categorical_focal(y, x, o):
    q = _softmax(x)
    lq = np.log(q)
    w = 0.25 * y * (1 - q) ** 2
    d = -w * (1 - 2 * q * lq / (1 - q))
    g = d - q * d.sum(-1, keepdims=True)
    return np.mean((-w * lq).sum(-1)), g / x.shape[0]


@_ref("categorical_hinge")
def _categorical_hinge(y, p, o):
    pos = (y * p).sum(-1)
    negs = (1 - y) * p
    k = negs.argmax(-1)
    z = negs.max(-1) - pos + 1
    g = -y.copy()
    g[np.arange(p.shape[0]), k] += 1 - y[np.arange(p.shape[0]), k]
    g *= (z > 0)[:, None]
    return np.mean(np.maximum(z, 0)), g / p.shape[0]


@_ref("kl_divergence")
def _kl(t, p, o):
    v = (t * (np.log(t) - np.log(p))).sum(-1)
    return np.mean(v), -t / p / p.shape[0]


@_ref("jensen_shannon")
def _jsd(P, Q, o):
    M = 0.5 * (P + Q)
    v = (0.5 * P * (np.log(P) - np.log(M)) + 0.5 * Q * (np.log(Q) - np.log(M))).sum(-1)
    return np.mean(v), 0.5 * (np.log(Q) - np.log(M)) / Q.shape[0]


# --- Segmentation, detection, metric learning (one score for the whole array
# for the overlap losses; boxes of 4 coordinates; rows of _CLASSES). ---
@_ref("dice")
def _dice(y, p, o):
    s = 1e-6
    i, den = (y * p).sum(), y.sum() + p.sum() + s
    num = 2 * i + s
    return 1 - num / den, -(2 * y / den - num / den**2)


@_ref("jaccard")
def _jaccard(y, p, o):
    s = 1e-6
    i = (y * p).sum()
    num, den = i + s, y.sum() + p.sum() - i + s
    return 1 - num / den, -((y * den + num * y) / den**2 - num / den**2)


def _tversky_parts(y, p):
    s = 1e-6
    i = (y * p).sum()
    num = i + s
    den = i + 0.5 * (p.sum() - i) + 0.5 * (y.sum() - i) + s
    ti = num / den
    # d den / dp = 0.5 (y... ): den = 0.5 (Sp + Sy) + s
    dti = y / den - num * 0.5 / den**2
    return ti, dti


@_ref("tversky")
def _tversky(y, p, o):
    ti, dti = _tversky_parts(y, p)
    return 1 - ti, -dti


@_ref("focal_tversky")
def _focal_tversky(y, p, o):
    ti, dti = _tversky_parts(y, p)
    return (1 - ti) ** 0.75, -0.75 * (1 - ti) ** -0.25 * dti


@_ref("box_iou")
def _box_iou(t, p, o):
    iw = np.minimum(p[:, 2], t[:, 2]) - np.maximum(p[:, 0], t[:, 0])
    ih = np.minimum(p[:, 3], t[:, 3]) - np.maximum(p[:, 1], t[:, 1])
    ov = (iw > 0) & (ih > 0)
    inter = np.where(ov, iw * ih, 0.0)
    w, h = p[:, 2] - p[:, 0], p[:, 3] - p[:, 1]
    union = w * h + (t[:, 2] - t[:, 0]) * (t[:, 3] - t[:, 1]) - inter
    ue = union + 1e-7
    d_inter = np.where(ov, -(ue + inter) / ue**2, 0.0)
    d_area = inter / ue**2
    def side(a, b):  # d max(a, b) / da as autograd: 1, 1/2 on a tie, 0
        return (a > b) + 0.5 * (a == b)

    gx1 = -d_area * h - d_inter * ih * side(p[:, 0], t[:, 0])
    gx2 = d_area * h + d_inter * ih * side(t[:, 2], p[:, 2])
    gy1 = -d_area * w - d_inter * iw * side(p[:, 1], t[:, 1])
    gy2 = d_area * w + d_inter * iw * side(t[:, 3], p[:, 3])
    n = p.shape[0]
    return np.mean(1 - inter / ue), np.stack([gx1, gy1, gx2, gy2], -1) / n


@_ref("cosine_similarity")
def _cosine(y, p, o):
    ny = np.maximum(np.linalg.norm(y, axis=-1, keepdims=True), 1e-8)
    npp = np.maximum(np.linalg.norm(p, axis=-1, keepdims=True), 1e-8)
    cos = (y * p).sum(-1, keepdims=True) / (ny * npp)
    g = -(y / (ny * npp) - cos * p / npp**2)
    return np.mean(1 - cos), g / p.shape[0]


@_ref("contrastive")
def _contrastive(y, d, o):
    h = np.maximum(1.0 - d, 0)
    return np.mean(y * d**2 + (1 - y) * h**2), (2 * y * d - 2 * (1 - y) * h) / d.size


def _data(name: str, n: int, dtype, rng):
    if name in _ROW_LOSSES:
        rows = max(n // _CLASSES, 1)
        x = rng.standard_normal((rows, _CLASSES)) * 2
        t = rng.integers(0, _CLASSES, rows)
        if name in _LABEL_LOSSES:
            if name == "nll":
                x = np.log(_softmax(x))
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
    if name in ("dice", "jaccard", "tversky", "focal_tversky"):
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
        f"{'loss':<33} {'max rel err':>11} {'fastloss':>10} {'numpy':>10} {'speed-up':>8}  ok"
    )
    print(header)
    print("-" * len(header))
    failures = 0
    for name, loss in fl.LOSSES.items():
        y, p = _data(name, n, dtype, rng)
        ref = _NUMPY[name]
        opts = _OPTIONS.get(name, {})
        y64 = y if y.dtype.kind in "iu" else y.astype(np.float64)
        with np.errstate(all="ignore"):
            v_ref, g_ref = ref(y64, p.astype(np.float64), {})
        v, g = loss.value_and_grad(y, p, **opts)
        err = max(_rel_err(v, v_ref), _rel_err(g, g_ref))
        ok = err <= tol
        failures += not ok
        t_fl = _best_time(lambda: loss.value_and_grad(y, p, **opts), args.time)
        with np.errstate(all="ignore"):
            t_np = _best_time(lambda: ref(y, p, {}), args.time)
        print(
            f"{name:<33} {err:>11.2e} {t_fl * 1e3:>8.3f}ms {t_np * 1e3:>8.3f}ms "
            f"{t_np / t_fl:>7.1f}x  {'yes' if ok else 'NO'}"
        )
    print("-" * len(header))
    print("all losses agree with NumPy" if not failures else f"{failures} loss(es) disagree")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
