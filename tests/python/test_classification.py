"""The classification losses (issue #3) against the NumPy float64 reference of
fastloss.reference.classification: every loss/option x reduction x dtype x shape
(class counts 1..32000, any class axis, 1-D rows, empty input), weights, strides,
out=, finite differences, the edge cases of the spec (saturated and infinite
logits, masked classes, ignored rows, label dtypes and ranges, option errors),
every SIMD target and concurrent callers."""

import concurrent.futures
import functools
import math
import threading

import numpy as np
import pytest

import fastloss as fl
import fastloss.testing
from fastloss.reference import classification as ref
from checks import DTYPES, REDUCTIONS, assert_close, check_grad_type, check_value_type, floor_for

BCE, FOCAL, CCE, CFOCAL = "binary_cross_entropy", "binary_focal", "categorical_cross_entropy", "categorical_focal"
SCCE = "sparse_categorical_cross_entropy"
CW = "class_weights:random"  # resolved to an array of length C per call

BIN_CONFIGS = [
    (BCE, {}),
    (BCE, {"from_logits": True}),
    (BCE, {"from_logits": True, "pos_weight": 2.5}),
    (BCE, {"from_logits": True, "label_smoothing": 0.1, "pos_weight": 0.5}),
    (BCE, {"label_smoothing": 0.2, "pos_weight": 3.0}),
    (BCE, {"eps": 1e-3}),
    (FOCAL, {}),
    (FOCAL, {"from_logits": True}),
    (FOCAL, {"from_logits": True, "alpha": None, "gamma": 0.0}),
    (FOCAL, {"from_logits": True, "gamma": 0.5, "alpha": 0.75}),
    (FOCAL, {"from_logits": True, "gamma": 3.0, "label_smoothing": 0.1}),
    (FOCAL, {"gamma": 0.0, "alpha": None}),
    (FOCAL, {"gamma": 1.0, "alpha": 0.6, "label_smoothing": 0.05, "eps": 1e-4}),
    ("hinge", {}),
    ("squared_hinge", {}),
    ("soft_margin", {}),
]

ROW_CONFIGS = [
    (CCE, {}),
    (CCE, {"from_logits": True}),
    (CCE, {"from_logits": True, "label_smoothing": 0.1}),
    (CCE, {"label_smoothing": 0.2}),
    (CCE, {"eps": 1e-3}),
    (CFOCAL, {}),
    (CFOCAL, {"from_logits": True}),
    (CFOCAL, {"from_logits": True, "alpha": None, "gamma": 0.0}),
    (CFOCAL, {"from_logits": True, "gamma": 0.5}),
    (CFOCAL, {"gamma": 1.5, "alpha": 0.5, "label_smoothing": 0.1}),
    (CFOCAL, {"gamma": 0.0, "alpha": None}),
    ("categorical_hinge", {}),
    ("kl_divergence", {}),
    ("kl_divergence", {"log_input": True}),
    ("kl_divergence", {"log_target": True}),
    ("kl_divergence", {"log_input": True, "log_target": True}),
    ("jensen_shannon", {}),
    ("jensen_shannon", {"beta": 0.0}),
    ("jensen_shannon", {"beta": 1.0}),
    ("jensen_shannon", {"beta": 0.3}),
    ("jensen_shannon", {"log_input": True}),
    ("jensen_shannon", {"log_input": True, "beta": 0.0}),
    ("jensen_shannon", {"log_input": True, "beta": 1.0}),
    ("jensen_shannon", {"log_input": True, "beta": 0.8}),
    (SCCE, {}),
    (SCCE, {"from_logits": True}),
    (SCCE, {"from_logits": True, "label_smoothing": 0.1}),
    (SCCE, {"from_logits": True, "ignore_index": -100}),
    (SCCE, {"from_logits": True, "ignore_index": 0}),
    (SCCE, {"from_logits": True, "class_weights": CW}),
    (SCCE, {"from_logits": True, "ignore_index": -100, "label_smoothing": 0.2, "class_weights": CW}),
    (SCCE, {"label_smoothing": 0.1, "class_weights": CW, "ignore_index": -1}),
    ("nll", {}),
    ("nll", {"ignore_index": -100}),
    ("nll", {"class_weights": CW}),
    ("nll", {"ignore_index": -1, "class_weights": CW}),
    ("multi_margin", {}),
    ("multi_margin", {"p": 2}),
    ("multi_margin", {"margin": 0.5}),
    ("multi_margin", {"class_weights": CW}),
    ("multi_margin", {"p": 2, "margin": 2.0, "class_weights": CW}),
]

ALL_CONFIGS = BIN_CONFIGS + ROW_CONFIGS

# (y_pred shape, class axis): class counts 1..32000, the class axis first, in
# the middle and last, 1-D single rows and empty row sets.
ROW_SHAPES = [
    ((6, 2), -1),
    ((5, 3), -1),
    ((4, 10), 1),
    ((3, 17), -1),
    ((10,), -1),
    ((9,), 0),
    ((2, 5, 3), 1),
    ((5, 4), 0),
    ((3, 2, 6), -1),
    ((6, 1), -1),
    ((0, 5), -1),
    ((0, 4, 3), 1),
    ((2, 1000), -1),
    ((1, 32000), -1),
]
BIN_SHAPES = [(), (1,), (7,), (16,), (33,), (4, 9), (2, 3, 5), (0,), (2, 0), (1000,)]

INT_DTYPES = [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64]
TRANSCENDENTAL = {BCE, FOCAL, "soft_margin", CCE, CFOCAL, "kl_divergence", "jensen_shannon", SCCE}


def dtype_id(dtype):
    return np.dtype(dtype).name


def config_id(config):
    name, opts = config
    short = {BCE: "bce", CCE: "cce", SCCE: "sparse_cce", FOCAL: "bfocal", CFOCAL: "cfocal"}.get(name, name)
    if not opts:
        return short
    return short + "-" + "-".join(f"{k}={'cw' if v is CW else v}" for k, v in opts.items())


BIN_IDS = [config_id(c) for c in BIN_CONFIGS]
ROW_IDS = [config_id(c) for c in ROW_CONFIGS]
ALL_IDS = [config_id(c) for c in ALL_CONFIGS]


def rtol_for(name, dtype):
    name = ref.canonical(name)
    if np.dtype(dtype) == np.float32:
        return 3e-5 if name in TRANSCENDENTAL else 1e-5
    return 1e-10 if name in TRANSCENDENTAL else 1e-12


def rows_shape(name, opts, shape):
    if ref.is_binary(name):
        return tuple(shape)
    ax = opts.get("axis", -1) % len(shape)
    return tuple(shape[:ax]) + tuple(shape[ax + 1 :])


def resolve(opts, C):
    """Options with the class-weights placeholder replaced by an array of length C."""
    o = dict(opts)
    if o.get("class_weights") is CW:
        o["class_weights"] = np.random.default_rng(C).uniform(0.3, 3.0, C)
    return o


# --------------------------------------------------------------------------
# Data inside each loss's domain
# --------------------------------------------------------------------------


def _rng(seed, shape, tag):
    return np.random.default_rng([seed, len(shape), int(np.prod(shape)), tag])


def make_binary(name, opts, shape, dtype, seed, fd=False):
    """(y_true, y_pred) for an elementwise loss. fd: away from kinks and clip
    boundaries (finite differences)."""
    rng = _rng(seed, shape, 1)
    n = shape
    name = ref.canonical(name)
    if name in (BCE, FOCAL):
        u = rng.random(n)
        y = np.where(u < 0.4, 0.0, np.where(u < 0.8, 1.0, rng.random(n)))
        if opts.get("from_logits"):
            p = rng.normal(0.0, 4.0, n)
            if not fd:
                sat = np.asarray(rng.choice([-30.0, -18.0, 18.0, 30.0], n))
                p = np.where(rng.random(n) < 0.08, sat, p)
        else:
            eps = opts.get("eps", 1e-7)
            p = rng.uniform(0.02, 0.98, n)
            sp = rng.random(n)
            low = np.asarray(rng.choice([eps * 1e-3] if fd else [0.0, eps * 1e-2], n))
            p = np.where(sp < 0.06, low, p)
            if not fd and (np.dtype(dtype) == np.float64 or eps >= 1e-4):
                p = np.where(sp > 0.95, np.asarray(rng.choice([1.0, 1.0 - eps * 1e-2], n)), p)
    elif name in ("hinge", "squared_hinge"):
        y = np.asarray(rng.choice([-1.0, 0.0, 1.0], n))
        p = rng.normal(0.0, 1.5, n)
        yp = np.where(y == 0, -1.0, y)
        p = np.where(np.abs(1.0 - yp * p) < 0.01, p + 0.05, p)
    elif name == "soft_margin":
        y = np.asarray(rng.choice([-1.0, 1.0, 1.0, -1.0, 0.0, 0.5], n))
        p = rng.normal(0.0, 3.0, n)
    else:
        raise KeyError(name)
    return np.asarray(y).astype(dtype), np.asarray(p).astype(dtype)


def _dist(rng, shape, zeros=0.0):
    d = rng.uniform(0.05, 1.0, shape)
    if zeros and shape[-1] > 1:
        z = rng.random(shape) < zeros
        z[..., 0] = False
        d = np.where(z, 0.0, d)
    return d / np.sum(d, axis=-1, keepdims=True)


def _targets(rng, shape):
    """Rows of one-hot and of soft targets (each sums to 1)."""
    R, C = shape[:-1], shape[-1]
    onehot = (np.arange(C) == rng.integers(0, C, R)[..., None]).astype(np.float64)
    soft = _dist(rng, shape, zeros=0.2)
    return np.where((rng.random(R) < 0.5)[..., None], onehot, soft)


def make_rows(name, opts, shape, axis, dtype, seed, fd=False):
    """(y_true, y_pred) for a row loss with the classes along ``axis``; labels
    are int64 for the sparse losses."""
    name = ref.canonical(name)
    rng = _rng(seed, shape, 2)
    ax = axis % len(shape)
    C = shape[ax]
    lshape = tuple(shape[:ax]) + tuple(shape[ax + 1 :]) + (C,)  # classes last
    R = lshape[:-1]
    labels = None
    if name in (CCE, CFOCAL):
        y = _targets(rng, lshape)
        if opts.get("from_logits"):
            p = rng.normal(0.0, 3.0, lshape)
        else:
            p = rng.uniform(0.05, 1.0, lshape)
            if C > 1:
                tiny = rng.random(lshape) < 0.06
                tiny[..., 0] = False
                p = np.where(tiny, opts.get("eps", 1e-7) * 1e-3 if fd else 0.0, p)
    elif name == "categorical_hinge":
        for _ in range(1000):
            y = _targets(rng, lshape) if not fd else (np.arange(C) == rng.integers(0, C, R)[..., None]) * 1.0
            p = rng.normal(0.0, 1.0, lshape)
            if not fd or C < 2:
                break
            v = np.sort((1.0 - y) * p, axis=-1)
            z = v[..., -1] - np.sum(y * p, axis=-1) + 1.0
            if np.all(v[..., -1] - v[..., -2] > 1e-3) and np.all(np.abs(z) > 1e-3):
                break
    elif name == "kl_divergence":
        if opts.get("log_target"):
            y = np.log(_dist(rng, lshape))
        else:
            y = _dist(rng, lshape, zeros=0.2)
        q = _dist(rng, lshape)
        p = np.log(q) if opts.get("log_input") else q
    elif name == "jensen_shannon":
        beta = opts.get("beta", 0.5)
        log_input = opts.get("log_input", False)
        P = _dist(rng, lshape, zeros=0.0 if (log_input or beta == 1.0) else 0.2)
        Q = _dist(rng, lshape)
        if log_input:
            y, p = np.log(P), np.log(Q)
        else:
            y, p = P, Q
    elif name in (SCCE, "nll", "multi_margin"):
        labels = rng.integers(0, C, R)
        ii = opts.get("ignore_index")
        if ii is not None:
            labels = np.where(rng.random(R) < 0.2, ii, labels)
        if name == SCCE:
            if opts.get("from_logits"):
                p = rng.normal(0.0, 3.0, lshape)
            else:
                p = rng.uniform(0.05, 1.0, lshape)
        elif name == "nll":
            p = rng.normal(-2.0, 1.5, lshape)
        else:
            margin = opts.get("margin", 1.0)
            for _ in range(1000):
                p = rng.normal(0.0, 1.0, lshape)
                if not fd:
                    break
                xt = np.take_along_axis(p, labels[..., None], -1)
                z = margin - xt + p
                z = np.where(np.arange(C) == labels[..., None], 1.0, z)
                if np.all(np.abs(z) > 1e-3):
                    break
        y = None
    else:
        raise KeyError(name)
    p = np.moveaxis(np.asarray(p), -1, ax).astype(dtype)
    if labels is not None:
        return np.asarray(labels, dtype=np.int64), p
    return np.moveaxis(np.asarray(y), -1, ax).astype(dtype), p


def make_data(name, opts, shape, axis, dtype, seed, fd=False):
    if ref.is_binary(name):
        return make_binary(name, opts, shape, dtype, seed, fd)
    return make_rows(name, opts, shape, axis, dtype, seed, fd)


