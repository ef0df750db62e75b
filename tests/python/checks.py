"""Shared helpers for the fastloss Python tests: loss configurations, input data
valid for each loss, per-dtype tolerances and one checker that runs the three
entry points (value, grad, value_and_grad) of a loss against the reference."""

import numpy as np

import fastloss as fl
from fastloss.reference import regression as ref

LOSS_NAMES = ["mse", "mae", "huber", "smooth_l1", "log_cosh", "msle", "mape", "poisson_nll", "quantile"]

# (name, options): every loss with its defaults, plus the option values that
# switch branches (beta == 0, eps == 0, log_input/full) or move kinks.
CONFIGS = [
    ("mse", {}),
    ("mae", {}),
    ("huber", {}),
    ("huber", {"delta": 0.5}),
    ("huber", {"delta": 2.5}),
    ("smooth_l1", {}),
    ("smooth_l1", {"beta": 0.5}),
    ("smooth_l1", {"beta": 0.0}),
    ("log_cosh", {}),
    ("msle", {}),
    ("mape", {}),
    ("mape", {"eps": 0.5}),
    ("poisson_nll", {}),
    ("poisson_nll", {"full": True}),
    ("poisson_nll", {"log_input": False}),
    ("poisson_nll", {"log_input": False, "full": True}),
    ("poisson_nll", {"log_input": False, "eps": 0.0}),
    ("quantile", {}),
    ("quantile", {"q": 0.1}),
    ("quantile", {"q": 0.9}),
]


def config_id(config):
    name, opts = config
    if not opts:
        return name
    return name + "-" + "-".join(f"{k}={v}" for k, v in opts.items())


CONFIG_IDS = [config_id(c) for c in CONFIGS]

REDUCTIONS = ["mean", "sum", "none"]
DTYPES = [np.float32, np.float64]
TRANSCENDENTAL = {"log_cosh", "msle", "poisson_nll"}


def rtol_for(name, dtype):
    if np.dtype(dtype) == np.float32:
        return 2e-5
    return 1e-10 if name in TRANSCENDENTAL else 1e-12


def floor_for(dtype):
    """Absolute allowance for results that underflow (r^2 of tiny r, ...)."""
    return 1e-36 if np.dtype(dtype) == np.float32 else 1e-300


def make_data(name, opts, shape, dtype, seed):
    """Random (y_true, y_pred) of ``shape`` and ``dtype`` inside the loss's domain.

    Includes exact ties (y_pred == y_true) for the losses with a kink at r == 0,
    large residuals for log_cosh, exact zeros of y_true for mape."""
    rng = np.random.default_rng([seed, len(shape), int(np.prod(shape))])
    size = shape

    def unif(lo, hi):
        return np.asarray(rng.uniform(lo, hi, size))

    def norm(s):
        return np.asarray(rng.normal(0.0, s, size))

    ties = None
    if name in ("mse", "mae", "huber", "smooth_l1", "quantile", "log_cosh"):
        y = norm(2.0)
        p = y + norm(2.0)
        if name == "log_cosh":
            far = np.asarray(rng.random(size)) < 0.1
            p = np.where(far, y + np.where(norm(1.0) < 0, -1, 1) * unif(20, 400), p)
        ties = np.asarray(rng.random(size)) < 0.1
    elif name == "msle":
        y = np.expm1(unif(-2.0, 2.5))
        p = np.expm1(unif(-2.0, 2.5))
    elif name == "mape":
        y = norm(3.0)
        y = np.where(np.abs(y) < 0.1, np.copysign(0.1, y) + y, y)
        if seed % 2:
            y = np.where(np.asarray(rng.random(size)) < 0.1, 0.0, y)
        p = y + norm(2.0)
        ties = np.asarray(rng.random(size)) < 0.05
    elif name == "poisson_nll":
        if opts.get("log_input", True):
            p = norm(1.5)
            rate = np.exp(p)
        else:
            p = np.exp(norm(1.0))
            rate = p
        counts = np.asarray(rng.poisson(rate)).astype(np.float64)
        y = np.where(np.asarray(rng.random(size)) < 0.5, counts, unif(0.0, 5.0))
    else:
        raise KeyError(name)
    y = np.asarray(y).astype(dtype)
    p = np.asarray(p).astype(dtype)
    if ties is not None:
        p = np.where(ties, y, p).astype(dtype)
    return np.asarray(y), np.asarray(p)


def expected(name, opts, y_true, y_pred, *, weights=None, reduction="mean", dtype=None):
    """Reference (value, grad, value_allowance, grad_allowance) for a call.

    Inputs are first rounded to the computation dtype (y_pred's), as the library
    converts y_true and weights to it; the reference then runs in float64."""
    if dtype is None:
        dtype = np.asarray(y_pred).dtype
    p = np.asarray(y_pred).astype(dtype).astype(np.float64)
    y = np.asarray(y_true).astype(dtype).astype(np.float64)
    shape = p.shape
    w = None if weights is None else np.asarray(weights).astype(dtype).astype(np.float64)
    l, dl = ref.loss(name, y, p, **opts)
    ml, mdl = ref.magnitude(name, y, p, **opts)
    v, g = ref.reduce(l, dl, w, reduction, shape)
    vm, gm = ref.reduce(ml, mdl, None if w is None else np.abs(w), reduction, shape)
    if reduction == "mean" and w is not None:
        # reduce divided the allowance by sum(|w|); keep it relative to |sum(w)|.
        with np.errstate(all="ignore"):
            scale = np.sum(np.abs(np.broadcast_to(w, shape))) / np.abs(np.sum(np.broadcast_to(w, shape)))
        vm, gm = vm * scale, gm * scale
    return v, g, vm, gm


