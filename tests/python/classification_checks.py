"""The classification losses' test data and checker, shared by test_classification.py
(the whole family), test_binary.py (the binary losses, elementwise driver) and
test_rowwise.py (the losses over a class axis, row-wise driver): the option grids,
data inside each loss's domain, the expected values of the NumPy float64 reference
of fastloss.reference.classification and the checker of value, gradient and fused
call.
"""

import numpy as np
import pytest

import fastloss as fl
import fastloss.testing
from fastloss.reference import classification as ref
from checks import DTYPES, assert_close, check_grad_type, check_value_type, floor_for

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
    ("multilabel_soft_margin", {}),
    ("multilabel_soft_margin", {"class_weights": CW}),
    ("poly1_cross_entropy", {}),
    ("poly1_cross_entropy", {"epsilon": -1.0}),
    ("poly1_cross_entropy", {"epsilon": 0.5, "label_smoothing": 0.1}),
    ("poly1_cross_entropy", {"from_logits": False}),
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
    ("generalized_cross_entropy", {}),
    ("generalized_cross_entropy", {"q": 0.1}),
    ("generalized_cross_entropy", {"q": 0.9, "ignore_index": -100}),
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
TRANSCENDENTAL = {
    BCE,
    FOCAL,
    "soft_margin",
    CCE,
    CFOCAL,
    "kl_divergence",
    "jensen_shannon",
    SCCE,
    "poly1_cross_entropy",
    "multilabel_soft_margin",
    "generalized_cross_entropy",
}


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


def seeded_rng(seed, shape, tag):
    return np.random.default_rng([seed, len(shape), int(np.prod(shape)), tag])


def make_binary(name, opts, shape, dtype, seed, fd=False):
    """(y_true, y_pred) for an elementwise loss. fd: away from kinks and clip
    boundaries (finite differences)."""
    rng = seeded_rng(seed, shape, 1)
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


def distributions(rng, shape, zeros=0.0):
    d = rng.uniform(0.05, 1.0, shape)
    if zeros and shape[-1] > 1:
        z = rng.random(shape) < zeros
        z[..., 0] = False
        d = np.where(z, 0.0, d)
    return d / np.sum(d, axis=-1, keepdims=True)


def class_targets(rng, shape):
    """Rows of one-hot and of soft targets (each sums to 1)."""
    R, C = shape[:-1], shape[-1]
    onehot = (np.arange(C) == rng.integers(0, C, R)[..., None]).astype(np.float64)
    soft = distributions(rng, shape, zeros=0.2)
    return np.where((rng.random(R) < 0.5)[..., None], onehot, soft)


def make_rows(name, opts, shape, axis, dtype, seed, fd=False):
    """(y_true, y_pred) for a row loss with the classes along ``axis``; labels
    are int64 for the sparse losses."""
    name = ref.canonical(name)
    rng = seeded_rng(seed, shape, 2)
    ax = axis % len(shape)
    C = shape[ax]
    lshape = tuple(shape[:ax]) + tuple(shape[ax + 1 :]) + (C,)  # classes last
    R = lshape[:-1]
    labels = None
    if name in (CCE, CFOCAL, "poly1_cross_entropy"):
        y = class_targets(rng, lshape)
        if opts.get("from_logits", name == "poly1_cross_entropy"):
            p = rng.normal(0.0, 3.0, lshape)
        else:
            p = rng.uniform(0.05, 1.0, lshape)
            if C > 1:
                tiny = rng.random(lshape) < 0.06
                tiny[..., 0] = False
                p = np.where(tiny, opts.get("eps", 1e-7) * 1e-3 if fd else 0.0, p)
    elif name == "multilabel_soft_margin":
        y = (rng.random(lshape) < 0.4) * 1.0
        p = rng.normal(0.0, 3.0, lshape)
    elif name == "categorical_hinge":
        for _ in range(1000):
            y = class_targets(rng, lshape) if not fd else (np.arange(C) == rng.integers(0, C, R)[..., None]) * 1.0
            p = rng.normal(0.0, 1.0, lshape)
            if not fd or C < 2:
                break
            v = np.sort((1.0 - y) * p, axis=-1)
            z = v[..., -1] - np.sum(y * p, axis=-1) + 1.0
            if np.all(v[..., -1] - v[..., -2] > 1e-3) and np.all(np.abs(z) > 1e-3):
                break
    elif name == "kl_divergence":
        if opts.get("log_target"):
            y = np.log(distributions(rng, lshape))
        else:
            y = distributions(rng, lshape, zeros=0.2)
        q = distributions(rng, lshape)
        p = np.log(q) if opts.get("log_input") else q
    elif name == "jensen_shannon":
        beta = opts.get("beta", 0.5)
        log_input = opts.get("log_input", False)
        P = distributions(rng, lshape, zeros=0.0 if (log_input or beta == 1.0) else 0.2)
        Q = distributions(rng, lshape)
        if log_input:
            y, p = np.log(P), np.log(Q)
        else:
            y, p = P, Q
    elif name in (SCCE, "nll", "multi_margin", "generalized_cross_entropy"):
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
        elif name == "generalized_cross_entropy":
            p = distributions(rng, lshape)
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


SENTINEL = 12345.5


TARGETS = fastloss.testing.simd_targets()


def edge_cases_on_every_target(edges):
    """test_edge_cases_on_target of test_binary.py and test_rowwise.py: each
    of ``edges`` (id, function of the dtype: an edge-case test) in every
    dtype, with every target forced."""

    @pytest.mark.parametrize("case", edges, ids=[c[0] for c in edges])
    @pytest.mark.parametrize("target", TARGETS)
    def test_edge_cases_on_target(target, case):
        with fastloss.testing.force_target(target):
            for dtype in DTYPES:
                case[1](dtype)

    return test_edge_cases_on_target