# --------------------------------------------------------------------------
# Expected values and the checker
# --------------------------------------------------------------------------


def expected(name, opts, y_true, y_pred, *, weights=None, reduction="mean", rtol=None, same_rtol=None):
    """Reference (value, grad, value_tol, grad_tol) of a call, the inputs first
    rounded to y_pred's dtype as the library computes in it. With same_rtol,
    also the (value_tol, grad_tol) for that rtol (two library results of the
    same call: value_and_grad against value and grad)."""
    dtype = np.asarray(y_pred).dtype
    if rtol is None:
        rtol = rtol_for(name, dtype)
    p = np.asarray(y_pred).astype(np.float64)
    if ref.is_sparse(name):
        y = np.asarray(y_true)
    else:
        y = np.asarray(y_true).astype(dtype).astype(np.float64)
    o = dict(opts)
    for k in ("class_weights", "pos_weight"):
        if isinstance(o.get(k), (np.ndarray, list, tuple)):
            o[k] = np.asarray(o[k]).astype(dtype).astype(np.float64)
    w = None if weights is None else np.asarray(weights).astype(dtype).astype(np.float64)
    t = ref.terms(name, y, p, ulp=float(np.finfo(dtype).eps), **o)
    res = ref.reduce(t, w, reduction, rtol=rtol, floor=floor_for(dtype))
    if same_rtol is None:
        return res
    return res, ref.reduce(t, w, reduction, rtol=same_rtol, floor=floor_for(dtype))[2:]


def call(name, entry, *args, **kw):
    fn = getattr(fl, name)
    if entry == "value":
        return fn(*args, **kw)
    return getattr(fn, entry)(*args, **kw)


ENTRY = ["value", "grad", "value_and_grad"]


def check(name, opts, y_true, y_pred, *, reduction="mean", weights=None, rtol=None, what=""):
    """value, grad and value_and_grad of a call: types and shapes, the numbers
    against the reference, and the fused call against the separate ones."""
    fn = getattr(fl, name)
    dtype = np.asarray(y_pred).dtype
    shape = np.shape(y_pred)
    R = rows_shape(name, opts, shape)
    kw = dict(reduction=reduction, weights=weights, **opts)
    shown = {k: ("array" if isinstance(v, np.ndarray) else v) for k, v in opts.items()}
    what = f"{name}{shown} reduction={reduction} dtype={dtype.name} shape={shape} {what}"

    v = fn(y_true, y_pred, **kw)
    g = fn.grad(y_true, y_pred, **kw)
    vg = fn.value_and_grad(y_true, y_pred, **kw)

    check_value_type(v, reduction, R, dtype, what)
    check_grad_type(g, shape, dtype, what)
    assert g.flags.c_contiguous, f"{what}: grad not C-contiguous"
    assert isinstance(vg, tuple) and len(vg) == 2, f"{what}: value_and_grad returned {type(vg)}"
    v2, g2 = vg
    check_value_type(v2, reduction, R, dtype, what + " value_and_grad")
    check_grad_type(g2, shape, dtype, what + " value_and_grad")

    # fused against separate: 32 ulp of the terms, plus the dtype's inherent
    # allowances (sums of exponentials may be taken in another order)
    same = 32 * float(np.finfo(dtype).eps)
    (ev, eg, tv, tg), (sv, sg) = expected(
        name, opts, y_true, y_pred, weights=weights, reduction=reduction, rtol=rtol, same_rtol=same
    )
    assert_close(v, ev, rtol=0.0, atol=tv, what=what + " value")
    assert_close(g, eg, rtol=0.0, atol=tg, what=what + " grad")
    assert_close(v2, v, rtol=0.0, atol=sv, what=what + " value_and_grad value vs value")
    assert_close(g2, g, rtol=0.0, atol=sg, what=what + " value_and_grad grad vs grad")
    return v, g


# --------------------------------------------------------------------------
# Package API
# --------------------------------------------------------------------------

NAMES = ref.BINARY + ref.DENSE_ROWS + ref.LABEL_ROWS


def test_names_registered():
    for name in NAMES:
        obj = getattr(fl, name)
        assert fl.LOSSES[name] is obj, name
        assert callable(obj) and callable(obj.grad) and callable(obj.value_and_grad), name
        assert isinstance(obj.__doc__, str) and obj.__doc__.strip(), f"{name} has no docstring"
        assert name in fl.__all__, name


def test_aliases():
    assert fl.bce is fl.binary_cross_entropy
    assert fl.cce is fl.categorical_cross_entropy
    assert fl.sparse_cce is fl.sparse_categorical_cross_entropy


def test_regression_losses_still_there():
    for name in ["mse", "mae", "huber", "smooth_l1", "log_cosh", "msle", "mape", "poisson_nll", "quantile"]:
        assert fl.LOSSES[name] is getattr(fl, name)


# --------------------------------------------------------------------------
# The grid
# --------------------------------------------------------------------------


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
@pytest.mark.parametrize("config", BIN_CONFIGS, ids=BIN_IDS)
def test_binary_grid(config, dtype, reduction):
    name, opts = config
    for i, shape in enumerate(BIN_SHAPES):
        y, p = make_binary(name, opts, shape, dtype, i)
        check(name, opts, y, p, reduction=reduction)
        w = _rng(i, shape, 3).uniform(0.5, 2.0, shape)
        check(name, opts, y, p, reduction=reduction, weights=w, what="weighted")


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
@pytest.mark.parametrize("config", ROW_CONFIGS, ids=ROW_IDS)
def test_rows_grid(config, dtype, reduction):
    name, opts = config
    for i, (shape, axis) in enumerate(ROW_SHAPES):
        o = resolve(opts, shape[axis])
        if axis != -1:
            o["axis"] = axis
        y, p = make_rows(name, o, shape, axis, dtype, i)
        check(name, o, y, p, reduction=reduction)
        R = rows_shape(name, o, shape)
        w = _rng(i, R, 4).uniform(0.5, 2.0, R)
        check(name, o, y, p, reduction=reduction, weights=w, what="weighted")


@pytest.mark.parametrize("alias", ["bce", "cce", "sparse_cce"])
def test_aliases_compute_the_same(alias):
    name = ref.canonical(alias)
    opts = {"from_logits": True}
    y, p = make_data(name, opts, (4, 6), -1, np.float64, 5)
    for reduction in REDUCTIONS:
        v, g = check(alias, opts, y, p, reduction=reduction)
        np.testing.assert_array_equal(g, getattr(fl, name).grad(y, p, reduction=reduction, **opts))