def assert_close(actual, expect, *, rtol, mag=None, atol=0.0, what=""):
    """|actual - expect| <= rtol * (|expect| + mag) + atol elementwise; NaN must
    match NaN and inf must match the same inf exactly."""
    a = np.asarray(actual, dtype=np.float64)
    e = np.asarray(expect, dtype=np.float64)
    assert a.shape == e.shape, f"{what}: shape {a.shape} != expected {e.shape}"
    m = np.abs(e) if mag is None else np.abs(e) + np.asarray(mag, dtype=np.float64)
    with np.errstate(all="ignore"):
        tol = rtol * m + atol
        diff = np.abs(a - e)
        nan_e = np.isnan(e)
        inf_e = np.isinf(e)
        bad = np.isnan(a) != nan_e
        bad |= inf_e & (a != e)
        bad |= ~nan_e & ~inf_e & ~(diff <= tol)
    if np.any(bad):
        idx = np.argwhere(np.atleast_1d(bad))[:5]
        af, ef, tf = np.atleast_1d(a), np.atleast_1d(e), np.atleast_1d(np.broadcast_to(tol, e.shape))
        lines = [f"  at {tuple(i)}: got {af[tuple(i)]!r}, expected {ef[tuple(i)]!r}, allowed {tf[tuple(i)]:.3g}" for i in idx]
        raise AssertionError(f"{what}: {int(np.sum(bad))} of {bad.size} elements differ\n" + "\n".join(lines))


def assert_same(a, b, *, dtype, what=""):
    """Two results of the library for the same call agree to a few ulp."""
    assert_close(a, b, rtol=8 * np.finfo(dtype).eps, atol=floor_for(dtype), what=what)


def check_value_type(v, reduction, shape, dtype, what=""):
    dtype = np.dtype(dtype)
    if reduction == "none":
        assert isinstance(v, np.ndarray), f"{what}: reduction='none' returned {type(v)}"
        assert v.shape == tuple(shape), f"{what}: shape {v.shape} != {tuple(shape)}"
        assert v.dtype == dtype, f"{what}: dtype {v.dtype} != {dtype}"
    else:
        assert type(v) is dtype.type, f"{what}: returned {type(v)}, expected {dtype.type}"


def check_grad_type(g, shape, dtype, what=""):
    assert isinstance(g, np.ndarray), f"{what}: grad is {type(g)}"
    assert g.shape == tuple(shape), f"{what}: grad shape {g.shape} != {tuple(shape)}"
    assert g.dtype == np.dtype(dtype), f"{what}: grad dtype {g.dtype} != {np.dtype(dtype)}"


def check_call(name, opts, y_true, y_pred, *, reduction="mean", weights=None, rtol=None):
    """Run value, grad and value_and_grad; check types, agreement between the
    three, and the numbers against the reference. Returns (value, grad)."""
    fn = getattr(fl, name)
    dtype = np.asarray(y_pred).dtype
    shape = np.asarray(y_pred).shape
    if rtol is None:
        rtol = rtol_for(name, dtype)
    kw = dict(reduction=reduction, weights=weights, **opts)
    what = f"{name}{opts} reduction={reduction} dtype={dtype.name} shape={shape}"

    v = fn(y_true, y_pred, **kw)
    g = fn.grad(y_true, y_pred, **kw)
    vg = fn.value_and_grad(y_true, y_pred, **kw)

    check_value_type(v, reduction, shape, dtype, what)
    check_grad_type(g, shape, dtype, what)
    assert g.flags.c_contiguous, f"{what}: grad not C-contiguous"
    assert isinstance(vg, tuple) and len(vg) == 2, f"{what}: value_and_grad returned {type(vg)}"
    v2, g2 = vg
    check_value_type(v2, reduction, shape, dtype, what + " value_and_grad")
    check_grad_type(g2, shape, dtype, what + " value_and_grad")

    ev, eg, vm, gm = expected(name, opts, y_true, y_pred, weights=weights, reduction=reduction, dtype=dtype)
    floor = floor_for(dtype)
    assert_close(v, ev, rtol=rtol, mag=vm, atol=floor, what=what + " value")
    assert_close(g, eg, rtol=rtol, mag=gm, atol=floor, what=what + " grad")
    assert_same(v2, v, dtype=dtype, what=what + " value_and_grad value vs value")
    assert_same(g2, g, dtype=dtype, what=what + " value_and_grad grad vs grad")
    return v, g


# The segment keywords of a fuzzed call, as code for a subprocess (it runs
# with numpy as np, a Generator `rng` and the item count `n`): wrong values,
# dtypes, shapes and huge numbers for offsets / segment_ids / num_segments.
FUZZ_SEGMENT_KEYWORDS = r"""
def fuzz_segment_keywords(rng, n):
    kind = rng.integers(0, 6)
    kw = {}
    if kind == 0:
        kw["offsets"] = np.sort(rng.integers(-3, n + 4, int(rng.integers(0, 6))))
    elif kind == 1:
        kw["offsets"] = rng.integers(-2**62, 2**62, int(rng.integers(1, 5)))
    elif kind == 2:
        kw["segment_ids"] = np.sort(rng.integers(-1, 5, n)); kw["num_segments"] = int(rng.integers(-1, 6))
    elif kind == 3:
        kw["segment_ids"] = rng.integers(0, 4, int(rng.integers(max(n - 1, 0), n + 2)))
        kw["num_segments"] = 4
    elif kind == 4:
        kw["offsets"] = rng.normal(size=3) if rng.random() < 0.5 else np.zeros((2, 2), np.int64)
    else:
        kw["offsets"] = np.array([0, n], np.int64)
        kw["num_segments"] = [None, 2**63, -5, "x", 2.5][int(rng.integers(0, 5))]
    return kw
"""