@pytest.mark.parametrize("C", [2, 3, 10, 1000, 32000])
@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
def test_class_counts(C, dtype):
    """The big class counts of language models, a few rows each."""
    n = max(1, 2000 // C)
    for name, opts in [
        (SCCE, {"from_logits": True}),
        (SCCE, {"from_logits": True, "label_smoothing": 0.1, "ignore_index": -100, "class_weights": CW}),
        (CCE, {"from_logits": True, "label_smoothing": 0.05}),
        (CFOCAL, {"from_logits": True}),
        ("nll", {"class_weights": CW}),
        ("multi_margin", {"p": 2}),
        ("kl_divergence", {"log_input": True}),
        ("jensen_shannon", {"log_input": True}),
    ]:
        o = resolve(opts, C)
        y, p = make_rows(name, o, (n, C), -1, dtype, C)
        for reduction in REDUCTIONS:
            check(name, o, y, p, reduction=reduction)


# --------------------------------------------------------------------------
# Weights
# --------------------------------------------------------------------------


def row_weight_kinds(R, dtype, rng):
    """Weights broadcastable to the rows shape R = (N, T)."""
    N, T = R
    other = np.float64 if np.dtype(dtype) == np.float32 else np.float32
    big = rng.uniform(0.5, 2.0, (2 * N, 3 * T)).astype(dtype)
    return {
        "per_sample": rng.uniform(0.5, 2.0, (N, 1)).astype(dtype),
        "per_step": (0.9 ** np.arange(T)).astype(dtype),
        "full": rng.uniform(0.5, 2.0, (N, T)).astype(dtype),
        "scalar": 2.5,
        "scalar_0d": np.array(0.75, dtype),
        "int": rng.integers(1, 4, (N, T)),
        "bool": np.arange(N * T).reshape(N, T) % 3 != 1,
        "other_dtype": rng.uniform(0.5, 2.0, (N, T)).astype(other),
        "strided": big[::-2, ::3],
    }


WEIGHT_ROW_CONFIGS = [
    (BCE, {"from_logits": True}),
    (CCE, {"from_logits": True}),
    (CCE, {}),
    (CFOCAL, {"from_logits": True}),
    ("categorical_hinge", {}),
    ("kl_divergence", {}),
    ("jensen_shannon", {}),
    (SCCE, {"from_logits": True, "ignore_index": -100, "class_weights": CW}),
    (SCCE, {}),
    ("nll", {"ignore_index": -100, "class_weights": CW}),
    ("multi_margin", {"class_weights": CW}),
]


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
@pytest.mark.parametrize("config", WEIGHT_ROW_CONFIGS, ids=[config_id(c) for c in WEIGHT_ROW_CONFIGS])
def test_weights_broadcast_to_rows(config, dtype):
    """(N, C, T) input with the classes on axis 1: weights broadcast to (N, T)."""
    name, opts = config
    N, C, T = 4, 5, 6
    o = resolve(opts, C)
    if ref.is_binary(name):
        shape, R = (N, T), (N, T)
    else:
        o["axis"] = 1
        shape, R = (N, C, T), (N, T)
    y, p = make_data(name, o, shape, 1, dtype, 11)
    for kind, w in row_weight_kinds(R, dtype, np.random.default_rng(12)).items():
        for reduction in REDUCTIONS:
            check(name, o, y, p, reduction=reduction, weights=w, what=f"weights={kind}")


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
def test_weighted_mean_denominators(dtype):
    """mean = sum(s*l)/D: D = sum(s) (dense rows, multi_margin: class weights do
    not count), D = sum(s*w_t) over non-ignored rows (sparse_cce, nll)."""
    rng = np.random.default_rng(13)
    N, C = 8, 4
    x = rng.normal(size=(N, C)).astype(dtype)
    t = np.array([0, 1, 2, 3, -100, 1, 2, -100])
    cw = np.array([0.5, 2.0, 1.5, 3.0])
    s = rng.uniform(0.5, 2.0, N)
    keep = t != -100
    for name, opts in [(SCCE, {"from_logits": True}), ("nll", {})]:
        kw = dict(ignore_index=-100, class_weights=cw, **opts)
        per = fl.LOSSES[name](t, x, reduction="none", weights=s, **kw).astype(np.float64)
        assert np.all(per[~keep] == 0)
        total = fl.LOSSES[name](t, x, reduction="sum", weights=s, **kw)
        mean = fl.LOSSES[name](t, x, reduction="mean", weights=s, **kw)
        D = np.sum(s[keep] * cw[t[keep]])
        assert_close(total, np.sum(per), rtol=1e-5 if dtype == np.float32 else 1e-12, what=f"{name} sum")
        assert_close(mean, np.sum(per) / D, rtol=1e-5 if dtype == np.float32 else 1e-12, what=f"{name} mean")
        g_sum = fl.LOSSES[name].grad(t, x, reduction="sum", weights=s, **kw).astype(np.float64)
        g_mean = fl.LOSSES[name].grad(t, x, reduction="mean", weights=s, **kw).astype(np.float64)
        assert_close(g_mean, g_sum / D, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-30, what=f"{name} grad")
    tm = np.where(keep, t, 0)
    per = fl.multi_margin(tm, x, reduction="none", class_weights=cw, weights=s).astype(np.float64)
    mean = fl.multi_margin(tm, x, reduction="mean", class_weights=cw, weights=s)
    assert_close(mean, np.sum(per) / np.sum(s), rtol=1e-5 if dtype == np.float32 else 1e-12, what="multi_margin mean")


ROW_BAD_WEIGHTS = [((4, 5), (4, 5)), ((4, 5), (5,)), ((4, 5), (3,)), ((4, 5), (1, 4)), ((2, 5, 3), (2, 5)), ((7,), (1,))]


@pytest.mark.parametrize("entry", ENTRY)
@pytest.mark.parametrize("shapes", ROW_BAD_WEIGHTS, ids=str)
def test_row_weights_must_broadcast_to_rows(shapes, entry):
    """weights broadcast to the rows shape, not to y_pred's shape."""
    ps, ws = shapes
    axis = 1 if len(ps) == 3 else -1
    R = rows_shape(CCE, {"axis": axis}, ps)
    rng = np.random.default_rng(14)
    x = rng.normal(size=ps)
    y = np.zeros(ps)
    with pytest.raises(ValueError, match="weights"):
        call(CCE, entry, y, x, from_logits=True, axis=axis, weights=np.ones(ws))
    with pytest.raises(ValueError, match="weights"):
        call(SCCE, entry, np.zeros(R, np.int64), x, from_logits=True, axis=axis, weights=np.ones(ws))


# --------------------------------------------------------------------------
# pos_weight
# --------------------------------------------------------------------------


@pytest.mark.parametrize("from_logits", [True, False])
@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
def test_pos_weight_arrays(from_logits, dtype):
    """pos_weight: a float or an array broadcastable to y_pred (per class for
    multi-label (N, T) input, full, per sample)."""
    N, T = 6, 7
    opts = {"from_logits": from_logits}
    y, p = make_binary(BCE, opts, (N, T), dtype, 15)
    rng = np.random.default_rng(15)
    for pw in (rng.uniform(0.5, 4.0, T), rng.uniform(0.5, 4.0, (N, T)), rng.uniform(0.5, 4.0, (N, 1)), 3.0, np.array(0.25)):
        for reduction in REDUCTIONS:
            check(BCE, dict(opts, pos_weight=pw), y, p, reduction=reduction)
            check(BCE, dict(opts, pos_weight=pw, label_smoothing=0.1), y, p, reduction=reduction,
                  weights=rng.uniform(0.5, 2, (N, 1)))
    # pos_weight = 1 is no pos_weight
    np.testing.assert_array_equal(fl.bce.grad(y, p, pos_weight=1.0, **opts), fl.bce.grad(y, p, **opts))


@pytest.mark.parametrize("entry", ENTRY)
def test_pos_weight_bad_shape(entry):
    y, p = np.zeros((6, 7)), np.zeros((6, 7))
    for bad in (np.ones(6), np.ones((7, 6)), np.ones((2, 6, 7))):
        with pytest.raises(ValueError):
            call(BCE, entry, y, p, from_logits=True, pos_weight=bad)


# --------------------------------------------------------------------------
# Strides, layouts, out=
# --------------------------------------------------------------------------

ROW_LAYOUTS = {
    "columns_step2": ((6, 14), -1, lambda a: a[:, ::2], -1),
    "rows_step2": ((10, 5), -1, lambda a: a[::2], -1),
    "reversed": ((5, 7), -1, lambda a: a[::-1, ::-1], -1),
    "transposed": ((7, 5), -1, lambda a: a.T, 0),
    "fortran": ((7, 5), -1, np.asfortranarray, -1),
    "permuted_3d": ((3, 4, 5), 1, lambda a: a.transpose(2, 1, 0), 1),
    "middle_step": ((3, 8, 4), 1, lambda a: a[:, ::2, ::-1], 1),
    "big_strided": ((300, 34), -1, lambda a: a[:, 1::2], -1),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
@pytest.mark.parametrize("layout", list(ROW_LAYOUTS))
@pytest.mark.parametrize("config", ALL_CONFIGS, ids=ALL_IDS)
def test_layouts(config, layout, dtype):
    """Strided, reversed, transposed and permuted inputs: the class axis goes
    where the view puts it."""
    name, opts = config
    base, axis, view, new_axis = ROW_LAYOUTS[layout]
    if ref.is_binary(name):
        y, p = make_binary(name, opts, base, dtype, 21)
        yv, pv, on = view(y), view(p), opts
    else:
        y, p = make_rows(name, resolve(opts, base[axis]), base, axis, dtype, 21)
        pv = view(p)
        na = new_axis % pv.ndim
        on = resolve(opts, pv.shape[na])
        on["axis"] = na
        if ref.is_sparse(name):
            # labels for the view's rows, themselves a strided view
            Rv = rows_shape(name, on, pv.shape)
            rng = np.random.default_rng(21)
            big = rng.integers(0, pv.shape[na], Rv + (2,))
            if opts.get("ignore_index") is not None:
                big = np.where(rng.random(big.shape) < 0.2, opts["ignore_index"], big)
            yv = big[..., 1]
        else:
            yv = view(y)
    for reduction in ("none", "mean"):
        check(name, on, yv, pv, reduction=reduction, what=layout)
    # only one of the two strided
    check(name, on, np.ascontiguousarray(yv), pv, reduction="none", what=layout + " contiguous y_true")
    check(name, on, yv, np.ascontiguousarray(pv), reduction="mean", what=layout + " contiguous y_pred")


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
def test_strided_labels_and_weights(dtype):
    rng = np.random.default_rng(22)
    x = rng.normal(size=(12, 9)).astype(dtype)[::2]  # (6, 9), rows step 2
    big_t = rng.integers(0, 9, (6, 3))
    t = big_t[::-1, 1]  # strided, reversed labels
    w = rng.uniform(0.5, 2.0, (6, 2))[::-1, 0]
    for name, opts in [(SCCE, {"from_logits": True}), ("nll", {}), ("multi_margin", {})]:
        for reduction in REDUCTIONS:
            check(name, opts, t, x, reduction=reduction, weights=w)


SENTINEL = 12345.5


OUT_VIEWS = [
    ((10, 14), lambda b: b[::2, ::2]),
    ((10, 14), lambda b: b[::-2, 1::2]),
    ((14, 10), lambda b: b.T[1::2, ::2]),  # Fortran-ordered and strided
    ((5, 7, 2), lambda b: b[:, :, 1]),
]


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
@pytest.mark.parametrize("config", ALL_CONFIGS, ids=ALL_IDS)
def test_out_strided(config, dtype):
    """out= a strided view: the gradient lands there, nothing else changes, the
    returned array is out."""
    name, opts = config
    fn = getattr(fl, name)
    shape = (5, 7)
    o = resolve(opts, 7)
    y, p = make_data(name, o, shape, -1, dtype, 31)
    for reduction in REDUCTIONS:
        _, eg, _, tg = expected(name, o, y, p, reduction=reduction)
        for bshape, make in OUT_VIEWS:
            big = np.full(bshape, SENTINEL, dtype)
            out = make(big)
            assert out.shape == shape and np.shares_memory(out, big)
            inside = np.zeros(bshape, bool)
            make(inside)[...] = True
            g = fn.grad(y, p, reduction=reduction, out=out, **o)
            assert g is out
            assert_close(out, eg, rtol=0.0, atol=tg, what=f"{name} out grad {reduction}")
            out[...] = SENTINEL
            v, g2 = fn.value_and_grad(y, p, reduction=reduction, out=out, **o)
            assert g2 is out
            assert_close(out, eg, rtol=0.0, atol=tg, what=f"{name} out value_and_grad {reduction}")
            assert np.all(big[~inside] == SENTINEL), "written outside out"


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("config", BIN_CONFIGS, ids=BIN_IDS)
def test_out_is_y_pred_elementwise(config, reduction, dtype):
    """In place: out=y_pred overwrites y_pred with the gradient; the value is
    that of the original y_pred."""
    name, opts = config
    fn = getattr(fl, name)
    y, p = make_binary(name, opts, (3, 11), dtype, 44)
    w = np.random.default_rng(44).uniform(0.5, 2, (3, 1))
    ev, eg, tv, tg = expected(name, opts, y, p, weights=w, reduction=reduction)
    buf = p.copy()
    g = fn.grad(y, buf, weights=w, reduction=reduction, out=buf, **opts)
    assert g is buf
    assert_close(buf, eg, rtol=0.0, atol=tg, what="grad out=y_pred")
    buf = p.copy()
    v, g = fn.value_and_grad(y, buf, weights=w, reduction=reduction, out=buf, **opts)
    assert g is buf
    assert_close(v, ev, rtol=0.0, atol=tv, what="value with out=y_pred")
    assert_close(buf, eg, rtol=0.0, atol=tg, what="value_and_grad out=y_pred")
    big = np.full((3, 22), SENTINEL, dtype)
    view = big[:, ::2]
    view[...] = p
    v, g = fn.value_and_grad(y, view, weights=w, reduction=reduction, out=view, **opts)
    assert g is view
    assert_close(v, ev, rtol=0.0, atol=tv, what="value with out=strided y_pred")
    assert_close(view, eg, rtol=0.0, atol=tg, what="grad out=strided y_pred")
    assert np.all(big[:, 1::2] == SENTINEL)


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
@pytest.mark.parametrize("config", ROW_CONFIGS, ids=ROW_IDS)
def test_out_is_y_pred_rows(config, dtype):
    """The general contract (out may be y_pred itself) for the row losses: the
    whole row is read before its gradient is written."""
    name, opts = config
    fn = getattr(fl, name)
    o = resolve(opts, 9)
    y, p = make_rows(name, o, (4, 9), -1, dtype, 45)
    for reduction in REDUCTIONS:
        ev, eg, tv, tg = expected(name, o, y, p, reduction=reduction)
        buf = p.copy()
        v, g = fn.value_and_grad(y, buf, reduction=reduction, out=buf, **o)
        assert g is buf
        assert_close(v, ev, rtol=0.0, atol=tv, what=f"{name} value with out=y_pred")
        assert_close(buf, eg, rtol=0.0, atol=tg, what=f"{name} grad out=y_pred")
        buf = p.copy()
        fn.grad(y, buf, reduction=reduction, out=buf, **o)
        assert_close(buf, eg, rtol=0.0, atol=tg, what=f"{name} grad out=y_pred")


@pytest.mark.parametrize("entry", ["grad", "value_and_grad"])
def test_bad_out_rows(entry):
    x = np.zeros((3, 4))
    t = np.zeros(3, np.int64)
    for bad in (np.zeros((3,)), np.zeros((4, 3)), np.zeros((3, 4), np.float32), np.zeros((3, 4, 1))):
        with pytest.raises(ValueError, match="out"):
            call(SCCE, entry, t, x, from_logits=True, out=bad)
        with pytest.raises(ValueError, match="out"):
            call(CCE, entry, np.zeros((3, 4)), x, from_logits=True, out=bad)


def test_inputs_not_modified():
    rng = np.random.default_rng(46)
    for name, opts in ALL_CONFIGS:
        o = resolve(opts, 6)
        y, p = make_data(name, o, (5, 6), -1, np.float64, 46)
        w = rng.uniform(0.5, 2, (5, 6) if ref.is_binary(name) else (5,))
        y0, p0, w0 = y.copy(), p.copy(), w.copy()
        for reduction in REDUCTIONS:
            getattr(fl, name).value_and_grad(y, p, weights=w, reduction=reduction, **o)
            getattr(fl, name).grad(y, p, weights=w, reduction=reduction, **o)
        np.testing.assert_array_equal(y, y0)
        np.testing.assert_array_equal(p, p0)
        np.testing.assert_array_equal(w, w0)


# --------------------------------------------------------------------------
# Finite differences (float64, away from kinks and clip boundaries)
# --------------------------------------------------------------------------


def fd_steps(p, opts):
    """1e-6 relative steps; inside a clip region (p < eps, tiny on purpose) a
    step that stays inside it (the value depends on p there only through the
    row sum S >= 0.05)."""
    a = np.abs(p)
    return np.where(a < 1e-5, 0.02 * opts.get("eps", 1e-7), 1e-6 * np.maximum(1.0, a))


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("config", ALL_CONFIGS, ids=ALL_IDS)
def test_finite_differences(config, reduction, weighted):
    name, opts = config
    fn = getattr(fl, name)
    for seed, (shape, axis) in enumerate([((3, 5), -1), ((4, 3), 0)]):
        o = resolve(opts, shape[axis])
        if axis != -1 and not ref.is_binary(name):
            o["axis"] = axis
        y, p = make_data(name, o, shape, axis, np.float64, 100 + seed, fd=True)
        R = rows_shape(name, o, shape)
        w = np.random.default_rng(seed).uniform(0.5, 2.0, R) if weighted else None
        kw = dict(reduction=reduction, weights=w, **o)

        def value(pp):
            return float(np.sum(np.asarray(fn(y, pp, **kw), dtype=np.float64)))

        g = fn.grad(y, p, **kw)
        v0 = value(p)
        assert np.isfinite(v0), f"{name}{o}: value {v0}"
        hs = fd_steps(p, o)
        for k in np.ndindex(shape):
            h = hs[k]
            pp, pm = p.copy(), p.copy()
            pp[k] += h
            pm[k] -= h
            fd = (value(pp) - value(pm)) / (pp[k] - pm[k])
            # truncation (relative) and roundoff of the two values over the step
            tol = 1e-6 * abs(g[k]) + 1e-8 * max(1.0, abs(v0)) + 1e-7 * abs(fd) + 2e-15 * abs(v0) / (pp[k] - pm[k])
            assert abs(fd - g[k]) <= tol, f"{name}{o} {reduction} w={weighted} at {k}: fd {fd!r} vs grad {g[k]!r}"


# --------------------------------------------------------------------------
# Binary edge cases
# --------------------------------------------------------------------------


@pytest.mark.parametrize("pos_weight", [None, 2.0])
@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
def test_bce_logits_extremes(dtype, pos_weight):
    """x = +-1e4 and +-inf with y exactly 0/1: finite where the math is, loss 0
    or |x| (times pos_weight), gradient sig(x) - y, never NaN."""
    x = np.array([1e4, -1e4, np.inf, -np.inf] * 2, dtype)
    y = np.array([0.0] * 4 + [1.0] * 4, dtype)
    pw = 1.0 if pos_weight is None else pos_weight
    v = fl.bce(y, x, from_logits=True, pos_weight=pos_weight, reduction="none")
    g = fl.bce.grad(y, x, from_logits=True, pos_weight=pos_weight, reduction="none")
    v2, g2 = fl.bce.value_and_grad(y, x, from_logits=True, pos_weight=pos_weight, reduction="none")
    for a in (v, g, v2, g2):
        assert not np.any(np.isnan(a)), a
    np.testing.assert_array_equal(v, np.array([1e4, 0, np.inf, 0, 0, pw * 1e4, 0, np.inf], dtype))
    np.testing.assert_array_equal(v2, v)
    np.testing.assert_array_equal(g, np.array([1, 0, 1, 0, 0, -pw, 0, -pw], dtype))
    np.testing.assert_array_equal(g2, g)
    # the reduced values: sum/mean of the finite ones, inf with the inf ones
    fin = np.isfinite(x)
    s = fl.bce(y[fin], x[fin], from_logits=True, pos_weight=pos_weight, reduction="sum")
    assert s == np.asarray(1e4 + pw * 1e4, dtype)
    assert fl.bce(y, x, from_logits=True, pos_weight=pos_weight) == np.inf
    gm = fl.bce.grad(y, x, from_logits=True, pos_weight=pos_weight)
    assert np.all(np.isfinite(gm))
    check(BCE, {"from_logits": True, "pos_weight": pos_weight}, y, x, reduction="none")


@pytest.mark.parametrize("from_logits", [True, False])
@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
def test_bce_nan_prediction_with_zero_coefficients(from_logits, dtype):
    """pos_weight = 0 and y = 1 zero both coefficients: the terms vanish for
    finite and infinite predictions, but NaN in gives NaN out."""
    x = np.array([np.nan, 3.0, -np.inf, np.inf, np.nan] if from_logits else [np.nan, 0.3, 0.0, 1.0, np.nan], dtype)
    y = np.array([1.0, 1.0, 1.0, 1.0, 0.0], dtype)
    pw = np.array([0.0, 0.0, 0.0, 0.0, 1.0], dtype)
    v, g = fl.bce.value_and_grad(y, x, from_logits=from_logits, pos_weight=pw, reduction="none")
    assert np.isnan(v[0]) and np.isnan(v[4]) and np.all(v[1:4] == 0), v
    assert np.isnan(g[0]) and np.isnan(g[4]), g
    assert np.isnan(fl.bce(y[:1], x[:1], from_logits=from_logits, reduction="none")[0])
    check(BCE, {"from_logits": from_logits, "pos_weight": pw}, y, x, reduction="none")


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
def test_bce_logits_soft_labels_at_infinity(dtype):
    """Soft labels against infinite logits: an infinite loss, a finite gradient
    sig(x) - y, no NaN."""
    x = np.array([np.inf, -np.inf, np.inf, -np.inf], dtype)
    y = np.array([0.3, 0.3, 1.0, 0.0], dtype)
    v = fl.bce(y, x, from_logits=True, reduction="none")
    g = fl.bce.grad(y, x, from_logits=True, reduction="none")
    np.testing.assert_array_equal(v, np.array([np.inf, np.inf, 0, 0], dtype))
    assert_close(g, [0.7, -0.3, 0.0, 0.0], rtol=1e-6, what="grad")


def test_bce_float32_saturated_logits():
    """float32: logit 17 with y = 1 gives log1p(exp(-17)) ~ 4.14e-8, not 0; the
    gradient at y = 1, x = 80 is -sigmoid(-80) ~ -1.8e-35 to relative accuracy."""
    f = np.float32
    v = fl.bce(np.array([1.0, 0.0], f), np.array([17.0, -17.0], f), from_logits=True, reduction="none")
    exact = math.log1p(math.exp(-17.0))
    assert exact == pytest.approx(4.139937633e-08, rel=1e-6)
    assert_close(v, [exact, exact], rtol=1e-5, what="bce(1, 17)")
    assert fl.bce(np.array([1.0], f), np.array([17.0], f), from_logits=True) > 0
    x = np.array([80.0, -80.0, 40.0, 60.0], f)
    y = np.array([1.0, 0.0, 1.0, 1.0], f)
    g = fl.bce.grad(y, x, from_logits=True, reduction="none")
    e = np.array([-1 / (1 + math.exp(80.0)), 1 / (1 + math.exp(80.0)), -1 / (1 + math.exp(40.0)), -1 / (1 + math.exp(60.0))])
    assert e[0] == pytest.approx(-1.8048513878454153e-35, rel=1e-12)
    assert_close(g, e, rtol=1e-4, what="bce grad at saturated logits")
    v = fl.bce(y, x, from_logits=True, reduction="none")
    assert_close(v, [math.log1p(math.exp(-t)) for t in (80.0, 80.0, 40.0, 60.0)], rtol=1e-4, what="bce value")
    # the same through value_and_grad
    v2, g2 = fl.bce.value_and_grad(y, x, from_logits=True, reduction="none")
    assert_close(g2, e, rtol=1e-4, what="value_and_grad grad")
    assert_close(v2, v, rtol=1e-5, what="value_and_grad value")


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
def test_binary_focal_logits_extremes(dtype):
    x = np.array([1e4, -1e4, 100.0, -100.0] * 2, dtype)
    y = np.array([0.0] * 4 + [1.0] * 4, dtype)
    for opts in ({"from_logits": True}, {"from_logits": True, "gamma": 0.5, "alpha": None}, {"from_logits": True, "gamma": 0.0}):
        v, g = check(FOCAL, opts, y, x, reduction="none")
        assert np.all(np.isfinite(v)) and np.all(np.isfinite(g)), (opts, v, g)


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
def test_bce_probabilities_clipped(dtype):
    """p = 0 and 1 are clipped to [eps, 1 - eps]: finite loss, zero gradient."""
    y = np.array([1.0, 0.0, 1.0, 0.0, 0.5], dtype)
    p = np.array([0.0, 1.0, 1.0, 0.0, 0.0], dtype)
    v = fl.bce(y, p, reduction="none")
    g = fl.bce.grad(y, p, reduction="none")
    assert np.all(np.isfinite(v))
    np.testing.assert_array_equal(g, np.zeros(5, dtype))
    assert_close(v[[0, 3]], [-math.log(1e-7), -math.log1p(-1e-7)], rtol=1e-5, atol=2e-7, what="clipped")
    assert_close(v[1], -math.log(1e-7), rtol=3e-2 if dtype == np.float32 else 1e-8, what="clipped at 1 - eps")
    v = fl.bce(y, p, eps=0.01, reduction="none")
    assert_close(v[:2], [-math.log(0.01)] * 2, rtol=1e-5, what="eps=0.01")
    g = fl.binary_focal.grad(y, p, reduction="none")
    np.testing.assert_array_equal(g, np.zeros(5, dtype))


def test_bce_probabilities_clip_both_sides_float64():
    y = np.array([1.0, 0.0, 0.3, 0.7, 1.0, 0.0])
    p = np.array([1.0, 1.0, 1e-9, 1 - 1e-9, 1e-300, 0.0])
    for reduction in REDUCTIONS:
        check(BCE, {}, y, p, reduction=reduction)
        check(BCE, {"eps": 1e-3, "pos_weight": 2.0}, y, p, reduction=reduction)
        check(FOCAL, {}, y, p, reduction=reduction)


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
def test_binary_nan_y_true_is_nan_out(dtype):
    y = np.array([0.0, np.nan, 1.0, 0.5], dtype)
    p = np.array([0.3, 0.4, 0.8, 0.5], dtype)
    for name in (BCE, FOCAL):
        for opts in ({}, {"from_logits": True}):
            v = fl.LOSSES[name](y, p, reduction="none", **opts)
            assert np.isnan(v[1]) and np.all(np.isfinite(v[[0, 2, 3]])), (name, opts, v)
            assert np.isnan(fl.LOSSES[name](y, p, **opts))
            ev, _, tv, _ = expected(name, opts, y, p, reduction="none")
            assert_close(v, ev, rtol=0.0, atol=tv, what=f"{name} NaN y_true")


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
def test_hinge_label_conversion(dtype):
    """A label exactly 0 is -1; any other label is used as it is."""
    p = np.array([0.5, -0.5, 2.0, -2.0, 0.25, 1.0, -1.0], dtype)
    for y01, ypm in (([0, 1, 1, 0, 0, 1, 0], [-1, 1, 1, -1, -1, 1, -1]),):
        y01 = np.array(y01, dtype)
        ypm = np.array(ypm, dtype)
        for name in ("hinge", "squared_hinge"):
            for reduction in REDUCTIONS:
                v1, g1 = check(name, {}, y01, p, reduction=reduction)
                v2, g2 = check(name, {}, ypm, p, reduction=reduction)
                np.testing.assert_array_equal(g1, g2)
                np.testing.assert_array_equal(v1, v2)
    # the kink: 1 - y p == 0 gives loss 0 and gradient 0
    y = np.array([1.0, -1.0, 0.0], dtype)
    p = np.array([1.0, -1.0, -1.0], dtype)
    np.testing.assert_array_equal(fl.hinge.grad(y, p, reduction="none"), np.zeros(3, dtype))
    np.testing.assert_array_equal(fl.squared_hinge.grad(y, p, reduction="none"), np.zeros(3, dtype))
    np.testing.assert_array_equal(fl.hinge(y, p, reduction="none"), np.zeros(3, dtype))
    # other labels are not converted
    y = np.array([-0.5, 2.0, 0.5], dtype)
    p = np.array([1.0, 0.25, -3.0], dtype)
    for name in ("hinge", "squared_hinge"):
        check(name, {}, y, p, reduction="none")


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
def test_soft_margin_values(dtype):
    y = np.array([1.0, -1.0, 1.0, -1.0, 0.0, 1.0, -1.0], dtype)
    p = np.array([0.0, 0.0, 50.0, 50.0, 3.0, -1e4, -1e4], dtype)
    v, g = check("soft_margin", {}, y, p, reduction="none")
    assert_close(v[:2], [math.log(2)] * 2, rtol=1e-6, what="log 2")
    assert_close(v[4], math.log(2), rtol=1e-6, what="y = 0 is not converted")
    assert g[4] == 0
    assert v[5] == np.asarray(1e4, dtype) and v[6] == 0


# --------------------------------------------------------------------------
# Softmax edge cases
# --------------------------------------------------------------------------


def _huge(dtype):
    return [1e8, -1e8, 3e38 if np.dtype(dtype) == np.float32 else 1e308]


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
def test_equal_huge_logits_give_log2(dtype):
    """Rows [b, b] with b = 1e8 (or the largest finite): loss ln 2, gradient
    q - y = +-0.5; no overflow of exp."""
    tol = 1e-6 if np.dtype(dtype) == np.float32 else 1e-14
    for b in _huge(dtype):
        x = np.full((3, 2), b, dtype)
        y = np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]], dtype)
        v = fl.cce(y, x, from_logits=True, reduction="none")
        assert_close(v, [math.log(2)] * 3, rtol=tol, what=f"cce [{b}, {b}]")
        assert_close(fl.cce(y, x, from_logits=True), math.log(2), rtol=tol, what="mean")
        g = fl.cce.grad(y, x, from_logits=True, reduction="none")
        assert_close(g, [[-0.5, 0.5], [0.5, -0.5], [0.0, 0.0]], rtol=tol, atol=tol, what="cce grad")
        t = np.array([0, 1, 1])
        v = fl.sparse_cce(t, x, from_logits=True, reduction="none")
        assert_close(v, [math.log(2)] * 3, rtol=tol, what=f"sparse_cce [{b}, {b}]")
        vv, gg = fl.sparse_cce.value_and_grad(t, x, from_logits=True, reduction="sum")
        assert_close(vv, 3 * math.log(2), rtol=tol, what="sparse sum")
        assert_close(gg, [[-0.5, 0.5], [0.5, -0.5], [0.5, -0.5]], rtol=tol, what="sparse grad")
        # 1-D single row
        assert_close(fl.sparse_cce(np.array(0), x[0], from_logits=True), math.log(2), rtol=tol, what="1-D")
        assert_close(fl.cce(y[0], x[0], from_logits=True), math.log(2), rtol=tol, what="1-D cce")
        # a huge gap: no NaN, the loss is the gap
        x2 = np.array([[b, 0.0]], dtype)
        v2, g2 = fl.sparse_cce.value_and_grad(np.array([1]), x2, from_logits=True)
        if b > 0:
            assert_close(v2, b, rtol=tol, what="gap")
            assert_close(g2, [[1.0, -1.0]], rtol=tol, what="gap grad")
        else:
            assert v2 == 0
            np.testing.assert_array_equal(g2, np.zeros((1, 2), dtype))


MASK_X = [
    [0.0, -np.inf, 1.0, -np.inf],
    [2.0, -np.inf, -np.inf, 0.5],
    [1.0, 2.0, 3.0, 4.0],
    [-np.inf, -np.inf, -np.inf, -np.inf],
    [0.5, -np.inf, 0.25, 1.0],
]


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
def test_masked_logits(dtype):
    """-inf logits: probability 0 and gradient 0 there; a label on a masked
    class: +inf loss, finite gradient q - y; a fully masked row: NaN loss, zero
    gradient."""
    x = np.array(MASK_X, dtype)
    t = np.array([2, 0, 3, 1, 1])  # row 4: label on a masked class
    y = np.eye(4, dtype=dtype)[t]
    for name, yt in ((CCE, y), (SCCE, t)):
        fn = fl.LOSSES[name]
        v = fn(yt, x, from_logits=True, reduction="none")
        g = fn.grad(yt, x, from_logits=True, reduction="none")
        assert np.all(np.isfinite(v[:3])), v
        assert np.isnan(v[3]) and v[4] == np.inf, v
        assert np.all(np.isfinite(g)), g
        np.testing.assert_array_equal(g[3], np.zeros(4, dtype))
        assert np.all(g[:3][np.isneginf(x[:3])] == 0)
        assert g[4, 1] == -1 and np.all(g[4, [0, 2, 3]] > 0)
        for reduction in REDUCTIONS:
            check(name, {"from_logits": True}, yt, x, reduction=reduction)
            check(name, {"from_logits": True, "label_smoothing": 0.1}, yt, x, reduction=reduction)
        assert np.isnan(fn(yt, x, from_logits=True))
        assert fn(yt[[0, 1, 2, 4]], x[[0, 1, 2, 4]], from_logits=True, reduction="sum") == np.inf
        # label smoothing puts mass on the masked classes: +inf, finite gradient
        vs = fn(yt[:2], x[:2], from_logits=True, label_smoothing=0.1, reduction="none")
        assert np.all(vs == np.inf)
        gs = fn.grad(yt[:2], x[:2], from_logits=True, label_smoothing=0.1, reduction="none")
        assert np.all(np.isfinite(gs))
        assert_close(gs[np.isneginf(x[:2])], np.full(4, -0.1 / 4), rtol=1e-6, what="smoothed grad at masked")


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
def test_masked_logits_3d_axis1(dtype):
    x = np.array(MASK_X, dtype).T[None]  # (1, 4 classes, 5 positions)
    t = np.array([[2, 0, 3, 0, 2]])
    for reduction in REDUCTIONS:
        check(SCCE, {"from_logits": True, "axis": 1}, t, x, reduction=reduction)
        check(SCCE, {"from_logits": True, "axis": 1, "ignore_index": 0}, t, x, reduction=reduction)


NAN_ROW_CONFIGS = [
    (CCE, {"from_logits": True}),
    (CCE, {}),
    (CFOCAL, {"from_logits": True}),
    ("kl_divergence", {}),
    ("jensen_shannon", {"log_input": True}),
    (SCCE, {"from_logits": True}),
    (SCCE, {"label_smoothing": 0.1}),
]


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
@pytest.mark.parametrize("config", NAN_ROW_CONFIGS, ids=[config_id(c) for c in NAN_ROW_CONFIGS])
def test_nan_in_a_row_stays_in_that_row(config, dtype):
    """NaN in y_pred: that row's loss is NaN (and its gradient where the row is
    coupled), the other rows are unaffected (max, sums, normaliser per row)."""
    name, opts = config
    y, p = make_rows(name, opts, (5, 7), -1, dtype, 9)
    p = p.copy()
    p[1, 3] = np.nan
    p[4, 6] = np.nan
    for reduction in REDUCTIONS:
        v, g = check(name, opts, y, p, reduction=reduction)
        if name in (CCE, CFOCAL, SCCE):  # softmax / normalisation couple the row
            assert np.all(np.isnan(g[[1, 4]])) and np.all(np.isfinite(g[[0, 2, 3]]))
        else:  # elementwise within the row
            np.testing.assert_array_equal(np.isnan(g), np.isnan(p))
        if reduction == "none":
            assert np.all(np.isnan(v[[1, 4]])) and np.all(np.isfinite(v[[0, 2, 3]]))
        else:
            assert np.isnan(v)


@pytest.mark.parametrize("C", [33, 40, 1000])
@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
def test_sparse_target_only_gradient(C, dtype):
    """Sparse cross-entropy from logits without label smoothing: the row
    kernel writes -q_c H off the target and D_t - q_t H at the target (rows
    wider than the one-row-per-lane path). Against the reference with class
    weights, ignore_index and row weights; with the gradient in its own buffer
    (exps kept there), in y_pred (out=y_pred) and strided; and, row by row,
    against dense cross-entropy on one-hot targets (the general path) with a
    masked target, masked classes, a fully masked row and a NaN row."""
    rng = np.random.default_rng(C)
    R = 11
    x = rng.normal(0, 3, (R, C)).astype(dtype)
    t = rng.integers(0, C, R)
    t[[2, 7]] = -100
    w = rng.uniform(0.5, 2.0, R)
    cw = rng.uniform(0.3, 3.0, C)
    for opts in ({"from_logits": True}, {"from_logits": True, "class_weights": cw},
                 {"from_logits": True, "ignore_index": -100, "class_weights": cw}):
        tt = t if "ignore_index" in opts else np.abs(t) % C
        for reduction in REDUCTIONS:
            check(SCCE, opts, tt, x, reduction=reduction, weights=w)
            ev, eg, tv, tg = expected(SCCE, opts, tt, x, weights=w, reduction=reduction)
            buf = x.copy()
            v, g = fl.sparse_cce.value_and_grad(tt, buf, weights=w, reduction=reduction, out=buf, **opts)
            assert g is buf
            assert_close(v, ev, rtol=0.0, atol=tv, what=f"{opts} value, out=y_pred")
            assert_close(buf, eg, rtol=0.0, atol=tg, what=f"{opts} grad, out=y_pred")
            big = np.full((R, 2 * C), SENTINEL, dtype)
            g = fl.sparse_cce.grad(tt, x, weights=w, reduction=reduction, out=big[:, ::2], **opts)
            assert_close(g, eg, rtol=0.0, atol=tg, what=f"{opts} grad, strided out")
            assert np.all(big[:, 1::2] == SENTINEL)
    # Masked logits, a fully masked row and a NaN row, against dense one-hot.
    xm = x.copy()
    tm = np.abs(t) % C
    xm[0, tm[0]] = -np.inf                           # label on a masked class
    xm[1, rng.choice(C, C // 2, replace=False)] = -np.inf
    xm[1, tm[1]] = 0.5
    xm[3] = -np.inf                                  # fully masked
    xm[4, (tm[4] + 1) % C] = np.nan
    y1 = np.eye(C, dtype=dtype)[tm]
    for out_is_x in (False, True):
        buf = xm.copy()
        vs, gs = fl.sparse_cce.value_and_grad(tm, buf, from_logits=True, reduction="none",
                                              **({"out": buf} if out_is_x else {}))
        vd, gd = fl.cce.value_and_grad(y1, xm, from_logits=True, reduction="none")
        assert vs[0] == np.inf and np.all(np.isfinite(gs[0]))
        assert gs[0, tm[0]] == -1 and np.all(gs[0][np.arange(C) != tm[0]] >= 0)
        assert np.all(gs[1][np.isneginf(xm[1])] == 0)
        assert np.isnan(vs[3]) and np.all(gs[3] == 0)
        assert np.isnan(vs[4]) and np.all(np.isnan(gs[4]))
        rtol = 2e-6 if dtype == np.float32 else 1e-14
        np.testing.assert_allclose(vs, vd, rtol=rtol, equal_nan=True)
        np.testing.assert_allclose(gs, gd, rtol=rtol, atol=rtol / C, equal_nan=True)


def test_lists_are_converted():
    v, g = check(CCE, {}, [[0.0, 1.0], [0.5, 0.5]], [[0.2, 0.8], [0.4, 0.6]], reduction="sum")
    assert g.dtype == np.float64
    check(SCCE, {"from_logits": True}, [1, 0], [[0.2, 0.8], [0.4, 0.6]], reduction="none")
    check("nll", {"class_weights": [1.0, 2.0]}, [1, 0], [[-0.2, -0.8], [-0.4, -0.6]])
    check(BCE, {"pos_weight": [1.0, 2.0]}, [[0.0, 1.0]], [[0.3, 0.6]])
    # strided class weights
    cw = np.array([1.0, 9.0, 2.0, 9.0, 3.0, 9.0])[::2]
    check("nll", {"class_weights": cw}, np.array([0, 2, 1]), -np.abs(np.random.default_rng(8).normal(size=(3, 3))))


# --------------------------------------------------------------------------
# Labels
# --------------------------------------------------------------------------


@pytest.mark.parametrize("itype", INT_DTYPES, ids=dtype_id)
@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
def test_label_dtypes(itype, dtype):
    """Labels of every integer dtype give the int64 result, bit for bit."""
    rng = np.random.default_rng(51)
    N, C = 23, 7
    x = rng.normal(0, 2, (N, C)).astype(dtype)
    xp = (np.abs(x) + 0.05).astype(dtype)  # probabilities (unnormalised)
    t64 = rng.integers(0, C, N)
    signed = np.dtype(itype).kind == "i"
    ii = -100 if signed else 255
    t64i = np.where(np.arange(N) % 5 == 3, ii, t64)
    cw = rng.uniform(0.5, 2.0, C)
    for name, opts, labels in [
        (SCCE, {"from_logits": True}, t64),
        (SCCE, {"from_logits": True, "ignore_index": ii, "label_smoothing": 0.1, "class_weights": cw}, t64i),
        (SCCE, {"ignore_index": ii, "label_smoothing": 0.05}, t64i),
        ("nll", {"ignore_index": ii, "class_weights": cw}, t64i),
        ("multi_margin", {"p": 2}, t64),
    ]:
        fn = fl.LOSSES[name]
        xx = x if (name != SCCE or opts.get("from_logits")) else xp
        t = labels.astype(itype)
        assert np.array_equal(t.astype(np.int64), labels)
        for reduction in REDUCTIONS:
            v, g = check(name, opts, t, xx, reduction=reduction, what=f"labels {np.dtype(itype).name}")
            np.testing.assert_array_equal(np.asarray(v), np.asarray(fn(labels, xx, reduction=reduction, **opts)))
            np.testing.assert_array_equal(g, fn.grad(labels, xx, reduction=reduction, **opts))
        # strided labels of this dtype
        big = np.zeros((N, 3), itype)
        big[:, 1] = t
        check(name, opts, big[:, 1], xx, reduction="sum", what="strided labels")


LABEL_LOSSES = [(SCCE, {"from_logits": True}), (SCCE, {}), ("nll", {}), ("multi_margin", {})]


@pytest.mark.parametrize("entry", ENTRY)
@pytest.mark.parametrize("bad", [np.float32, np.float64, np.bool_, np.float16], ids=dtype_id)
@pytest.mark.parametrize("config", LABEL_LOSSES, ids=[config_id(c) for c in LABEL_LOSSES])
def test_non_integer_labels_are_type_errors(config, bad, entry):
    name, opts = config
    x = np.zeros((4, 3))
    t = np.array([0, 1, 2, 1]).astype(bad)
    with pytest.raises(TypeError, match="y_true"):
        call(name, entry, t, x, **opts)
    with pytest.raises(TypeError, match="y_true"):
        call(name, entry, t, x.astype(np.float32), reduction="none", **opts)


@pytest.mark.parametrize("entry", ENTRY)
@pytest.mark.parametrize("config", LABEL_LOSSES, ids=[config_id(c) for c in LABEL_LOSSES])
def test_label_shape_must_be_rows_shape(config, entry):
    name, opts = config
    x = np.zeros((4, 3))
    for shape in ((4, 1), (5,), (1, 4), (4, 3), ()):
        with pytest.raises(ValueError, match="y_true|shape"):
            call(name, entry, np.zeros(shape, np.int64), x, **opts)
    with pytest.raises(ValueError, match="y_true|shape"):
        call(name, entry, np.zeros((2, 4), np.int64), np.zeros((2, 4, 3)), axis=1, **opts)


BAD_LABELS = [
    ("equal_C", np.int64, 5, {}),
    ("big", np.int64, 1 << 40, {}),
    ("negative", np.int64, -1, {}),
    ("negative_not_ignore", np.int64, -1, {"ignore_index": -100}),
    ("int8_minus_100_other_ignore", np.int8, -100, {"ignore_index": -1}),
    ("uint8_255", np.uint8, 255, {}),
    ("uint32_wraps_to_minus_100", np.uint32, (1 << 32) - 100, {"ignore_index": -100}),
    ("uint64_wraps_to_minus_100", np.uint64, (1 << 64) - 100, {"ignore_index": -100}),
    ("uint64_huge", np.uint64, (1 << 64) - 1, {"ignore_index": -1}),
]


@pytest.mark.parametrize("entry", ENTRY)
@pytest.mark.parametrize("bad", BAD_LABELS, ids=[b[0] for b in BAD_LABELS])
@pytest.mark.parametrize("name", [SCCE, "nll", "multi_margin"])
def test_labels_out_of_range(name, bad, entry):
    """A label outside [0, C) that is not ignore_index: ValueError naming y_true
    and the first bad position, from all three entry points, before anything
    is written to out=."""
    _, itype, value, extra = bad
    if name == "multi_margin" and "ignore_index" in extra:
        extra = {}
    C = 5
    x = np.random.default_rng(52).normal(size=(12, C))
    kw = dict(extra)
    if name == SCCE:
        kw["from_logits"] = True
    messages = []
    for first in (7, 9):
        labels = [0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1]
        labels[first] = value
        labels[10] = value
        labels = np.array(labels, dtype=object).astype(itype)
        out = np.full((12, C), SENTINEL)
        with pytest.raises(ValueError, match="y_true") as info:
            if entry == "value":
                call(name, entry, labels, x, **kw)
            else:
                call(name, entry, labels, x, out=out, **kw)
        assert str(first) in str(info.value), f"message does not give the position {first}: {info.value}"
        messages.append(str(info.value))
        assert np.all(out == SENTINEL), "out= was written before the error"
    assert messages[0] != messages[1], "the message does not depend on the position"
    # 2-D labels (3, 4), axis=1 of a (3, C, 4) input
    x3 = np.random.default_rng(53).normal(size=(3, C, 4))
    with pytest.raises(ValueError, match="y_true"):
        call(name, entry, labels.reshape(3, 4), x3, axis=1, **kw)
    # a bad label in an otherwise ignored-looking position is still bad
    labels = np.array([0, 1, value], dtype=object).astype(itype)
    with pytest.raises(ValueError, match="y_true"):
        call(name, entry, labels, x[:3], **kw)


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
def test_ignore_index_values(dtype):
    """ignore_index as the label dtype holds it: uint8 255, int8 -100; an
    ignore_index inside [0, C) ignores that class's rows."""
    rng = np.random.default_rng(54)
    x = rng.normal(size=(6, 4)).astype(dtype)
    t = np.array([0, 255, 2, 255, 3, 1], np.uint8)
    check(SCCE, {"from_logits": True, "ignore_index": 255}, t, x)
    t8 = np.array([0, -100, 2, -100, 3, 1], np.int8)
    v, g = check(SCCE, {"from_logits": True, "ignore_index": -100}, t8, x)
    np.testing.assert_array_equal(g[[1, 3]], np.zeros((2, 4), dtype))
    t0 = np.array([0, 1, 0, 2, 3, 0])
    v, g = check(SCCE, {"from_logits": True, "ignore_index": 0}, t0, x)
    np.testing.assert_array_equal(g[[0, 2, 5]], np.zeros((3, 4), dtype))
    check("nll", {"ignore_index": 0}, t0, x)


def pytorch_cross_entropy(x, t, weight, ignore_index, ls, reduction):
    """PyTorch's F.cross_entropy(x, t, weight, ignore_index=..., label_smoothing=ls)
    written out independently of the reference (class axis last)."""
    with np.errstate(all="ignore"):
        return _pytorch_cross_entropy(x, t, weight, ignore_index, ls, reduction)


def _pytorch_cross_entropy(x, t, weight, ignore_index, ls, reduction):
    x = np.asarray(x, np.float64)
    C = x.shape[-1]
    w = np.ones(C) if weight is None else np.asarray(weight, np.float64)
    keep = t != ignore_index
    tk = np.where(keep, t, 0)
    logp = x - x.max(-1, keepdims=True)
    logp = logp - np.log(np.exp(logp).sum(-1, keepdims=True))
    nll = -w[tk] * np.take_along_axis(logp, tk[..., None], -1)[..., 0]
    smooth = -(logp * w).sum(-1)
    nll = np.where(keep, nll, 0.0)
    smooth = np.where(keep, smooth, 0.0)
    per = (1 - ls) * nll + ls / C * smooth
    if reduction == "none":
        return per
    if reduction == "sum":
        return per.sum()
    return per.sum() / np.where(keep, w[tk], 0.0).sum()


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
def test_ignore_index_with_label_smoothing_and_class_weights(dtype):
    rng = np.random.default_rng(55)
    N, C = 16, 6
    x = rng.normal(0, 2, (N, C)).astype(dtype)
    t = rng.integers(0, C, N)
    t[[1, 4, 5, 11]] = -100
    cw = rng.uniform(0.3, 3.0, C)
    x[4] = np.nan  # ignored rows may hold anything
    x[5, 2] = -np.inf
    x[11] = np.inf
    opts = {"from_logits": True, "ignore_index": -100, "label_smoothing": 0.15, "class_weights": cw}
    rtol = 2e-5 if dtype == np.float32 else 1e-12
    for reduction in REDUCTIONS:
        v, g = check(SCCE, opts, t, x, reduction=reduction)
        e = pytorch_cross_entropy(x.astype(np.float64), t, cw.astype(dtype), -100, 0.15, reduction)
        assert_close(v, e, rtol=rtol, what=f"PyTorch formula {reduction}")
        assert np.all(np.isfinite(v)) and np.all(np.isfinite(g))
        np.testing.assert_array_equal(g[[1, 4, 5, 11]], np.zeros((4, C), dtype))


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
def test_ignored_rows_with_nan_logits(dtype):
    """Ignored rows contribute nothing, even NaN / inf logits."""
    rng = np.random.default_rng(56)
    x = rng.normal(size=(5, 4)).astype(dtype)
    x[1] = np.nan
    x[3] = [-np.inf, np.inf, np.nan, 0.0]
    t = np.array([2, -100, 0, -100, 3])
    for name, opts in [
        (SCCE, {"from_logits": True}),
        (SCCE, {}),
        (SCCE, {"from_logits": True, "label_smoothing": 0.1, "class_weights": [1.0, 2.0, 0.5, 1.5]}),
        ("nll", {}),
        ("nll", {"class_weights": [1.0, 2.0, 0.5, 1.5]}),
    ]:
        o = dict(opts, ignore_index=-100)
        if "class_weights" in o:
            o["class_weights"] = np.array(o["class_weights"])
        for reduction in REDUCTIONS:
            v, g = check(name, o, t, x, reduction=reduction)
            assert np.all(np.isfinite(v)) and np.all(np.isfinite(g)), (name, v, g)
            np.testing.assert_array_equal(g[[1, 3]], np.zeros((2, 4), dtype))


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
def test_all_rows_ignored(dtype):
    """Mean over nothing: NaN with an all-zero gradient; sum 0."""
    x = np.random.default_rng(57).normal(size=(4, 3)).astype(dtype)
    x[2] = np.nan
    t = np.full(4, -100)
    for name, opts in [(SCCE, {"from_logits": True}), (SCCE, {"label_smoothing": 0.2}), ("nll", {"class_weights": np.ones(3)})]:
        fn = fl.LOSSES[name]
        kw = dict(opts, ignore_index=-100)
        m = fn(t, x, **kw)
        assert type(m) is np.dtype(dtype).type and np.isnan(m)
        g = fn.grad(t, x, **kw)
        np.testing.assert_array_equal(g, np.zeros((4, 3), dtype))
        v, g = fn.value_and_grad(t, x, **kw)
        assert np.isnan(v)
        np.testing.assert_array_equal(g, np.zeros((4, 3), dtype))
        s, g = fn.value_and_grad(t, x, reduction="sum", **kw)
        assert type(s) is np.dtype(dtype).type and s == 0
        np.testing.assert_array_equal(g, np.zeros((4, 3), dtype))
        n = fn(t, x, reduction="none", **kw)
        np.testing.assert_array_equal(n, np.zeros(4, dtype))
        # with weights too
        m = fn(t, x, weights=np.arange(1.0, 5.0), **kw)
        assert np.isnan(m)
        np.testing.assert_array_equal(fn.grad(t, x, weights=np.arange(1.0, 5.0), **kw), np.zeros((4, 3), dtype))


EMPTY_ROWS = [((0, 5), -1), ((0, 4, 3), 1), ((2, 4, 0), 1)]


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
@pytest.mark.parametrize("config", ALL_CONFIGS, ids=ALL_IDS)
def test_empty(config, dtype):
    name, opts = config
    fn = getattr(fl, name)
    cases = [((0,), -1), ((2, 0), -1)] if ref.is_binary(name) else EMPTY_ROWS
    for shape, axis in cases:
        o = resolve(opts, shape[axis])
        if not ref.is_binary(name) and axis != -1:
            o["axis"] = axis
        R = rows_shape(name, o, shape)
        p = np.full(shape, 0.5, dtype)
        y = np.zeros(R, np.int64) if ref.is_sparse(name) else np.zeros(shape, dtype)
        s = fn(y, p, reduction="sum", **o)
        assert type(s) is np.dtype(dtype).type and s == 0, (shape, s)
        m = fn(y, p, reduction="mean", **o)
        assert type(m) is np.dtype(dtype).type and np.isnan(m), (shape, m)
        n = fn(y, p, reduction="none", **o)
        assert isinstance(n, np.ndarray) and n.shape == R and n.dtype == dtype
        for reduction in REDUCTIONS:
            g = fn.grad(y, p, reduction=reduction, **o)
            assert isinstance(g, np.ndarray) and g.shape == shape and g.dtype == dtype
            v, g = fn.value_and_grad(y, p, reduction=reduction, **o)
            assert g.shape == shape and g.dtype == dtype
            if reduction == "sum":
                assert v == 0
            elif reduction == "mean":
                assert np.isnan(v)


# --------------------------------------------------------------------------
# KL and JSD edge cases
# --------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
def test_kl_zero_targets(dtype):
    """t == 0 contributes 0 with gradient 0, whatever y_pred is (even 0)."""
    y = np.array([[0.0, 0.5, 0.5, 0.0], [1.0, 0.0, 0.0, 0.0]], dtype)
    p = np.array([[0.0, 0.25, 0.75, 1e-30], [0.5, 0.0, 0.5, 0.0]], dtype)
    v = fl.kl_divergence(y, p, reduction="none")
    g = fl.kl_divergence.grad(y, p, reduction="none")
    assert np.all(np.isfinite(v)) and np.all(np.isfinite(g))
    assert np.all(g[y == 0] == 0)
    e0 = 0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75)
    assert_close(v, [e0, math.log(2)], rtol=1e-6, what="kl rows")
    for reduction in REDUCTIONS:
        check("kl_divergence", {}, y, p, reduction=reduction)
        check("kl_divergence", {"log_input": True}, y, np.log(np.where(p > 0, p, 1)).astype(dtype), reduction=reduction)


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
def test_kl_infinities_and_negative_targets(dtype):
    y = np.array([[0.5, 0.5], [0.5, 0.5]], dtype)
    lp = np.array([[-np.inf, -0.1], [-0.7, -0.7]], dtype)
    v = fl.kl_divergence(y, lp, log_input=True, reduction="none")
    assert v[0] == np.inf and np.isfinite(v[1])
    g = fl.kl_divergence.grad(y, lp, log_input=True, reduction="none")
    np.testing.assert_array_equal(g, -y)
    assert fl.kl_divergence(y, lp, log_input=True) == np.inf
    # probabilities: y_pred == 0 with t > 0 is log(0) = -inf
    v = fl.kl_divergence(y, np.array([[0.0, 1.0], [0.5, 0.5]], dtype), reduction="none")
    assert v[0] == np.inf and v[1] == 0
    # negative targets: NaN, no error
    yn = np.array([[-0.5, 1.5], [0.5, 0.5]], dtype)
    v = fl.kl_divergence(yn, np.full((2, 2), 0.5, dtype), reduction="none")
    assert np.isnan(v[0]) and np.isfinite(v[1])
    assert np.isnan(fl.kl_divergence(yn, np.full((2, 2), 0.5, dtype)))


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
def test_kl_mean_is_batchmean(dtype):
    rng = np.random.default_rng(58)
    y = _dist(rng, (7, 5)).astype(dtype)
    p = _dist(rng, (7, 5)).astype(dtype)
    s = fl.kl_divergence(y, p, reduction="sum")
    m = fl.kl_divergence(y, p, reduction="mean")
    assert_close(m, np.float64(s) / 7, rtol=1e-5 if dtype == np.float32 else 1e-12, what="batchmean")


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
def test_jsd_identities(dtype):
    """beta = 0 is KL(P || Q) (kl_divergence); beta = 1 is KL(Q || P); the
    symmetric JSD is symmetric and 0 for P == Q."""
    rng = np.random.default_rng(59)
    P = _dist(rng, (6, 5)).astype(dtype)
    Q = _dist(rng, (6, 5)).astype(dtype)
    rtol = 1e-4 if dtype == np.float32 else 1e-10
    for log_input in (False, True):
        a, b = (np.log(P), np.log(Q)) if log_input else (P, Q)
        kl_pq = fl.kl_divergence(P, Q, reduction="none")
        kl_qp = fl.kl_divergence(Q, P, reduction="none")
        assert_close(fl.jensen_shannon(a, b, beta=0.0, log_input=log_input, reduction="none"), kl_pq, rtol=rtol, what="beta=0")
        assert_close(fl.jensen_shannon(a, b, beta=1.0, log_input=log_input, reduction="none"), kl_qp, rtol=rtol, what="beta=1")
        j1 = fl.jensen_shannon(a, b, log_input=log_input, reduction="none")
        j2 = fl.jensen_shannon(b, a, log_input=log_input, reduction="none")
        assert_close(j1, j2, rtol=rtol, what="symmetric")
        j0 = fl.jensen_shannon(a, a, log_input=log_input, reduction="none")
        assert np.all(np.abs(j0) <= 1e-6)


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
def test_jsd_zero_probabilities(dtype):
    """Terms with P == 0 (resp. Q == 0) contribute 0."""
    P = np.array([[0.0, 0.5, 0.5], [0.2, 0.3, 0.5]], dtype)
    Q = np.array([[0.3, 0.3, 0.4], [0.0, 0.5, 0.5]], dtype)
    for beta in (0.5, 0.3, 0.0):
        for reduction in REDUCTIONS:
            v = fl.jensen_shannon(P[:1], Q[:1], beta=beta, reduction=reduction)
            assert np.all(np.isfinite(v))
            check("jensen_shannon", {"beta": beta}, P[:1], Q[:1], reduction=reduction)
    for beta in (0.5, 0.3, 1.0):
        v = fl.jensen_shannon(P[1:], Q[1:], beta=beta, reduction="none")
        ev, _, tv, _ = expected("jensen_shannon", {"beta": beta}, P[1:], Q[1:], reduction="none")
        assert_close(v, ev, rtol=0.0, atol=tv, what=f"Q == 0 beta={beta}")
    # log input: Q = exp(-inf) = 0 contributes 0 with gradient 0
    lq = np.log(np.where(Q > 0, Q, 1.0)).astype(dtype)
    lq[1, 0] = -np.inf
    lp = np.log(P[1:]).astype(dtype)
    for beta in (0.5, 0.3):
        v, g = check("jensen_shannon", {"beta": beta, "log_input": True}, lp, lq[1:], reduction="none")
        assert g[0, 0] == 0 and np.all(np.isfinite(v))


# --------------------------------------------------------------------------
# Identities between the losses
# --------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
def test_loss_identities(dtype):
    rng = np.random.default_rng(60)
    rtol = 5e-5 if dtype == np.float32 else 1e-10
    N, C = 9, 6
    x = rng.normal(0, 2, (N, C)).astype(dtype)
    t = rng.integers(0, C, N)
    onehot = np.eye(C, dtype=dtype)[t]
    for reduction in REDUCTIONS:
        # sparse with label smoothing == dense one-hot with label smoothing
        for ls in (0.0, 0.1):
            for fl_ in (True, False):
                xx = x if fl_ else np.abs(x) + 0.1
                a = fl.sparse_cce(t, xx, from_logits=fl_, label_smoothing=ls, reduction=reduction)
                b = fl.cce(onehot, xx, from_logits=fl_, label_smoothing=ls, reduction=reduction)
                assert_close(a, b, rtol=rtol, what=f"sparse vs dense ls={ls} logits={fl_}")
                ga = fl.sparse_cce.grad(t, xx, from_logits=fl_, label_smoothing=ls, reduction=reduction)
                gb = fl.cce.grad(onehot, xx, from_logits=fl_, label_smoothing=ls, reduction=reduction)
                assert_close(ga, gb, rtol=rtol, atol=1e-6 if dtype == np.float32 else 1e-14, what="grads")
        # nll of log_softmax == sparse_cce from logits (with class weights)
        cw = rng.uniform(0.5, 2.0, C)
        ls_ = x.astype(np.float64) - x.astype(np.float64).max(-1, keepdims=True)
        ls_ = (ls_ - np.log(np.exp(ls_).sum(-1, keepdims=True))).astype(dtype)
        a = fl.nll(t, ls_, class_weights=cw, reduction=reduction)
        b = fl.sparse_cce(t, x, from_logits=True, class_weights=cw, reduction=reduction)
        assert_close(a, b, rtol=rtol, what="nll(log_softmax) vs sparse_cce")
        # gamma = 0, no alpha: focal == cross entropy
        y = _targets(rng, (N, C)).astype(dtype)
        for fl_ in (True, False):
            xx = x if fl_ else np.abs(x) + 0.1
            a = fl.categorical_focal(y, xx, from_logits=fl_, gamma=0.0, alpha=None, reduction=reduction)
            b = fl.cce(y, xx, from_logits=fl_, reduction=reduction)
            assert_close(a, b, rtol=rtol, what="cfocal gamma=0")
            assert_close(
                fl.categorical_focal.grad(y, xx, from_logits=fl_, gamma=0.0, alpha=None, reduction=reduction),
                fl.cce.grad(y, xx, from_logits=fl_, reduction=reduction),
                rtol=rtol, atol=1e-6 if dtype == np.float32 else 1e-14, what="cfocal grad gamma=0",
            )
        yb, pb = make_binary(BCE, {"from_logits": True}, (N, C), dtype, 61)
        for fl_ in (True, False):
            pp = pb if fl_ else (1 / (1 + np.exp(-pb.astype(np.float64)))).clip(0.01, 0.99).astype(dtype)
            a = fl.binary_focal(yb, pp, from_logits=fl_, gamma=0.0, alpha=None, reduction=reduction)
            b = fl.bce(yb, pp, from_logits=fl_, reduction=reduction)
            assert_close(a, b, rtol=rtol, what="binary focal gamma=0")
            # alpha-weighted BCE
            a = fl.binary_focal(yb, pp, from_logits=fl_, gamma=0.0, alpha=0.3, reduction=reduction)
            wts = 0.3 * yb.astype(np.float64) + 0.7 * (1 - yb.astype(np.float64))
            b = fl.bce(yb, pp, from_logits=fl_, reduction="none").astype(np.float64) * wts
            if reduction == "sum":
                b = b.sum()
            elif reduction == "mean":
                b = b.mean()
            assert_close(a, b, rtol=rtol, what="binary focal gamma=0 alpha")


# --------------------------------------------------------------------------
# Option and input validation
# --------------------------------------------------------------------------

BAD_OPTIONS = [
    (BCE, "eps", 0.0, {}),
    (BCE, "eps", 0.5, {}),
    (BCE, "eps", -1e-7, {}),
    (BCE, "eps", float("nan"), {}),
    (BCE, "label_smoothing", 1.0, {}),
    (BCE, "label_smoothing", -0.1, {"from_logits": True}),
    (BCE, "label_smoothing", float("nan"), {}),
    (FOCAL, "gamma", -0.5, {}),
    (FOCAL, "gamma", float("nan"), {"from_logits": True}),
    (FOCAL, "eps", 0.7, {}),
    (FOCAL, "label_smoothing", 1.5, {"from_logits": True}),
    (CCE, "eps", 0.0, {}),
    (CCE, "eps", 0.5, {}),
    (CCE, "label_smoothing", 1.0, {"from_logits": True}),
    (CCE, "label_smoothing", -1e-3, {}),
    (CFOCAL, "gamma", -1.0, {"from_logits": True}),
    (CFOCAL, "label_smoothing", 1.0, {}),
    (CFOCAL, "eps", -1.0, {}),
    (SCCE, "label_smoothing", 1.0, {"from_logits": True}),
    (SCCE, "label_smoothing", -0.5, {}),
    (SCCE, "eps", 0.5, {}),
    ("jensen_shannon", "beta", -0.1, {}),
    ("jensen_shannon", "beta", 1.1, {"log_input": True}),
    ("jensen_shannon", "beta", float("nan"), {}),
    ("multi_margin", "p", 3, {}),
    ("multi_margin", "p", 0, {}),
    ("multi_margin", "margin", float("inf"), {}),
    ("multi_margin", "margin", float("nan"), {}),
]


@pytest.mark.parametrize("entry", ENTRY)
@pytest.mark.parametrize("name", [BCE, FOCAL, CCE, CFOCAL, SCCE])
def test_eps_too_small_for_float32(name, entry):
    """eps so small that 1 - eps rounds to 1 in float32 would let the clip reach
    log(0): a ValueError naming eps for float32 inputs; float64 inputs take it
    and match the reference."""
    y, p = _valid_inputs(name, dtype=np.float32)
    with pytest.raises(ValueError, match=r"\beps\b.*too small for float32"):
        call(name, entry, y, p, eps=1e-8)
    # 2^-25 rounds 1 - eps to 1 (ties to even); 3e-8 just above it does not.
    with pytest.raises(ValueError, match=r"\beps\b"):
        call(name, entry, y, p, eps=2.0**-25)
    call(name, entry, y, p, eps=3e-8)
    y64, p64 = _valid_inputs(name)
    p64 = p64.copy()
    if ref.is_binary(name):
        p64[0, 0] = 1.0  # clipped to 1 - eps: finite, -log(eps)-sized loss where y = 0
        y64 = y64.copy()
        y64[0, 0] = 0.0
    if entry == "value":
        check(name, {"eps": 1e-8}, y64, p64, reduction="sum", what="float64, eps=1e-8")
    with pytest.raises(ValueError, match=r"\beps\b.*too small for float64"):
        call(name, entry, y64, p64, eps=1e-17)


def _valid_inputs(name, C=3, dtype=np.float64):
    if ref.is_sparse(name):
        return np.array([0, 1, 2, 1]), np.full((4, C), 0.5, dtype)
    if ref.is_binary(name):
        return np.full((4, C), 0.5, dtype), np.full((4, C), 0.5, dtype)
    return np.full((4, C), 1.0 / C, dtype), np.full((4, C), 1.0 / C, dtype)


@pytest.mark.parametrize("entry", ENTRY)
@pytest.mark.parametrize("bad", BAD_OPTIONS, ids=lambda b: f"{config_id((b[0], {}))}-{b[1]}={b[2]}")
def test_bad_option_values(bad, entry):
    name, opt, value, extra = bad
    y, p = _valid_inputs(name)
    with pytest.raises(ValueError, match=rf"\b{opt}\b"):
        call(name, entry, y, p, **{opt: value}, **extra)
    y, p = _valid_inputs(name, dtype=np.float32)
    with pytest.raises(ValueError, match=rf"\b{opt}\b"):
        call(name, entry, y, p, reduction="none", **{opt: value}, **extra)


def test_boundary_option_values_accepted():
    y, p = _valid_inputs(BCE)
    fl.bce(y, p, eps=1e-16)  # the smallest float64 eps is just above 2^-54
    with pytest.raises(ValueError, match="too small for float64"):
        fl.bce(y, p, eps=1e-300)
    fl.bce(y, p, eps=0.4999)
    fl.bce(y, p, label_smoothing=0.0)
    fl.bce(y, p, label_smoothing=0.999)
    fl.binary_focal(y, p, gamma=0.0)
    y, p = _valid_inputs("jensen_shannon")
    fl.jensen_shannon(y, p, beta=0.0)
    fl.jensen_shannon(y, p, beta=1.0)
    t, x = _valid_inputs("multi_margin")
    fl.multi_margin(t, x, p=1)
    fl.multi_margin(t, x, p=2)
    fl.multi_margin(t, x, margin=0.0)
    fl.multi_margin(t, x, margin=-1.0)


@pytest.mark.parametrize("entry", ENTRY)
@pytest.mark.parametrize("name", [SCCE, "nll", "multi_margin"])
def test_bad_class_weights(name, entry):
    t, x = _valid_inputs(name, C=3)
    for bad in (np.ones(2), np.ones(4), np.ones((3, 1)), np.ones((1, 3)), np.ones(0), 1.0):
        with pytest.raises(ValueError, match="class_weights"):
            call(name, entry, t, x, class_weights=bad)
    call(name, entry, t, x, class_weights=np.ones(3))
    call(name, entry, t, x, class_weights=[1.0, 2.0, 3.0])


ROW_NAMES = ref.DENSE_ROWS + ref.LABEL_ROWS


@pytest.mark.parametrize("entry", ENTRY)
@pytest.mark.parametrize("name", ROW_NAMES)
def test_axis_out_of_range(name, entry):
    y, p = _valid_inputs(name)
    for axis in (2, -3, 5, 100):
        with pytest.raises(ValueError, match="axis"):
            call(name, entry, y, p, axis=axis)
    # axis 0 and 1 / -2 and -1 are valid
    if not ref.is_sparse(name):
        call(name, entry, y, p, axis=0)
        call(name, entry, y, p, axis=-2)


@pytest.mark.parametrize("entry", ENTRY)
@pytest.mark.parametrize("name", ROW_NAMES)
def test_zero_classes_and_0d(name, entry):
    p = np.zeros((4, 0))
    y = np.zeros(4, np.int64) if ref.is_sparse(name) else np.zeros((4, 0))
    with pytest.raises(ValueError):
        call(name, entry, y, p)
    p0 = np.array(0.5)
    y0 = np.array(0) if ref.is_sparse(name) else np.array(0.5)
    with pytest.raises(ValueError):
        call(name, entry, y0, p0)


@pytest.mark.parametrize("entry", ENTRY)
@pytest.mark.parametrize("config", [(BCE, {}), (BCE, {"from_logits": True}), (FOCAL, {}), (FOCAL, {"from_logits": True}),
                                    (CCE, {}), (CCE, {"from_logits": True}), (CFOCAL, {}), (CFOCAL, {"from_logits": True})],
                         ids=lambda c: config_id(c))
def test_y_true_outside_unit_interval(config, entry):
    name, opts = config
    for bad in (1.5, -0.5, 2.0, -1e-3, np.inf):
        y, p = _valid_inputs(name)
        y = y.copy()
        y[2, 1] = bad
        with pytest.raises(ValueError, match="y_true"):
            call(name, entry, y, p, **opts)
        with pytest.raises(ValueError, match="y_true"):
            call(name, entry, y.astype(np.float32), p.astype(np.float32), reduction="sum", **opts)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
def test_y_true_range_position_in_large_arrays(dtype, threads, restore_threads):
    """The binary losses check y_true inside the kernel as they read it (one
    pass over memory); the error still names the first bad position, in any
    chunk, also when the gradient is written over y_true (then the check runs
    before the kernel)."""
    fl.set_num_threads(threads)
    n = 300_003
    rng = np.random.default_rng(71)
    y0 = (rng.random(n) < 0.5).astype(dtype)
    x = rng.normal(0.0, 2.0, n).astype(dtype)
    p = rng.uniform(0.01, 0.99, n).astype(dtype)
    for name, opts, pred in [
        (BCE, {"from_logits": True}, x),
        (BCE, {}, p),
        (FOCAL, {"from_logits": True}, x),
        (FOCAL, {}, p),
    ]:
        for pos in (0, 17, 70_000, 299_999, 300_002):
            for entry in ENTRY:
                y = y0.copy()
                y[pos] = 1.5
                y[-1 if pos < n - 1 else 0] = np.nan  # NaN is not out of range
                with pytest.raises(ValueError, match=rf"y_true must be in \[0, 1\].*position \({pos},\)"):
                    call(name, entry, y, pred, **opts)
            y = y0.copy()
            y[pos] = -0.25
            with pytest.raises(ValueError, match=rf"position \({pos},\)"):
                getattr(fl, name).grad(y, pred, reduction="none", out=y, **opts)
        # and a clean call after a failed one
        v = getattr(fl, name)(y0, pred, **opts)
        assert np.isfinite(v)


@pytest.mark.parametrize("entry", ENTRY)
def test_dense_shape_mismatch(entry):
    for name in (CCE, "kl_divergence", "jensen_shannon", "categorical_hinge", CFOCAL, BCE, "hinge"):
        with pytest.raises(ValueError, match="y_true|shape"):
            call(name, entry, np.zeros((4, 3)), np.full((4, 4), 0.25))
        with pytest.raises(ValueError, match="y_true|shape"):
            call(name, entry, np.zeros((4,)), np.full((4, 3), 0.25))


UNKNOWN = [("hinge", "from_logits"), ("multi_margin", "ignore_index"), ("nll", "from_logits"), (BCE, "gamma"),
           ("kl_divergence", "beta"), (CCE, "class_weights"), ("soft_margin", "eps")]


@pytest.mark.parametrize("entry", ENTRY)
@pytest.mark.parametrize("bad", UNKNOWN, ids=lambda b: f"{b[0]}-{b[1]}")
def test_unknown_option(bad, entry):
    name, opt = bad
    y, p = _valid_inputs(name)
    with pytest.raises(TypeError, match=opt):
        call(name, entry, y, p, **{opt: 1})


@pytest.mark.parametrize("entry", ENTRY)
def test_bad_reduction_and_y_pred_dtype(entry):
    for name in NAMES:
        y, p = _valid_inputs(name)
        with pytest.raises(ValueError, match="reduction"):
            call(name, entry, y, p, reduction="avg")
        with pytest.raises(TypeError, match="y_pred"):
            call(name, entry, y, p.astype(np.int32))


# --------------------------------------------------------------------------
# Threads
# --------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def _thread_jobs():
    jobs = []
    specs = [
        (SCCE, {"from_logits": True, "ignore_index": -100, "label_smoothing": 0.1}, (20_000, 50), np.float32),
        (CCE, {"from_logits": True}, (4_000, 300), np.float64),
        (BCE, {"from_logits": True}, (600_000,), np.float32),
        (CFOCAL, {"from_logits": True}, (3_000, 100), np.float32),
        ("kl_divergence", {"log_input": True}, (10_000, 40), np.float64),
        ("multi_margin", {"p": 2}, (30_000, 10), np.float32),
        ("jensen_shannon", {}, (5, 32000), np.float32),
        (FOCAL, {}, (300_001,), np.float64),
    ]
    rng = np.random.default_rng(70)
    for i, (name, opts, shape, dtype) in enumerate(specs):
        y, p = make_data(name, opts, shape, -1, dtype, 200 + i)
        R = rows_shape(name, opts, shape)
        w = rng.uniform(0.5, 2.0, R) if i % 3 == 0 else None
        jobs.append((name, opts, y, p, REDUCTIONS[i % 3], w))
    return jobs


def _run_job(job, barrier=None, repeat=1):
    name, opts, y, p, reduction, w = job
    fn = getattr(fl, name)
    if barrier is not None:
        barrier.wait(timeout=60)
    out = None
    for _ in range(repeat):
        v, g = fn.value_and_grad(y, p, reduction=reduction, weights=w, **opts)
        v1 = fn(y, p, reduction=reduction, weights=w, **opts)
        g1 = fn.grad(y, p, reduction=reduction, weights=w, **opts)
        res = (np.asarray(v).tobytes(), g.tobytes(), np.asarray(v1).tobytes(), g1.tobytes())
        if out is None:
            out = res
        assert res == out, f"{name}: repeated call in a thread gave a different result"
    return out


def test_eight_python_threads_at_once():
    jobs = _thread_jobs()
    sequential = [_run_job(job) for job in jobs]
    for _ in range(2):
        barrier = threading.Barrier(len(jobs))
        with concurrent.futures.ThreadPoolExecutor(max_workers=len(jobs)) as ex:
            futures = [ex.submit(_run_job, job, barrier, 2) for job in jobs]
            results = [f.result(timeout=120) for f in futures]
        for job, seq, res in zip(jobs, sequential, results):
            assert seq == res, f"{job[0]} {job[3].shape} differs when run concurrently"


def test_bit_identical_across_thread_counts(restore_threads):
    jobs = _thread_jobs()
    for job in jobs[:4]:
        results = {}
        for n in (1, 2, 3):
            fl.set_num_threads(n)
            results[n] = _run_job(job)
        assert results[1] == results[2] == results[3], job[0]
    # and the threaded results are the right ones
    fl.set_num_threads(3)
    for name, opts, y, p, reduction, w in jobs[::2]:
        check(name, opts, y, p, reduction="sum", weights=w, what="threaded")


def test_many_small_calls_from_threads():
    rng = np.random.default_rng(71)
    data = [(rng.integers(0, 5, 3), rng.normal(size=(3, 5))) for _ in range(64)]
    expect = [fl.sparse_cce.value_and_grad(t, x, from_logits=True) for t, x in data]

    def work(k):
        for _ in range(30):
            for i in range(k, len(data), 8):
                v, g = fl.sparse_cce.value_and_grad(*data[i], from_logits=True)
                if v != expect[i][0] or not np.array_equal(g, expect[i][1]):
                    return i
        return None

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as ex:
        bad = [r for r in ex.map(work, range(8)) if r is not None]
    assert not bad, f"wrong results for inputs {bad}"


# --------------------------------------------------------------------------
# Every SIMD target
# --------------------------------------------------------------------------

TARGETS = fastloss.testing.simd_targets()
# row lengths / element counts around every vector width (4, 8, 16 lanes) and
# its unrolled multiples
SIMD_CS = [1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 33, 64, 100]
SIMD_NS = [1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 33, 63, 65]


@pytest.mark.parametrize("config", ALL_CONFIGS, ids=ALL_IDS)
@pytest.mark.parametrize("target", TARGETS)
def test_every_loss_on_target(target, config):
    name, opts = config
    with fastloss.testing.force_target(target):
        for dtype in DTYPES:
            if ref.is_binary(name):
                for n in SIMD_NS:
                    y, p = make_binary(name, opts, (n,), dtype, n)
                    check(name, opts, y, p, reduction="none", what=target)
                y, p = make_binary(name, opts, (1000,), dtype, 0)
                check(name, opts, y, p, reduction="mean", what=target)
                check(name, opts, y[::-3], p[::-3], reduction="sum", what=target)
            else:
                for C in SIMD_CS:
                    o = resolve(opts, C)
                    y, p = make_rows(name, o, (3, C), -1, dtype, C)
                    check(name, o, y, p, reduction="none", what=target)
                o = resolve(opts, 37)
                y, p = make_rows(name, o, (2, 37, 5), 1, dtype, 3)
                check(name, dict(o, axis=1), y, p, reduction="mean", what=target)


# Sparse cross-entropy from logits with C <= 32 classes runs a block of
# Lanes rows at a time (one row per lane, classes transposed through a tile in
# registers for C >= Lanes, through scalar moves below); the rows left over
# and the other losses take the row path. Row counts around the blocks
# (8 / 4 lanes, four blocks per round) and class counts around the transpose
# (4, 8) and the 32-class limit.
BLOCK_RS = [7, 8, 9, 16, 31, 32, 33, 67]
BLOCK_CS = [1, 2, 3, 4, 5, 7, 8, 9, 12, 15, 16, 17, 31, 32, 33]
BLOCK_OPTS = [
    {"from_logits": True},
    {"from_logits": True, "ignore_index": -100},
    {"from_logits": True, "label_smoothing": 0.1, "class_weights": CW, "ignore_index": 3},
]


@pytest.mark.parametrize("target", TARGETS)
def test_sparse_blocks_on_target(target):
    with fastloss.testing.force_target(target):
        for dtype in DTYPES:
            for C in BLOCK_CS:
                for i, opts in enumerate(BLOCK_OPTS):
                    o = resolve(opts, C)
                    R = BLOCK_RS[(C + i) % len(BLOCK_RS)]
                    t, x = make_rows(SCCE, o, (R, C), -1, dtype, C + 100 * i)
                    w = np.random.default_rng(C).uniform(0.5, 2.0, R).astype(dtype) if i == 2 else None
                    check(SCCE, o, t, x, reduction="none", weights=w, what=target)
                    check(SCCE, o, t, x, reduction="mean", weights=w, what=target)
                # strided rows (a row stride other than C) and classes
                t, x = make_rows(SCCE, {"from_logits": True}, (41, 2 * C + 3), -1, dtype, C)
                check(SCCE, {"from_logits": True}, t % C, x[:, 1 : C + 1], reduction="sum", what=target)
                check(SCCE, {"from_logits": True}, t[::2] % C, x[::2, :C], reduction="none", what=target)


@pytest.mark.parametrize("target", TARGETS)
def test_sparse_block_edges_on_target(target):
    """Masked, fully masked, NaN and ignored rows inside a block: the row
    path's results, row by row."""
    with fastloss.testing.force_target(target):
        for dtype in DTYPES:
            base = np.array(MASK_X, dtype)  # 5 rows x 4 classes
            for C in (4, 9, 20):
                x = np.tile(base, (7, (C + 3) // 4))[:, :C].copy()
                R = x.shape[0]
                t = np.tile([2, 0, 3, 1, 1], 7)
                t = np.where(t < C, t, 0)
                x[5] = np.nan  # ignored below
                x[12] = np.nan  # not ignored: NaN
                t[5] = -100
                o = {"from_logits": True, "ignore_index": -100}
                v = fl.sparse_cce(t, x, reduction="none", **o)
                g = fl.sparse_cce.grad(t, x, reduction="none", **o)
                for r in range(R):
                    if r in (5, 12):
                        continue
                    vr = fl.sparse_cce(t[r : r + 1], x[r : r + 1], reduction="none", **o)
                    gr = fl.sparse_cce.grad(t[r : r + 1], x[r : r + 1], reduction="none", **o)
                    assert_close(v[r], vr[0], rtol=1e-6 if dtype == np.float32 else 1e-14,
                                 what=f"{target} C={C} row {r} value")
                    assert_close(g[r], gr[0], rtol=1e-6 if dtype == np.float32 else 1e-14,
                                 atol=1e-30, what=f"{target} C={C} row {r} grad")
                assert v[5] == 0 and np.all(g[5] == 0), (v[5], g[5])
                assert np.isnan(v[12]) and np.all(np.isnan(g[12])), (v[12], g[12])
                fully = [r for r in range(R) if np.all(np.isneginf(x[r]))]
                assert fully and all(np.isnan(v[r]) and np.all(g[r] == 0) for r in fully)
                # in place: the gradient written over the logits
                xx = x.copy()
                vv, gg = fl.sparse_cce.value_and_grad(t, xx, reduction="none", out=xx, **o)
                assert gg is xx or np.shares_memory(gg, xx)
                tol = 1e-6 if dtype == np.float32 else 1e-14
                assert_close(gg, g, rtol=tol, atol=1e-30, what=f"{target} C={C} in place grad")
                assert_close(vv, v, rtol=tol, what=f"{target} C={C} in place value")


TARGET_EDGES = [
    ("bce_extremes", lambda d: [test_bce_logits_extremes(d, pw) for pw in (None, 2.0)]),
    ("bce_soft_inf", lambda d: test_bce_logits_soft_labels_at_infinity(d)),
    ("bce_f32_saturated", lambda d: test_bce_float32_saturated_logits() if d == np.float32 else None),
    ("bfocal_extremes", lambda d: test_binary_focal_logits_extremes(d)),
    ("bce_clipped", lambda d: test_bce_probabilities_clipped(d)),
    ("huge_logits", lambda d: test_equal_huge_logits_give_log2(d)),
    ("masked", lambda d: test_masked_logits(d)),
    ("ignored_nan", lambda d: test_ignored_rows_with_nan_logits(d)),
    ("kl_zero", lambda d: test_kl_zero_targets(d)),
    ("kl_inf", lambda d: test_kl_infinities_and_negative_targets(d)),
    ("soft_margin", lambda d: test_soft_margin_values(d)),
]


@pytest.mark.parametrize("case", TARGET_EDGES, ids=[c[0] for c in TARGET_EDGES])
@pytest.mark.parametrize("target", TARGETS)
def test_edge_cases_on_target(target, case):
    with fastloss.testing.force_target(target):
        for dtype in DTYPES:
            case[1](dtype)
