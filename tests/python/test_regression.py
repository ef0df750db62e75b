"""The regression losses against the NumPy float64 reference: grids over loss x
option x reduction x dtype x shape, weights, finite differences, and the edge
cases each loss's formula has (kinks, domains, overflow, NaN, empty input)."""

import math

import numpy as np
import pytest

import fastloss as fl
from fastloss.reference import regression as ref
from checks import (
    CONFIG_IDS,
    CONFIGS,
    DTYPES,
    REDUCTIONS,
    assert_close,
    check_call,
    floor_for,
    make_data,
    rtol_for,
)

SHAPES = [(), (1,), (7,), (8,), (9,), (15,), (16,), (17,), (33,), (1000,), (3, 5), (4, 3, 5), (0,), (2, 0)]


def shape_id(shape):
    return "x".join(map(str, shape)) if shape else "0d"


def dtype_id(dtype):
    return np.dtype(dtype).name


# --------------------------------------------------------------------------
# The grid: every loss/option x reduction x dtype x shape, value, grad and
# value_and_grad against the reference, three random seeds each.
# --------------------------------------------------------------------------


@pytest.mark.parametrize("shape", SHAPES, ids=shape_id)
@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("config", CONFIGS, ids=CONFIG_IDS)
def test_grid(config, reduction, dtype, shape):
    name, opts = config
    for seed in range(3):
        y, p = make_data(name, opts, shape, dtype, seed)
        check_call(name, opts, y, p, reduction=reduction)


# --------------------------------------------------------------------------
# Weights
# --------------------------------------------------------------------------

N, T = 6, 11


def make_weights(kind, dtype, rng):
    other = np.float64 if np.dtype(dtype) == np.float32 else np.float32
    if kind == "per_sample":
        return rng.uniform(0.5, 2.0, (N, 1)).astype(dtype)
    if kind == "per_step":
        return (0.9 ** np.arange(T)).astype(dtype)
    if kind == "row":
        return rng.uniform(0.5, 2.0, (1, T)).astype(dtype)
    if kind == "full":
        return rng.uniform(0.5, 2.0, (N, T)).astype(dtype)
    if kind == "scalar":
        return 2.5
    if kind == "scalar_0d":
        return np.array(0.75, dtype=dtype)
    if kind == "one_one":
        return np.array([[1.5]], dtype=dtype)
    if kind == "int":
        return rng.integers(1, 4, (N, T))
    if kind == "bool":
        w = rng.random((N, T)) < 0.6
        w[0, 0] = True
        return w
    if kind == "other_dtype":
        return rng.uniform(0.5, 2.0, (N, T)).astype(other)
    if kind == "other_dtype_per_step":
        return (0.85 ** np.arange(T)).astype(other)
    if kind == "strided":
        big = rng.uniform(0.5, 2.0, (2 * N, 3 * T)).astype(dtype)
        return big[::-2, ::3]
    if kind == "fortran":
        return np.asfortranarray(rng.uniform(0.5, 2.0, (N, T)).astype(dtype))
    raise KeyError(kind)


WEIGHT_KINDS = [
    "per_sample",
    "per_step",
    "row",
    "full",
    "scalar",
    "scalar_0d",
    "one_one",
    "int",
    "bool",
    "other_dtype",
    "other_dtype_per_step",
    "strided",
    "fortran",
]


@pytest.mark.parametrize("kind", WEIGHT_KINDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("config", CONFIGS, ids=CONFIG_IDS)
def test_weights(config, reduction, dtype, kind):
    name, opts = config
    for seed in range(2):
        rng = np.random.default_rng(100 + seed)
        y, p = make_data(name, opts, (N, T), dtype, seed)
        w = make_weights(kind, dtype, rng)
        check_call(name, opts, y, p, reduction=reduction, weights=w)


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_weights_time_decay_1d_and_0d(reduction, dtype):
    """Per-time-step alpha**t on a 1-d series, and a scalar weight on 0-d input."""
    y, p = make_data("huber", {}, (T,), dtype, 3)
    check_call("huber", {"delta": 0.7}, y, p, reduction=reduction, weights=0.8 ** np.arange(T))
    y0, p0 = make_data("mse", {}, (), dtype, 4)
    check_call("mse", {}, y0, p0, reduction=reduction, weights=3.0)


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
def test_weighted_mean_is_weighted_average(dtype):
    """mean with weights = sum(w*l)/sum(w), not sum(w*l)/n: scaling all the
    weights by a constant must not change the mean, and must scale the sum."""
    y, p = make_data("mse", {}, (N, T), dtype, 5)
    w = np.random.default_rng(5).uniform(0.5, 2.0, (N, 1))
    m1 = fl.mse(y, p, weights=w)
    m2 = fl.mse(y, p, weights=4 * w)
    s1 = fl.mse(y, p, weights=w, reduction="sum")
    s2 = fl.mse(y, p, weights=4 * w, reduction="sum")
    rtol = rtol_for("mse", dtype)
    assert_close(m2, m1, rtol=rtol, what="mean with 4*w")
    assert_close(s2, 4 * np.float64(s1), rtol=rtol, what="sum with 4*w")
    # gradient of the weighted mean is also invariant under w -> 4 w
    assert_close(fl.mse.grad(y, p, weights=4 * w), fl.mse.grad(y, p, weights=w), rtol=rtol, what="grad")


# --------------------------------------------------------------------------
# Finite differences (float64, away from kinks)
# --------------------------------------------------------------------------


def fd_data(name, opts, shape, seed):
    rng = np.random.default_rng(1000 + seed)
    if name in ("mse", "mae", "huber", "smooth_l1", "quantile", "log_cosh", "mape"):
        y = rng.normal(0.0, 2.0, shape)
        if name == "mape":
            y = np.where(np.abs(y) < 0.5, y + np.copysign(0.5, y), y)
        mag = rng.uniform(0.05, 3.0, shape)
        kink = opts.get("delta", opts.get("beta", None))
        if name in ("huber", "smooth_l1"):
            kink = 1.0 if kink is None else kink
            mag = np.where(np.abs(mag - kink) < 0.05, mag + 0.1, mag)
        p = y + np.where(rng.random(shape) < 0.5, -mag, mag)
    elif name == "msle":
        y = np.expm1(rng.uniform(-1.5, 2.0, shape))
        p = np.expm1(rng.uniform(-1.5, 2.0, shape))
    elif name == "poisson_nll":
        if opts.get("log_input", True):
            p = rng.normal(0.0, 1.0, shape)
        else:
            p = np.exp(rng.normal(0.0, 0.7, shape))
        y = np.where(rng.random(shape) < 0.5, rng.poisson(2.0, shape).astype(float), rng.uniform(0.0, 5.0, shape))
    else:
        raise KeyError(name)
    return y, p


def fd_weights(kind, shape, rng):
    if kind is None:
        return None
    if kind == "full":
        return rng.uniform(0.5, 2.0, shape)
    if kind == "per_sample":
        return rng.uniform(0.5, 2.0, (shape[0], 1))
    raise KeyError(kind)


@pytest.mark.parametrize("weights_kind", [None, "full", "per_sample"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("config", CONFIGS, ids=CONFIG_IDS)
def test_finite_differences(config, reduction, weights_kind):
    name, opts = config
    fn = getattr(fl, name)
    shape = (3, 4)
    for seed in range(2):
        y, p = fd_data(name, opts, shape, seed)
        w = fd_weights(weights_kind, shape, np.random.default_rng(seed))
        kw = dict(reduction=reduction, weights=w, **opts)

        def value(pp):
            v = fn(y, pp, **kw)
            return float(np.sum(np.asarray(v, dtype=np.float64)))

        g = fn.grad(y, p, **kw)
        v0 = value(p)
        for k in np.ndindex(shape):
            h = 1e-6 * max(1.0, abs(p[k]))
            pp, pm = p.copy(), p.copy()
            pp[k] += h
            pm[k] -= h
            fd = (value(pp) - value(pm)) / (pp[k] - pm[k])
            tol = 1e-6 * abs(g[k]) + 1e-8 * max(1.0, abs(v0))
            assert abs(fd - g[k]) <= tol, f"{name}{opts} {reduction} w={weights_kind} at {k}: fd {fd!r} vs grad {g[k]!r}"


# --------------------------------------------------------------------------
# Empty input and NaN
# --------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(0,), (2, 0), (0, 3)], ids=shape_id)
@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
@pytest.mark.parametrize("config", CONFIGS, ids=CONFIG_IDS)
def test_empty(config, dtype, shape):
    name, opts = config
    fn = getattr(fl, name)
    y = np.zeros(shape, dtype)
    p = np.ones(shape, dtype)
    s = fn(y, p, reduction="sum", **opts)
    assert type(s) is np.dtype(dtype).type and s == 0
    m = fn(y, p, reduction="mean", **opts)
    assert type(m) is np.dtype(dtype).type and np.isnan(m)
    n = fn(y, p, reduction="none", **opts)
    assert isinstance(n, np.ndarray) and n.shape == shape and n.dtype == dtype
    for reduction in REDUCTIONS:
        g = fn.grad(y, p, reduction=reduction, **opts)
        assert isinstance(g, np.ndarray) and g.shape == shape and g.dtype == dtype
        v, g = fn.value_and_grad(y, p, reduction=reduction, **opts)
        assert g.shape == shape and g.dtype == dtype
        if reduction == "sum":
            assert v == 0
        elif reduction == "mean":
            assert np.isnan(v)


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("config", CONFIGS, ids=CONFIG_IDS)
def test_nan_propagates(config, reduction, dtype):
    """NaN in y_pred or y_true gives NaN in that element's loss and gradient
    (and in the reduced value); other elements are unaffected."""
    name, opts = config
    fn = getattr(fl, name)
    y, p = make_data(name, opts, (21,), dtype, 7)
    y, p = y.copy(), p.copy()
    p[2] = np.nan
    y[13] = np.nan
    p[20] = np.nan  # in the loop tail for every vector width
    v, g = check_call(name, opts, y, p, reduction=reduction)
    nan_at = np.zeros(21, bool)
    nan_at[[2, 13, 20]] = True
    assert np.array_equal(np.isnan(g), nan_at), f"grad NaN at {np.flatnonzero(np.isnan(g))}"
    if reduction == "none":
        assert np.array_equal(np.isnan(v), nan_at), f"value NaN at {np.flatnonzero(np.isnan(v))}"
    else:
        assert np.isnan(v)


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_nan_weight(reduction, dtype):
    y, p = make_data("mse", {}, (10,), dtype, 8)
    w = np.ones(10)
    w[4] = np.nan
    check_call("mse", {}, y, p, reduction=reduction, weights=w)


# --------------------------------------------------------------------------
# Per-loss edge cases
# --------------------------------------------------------------------------


def _pair(dtype, y_true, y_pred):
    return np.asarray(y_true, dtype=dtype), np.asarray(y_pred, dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
def test_log_cosh_huge_residuals(dtype):
    big = 1e300 if dtype == np.float64 else 1e38
    r = np.array([big, -big, 3e37, -1e30, 1e10, -1e5, 800.0, -710.0, 100.0, 89.0, -45.0, 20.0], dtype=dtype)
    r = r[np.abs(r) <= big]
    y = np.zeros_like(r)
    v = fl.log_cosh(y, r, reduction="none")
    g = fl.log_cosh.grad(y, r, reduction="none")
    assert np.all(np.isfinite(v)), v
    assert_close(v, np.abs(r.astype(np.float64)) - math.log(2), rtol=rtol_for("log_cosh", dtype), what="log_cosh(big)")
    np.testing.assert_array_equal(g, np.sign(r))
    # a big shift of both arguments: r is what counts
    y2 = np.full(4, -1e30 if dtype == np.float32 else -1e200, dtype)
    p2 = np.zeros(4, dtype)
    v2 = fl.log_cosh(y2, p2, reduction="none")
    assert np.all(np.isfinite(v2))
    np.testing.assert_array_equal(fl.log_cosh.grad(y2, p2, reduction="none"), np.ones(4, dtype))
    # the reduced value of huge residuals is finite too
    assert np.isfinite(fl.log_cosh(y, r, reduction="mean"))


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
def test_log_cosh_tiny_residuals(dtype):
    """log(cosh(r)) = r^2/2 - r^4/12 + ...: no cancellation for small r."""
    r = np.array([1e-8, -1e-8, 3e-6, -1e-4, 1e-3, -3e-3, 1e-2, 0.1, -0.5, 1e-20, 0.0], dtype=dtype)
    y = np.zeros_like(r)
    v = fl.log_cosh(y, r, reduction="none")
    r64 = r.astype(np.float64)
    # float32: 1e-4 relative even at r = 1e-3 (an |r| + log1p(exp(-2|r|)) - log 2
    # form loses everything there); float64: the transcendental tolerance.
    rtol = 1e-4 if dtype == np.float32 else 1e-10
    exact, _ = ref.log_cosh(np.zeros_like(r64), r64)
    assert_close(v, exact, rtol=rtol, atol=floor_for(dtype), what="log_cosh small r")
    assert_close(v[:2], r64[:2] ** 2 / 2, rtol=1e-6, what="log_cosh(1e-8) vs r^2/2")
    g = fl.log_cosh.grad(y, r, reduction="none")
    assert_close(g, np.tanh(r64), rtol=16 * np.finfo(dtype).eps, atol=floor_for(dtype), what="tanh small r")


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
@pytest.mark.parametrize("delta", [0.5, 1.0, 2.5])
def test_huber_continuity_at_delta(delta, dtype):
    d = np.asarray(delta, dtype)
    pts = np.array(
        [d, -d, np.nextafter(d, np.inf), np.nextafter(d, 0), -np.nextafter(d, np.inf), -np.nextafter(d, 0)], dtype=dtype
    )
    y = np.zeros_like(pts)
    v = fl.huber(y, pts, delta=delta, reduction="none")
    g = fl.huber.grad(y, pts, delta=delta, reduction="none")
    half = 0.5 * delta * delta
    assert_close(v, np.full(6, half), rtol=8 * np.finfo(dtype).eps, what="huber at |r| == delta")
    assert v[0] == np.asarray(half, dtype) and v[1] == np.asarray(half, dtype)
    np.testing.assert_array_equal(g[:2], [delta, -delta])
    assert_close(g, np.clip(pts.astype(np.float64), -delta, delta), rtol=4 * np.finfo(dtype).eps, what="huber grad")


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
@pytest.mark.parametrize("beta", [0.5, 1.0, 2.0])
def test_smooth_l1_continuity_at_beta(beta, dtype):
    b = np.asarray(beta, dtype)
    pts = np.array([b, -b, np.nextafter(b, np.inf), np.nextafter(b, 0)], dtype=dtype)
    y = np.zeros_like(pts)
    v = fl.smooth_l1(y, pts, beta=beta, reduction="none")
    g = fl.smooth_l1.grad(y, pts, beta=beta, reduction="none")
    assert_close(v, np.full(4, 0.5 * beta), rtol=8 * np.finfo(dtype).eps, what="smooth_l1 at |r| == beta")
    assert_close(g, [1, -1, 1, 1], rtol=8 * np.finfo(dtype).eps, what="smooth_l1 grad at |r| == beta")


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_smooth_l1_beta0_is_mae(reduction, dtype):
    y, p = make_data("mae", {}, (37,), dtype, 9)
    p = p.copy()
    p[:5] = y[:5]  # r == 0: 0/0 must not appear
    v = fl.smooth_l1(y, p, beta=0.0, reduction=reduction)
    g = fl.smooth_l1.grad(y, p, beta=0.0, reduction=reduction)
    assert np.all(np.isfinite(g))
    np.testing.assert_array_equal(g, fl.mae.grad(y, p, reduction=reduction))
    assert_close(v, fl.mae(y, p, reduction=reduction), rtol=4 * np.finfo(dtype).eps, what="smooth_l1(beta=0)")
    assert np.all(g[:5] == 0)


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
def test_msle_domain_edges(dtype):
    y = np.array([0.0, 1.0, 0.0, 2.0, -2.0, 3.0, 0.5], dtype)
    p = np.array([-1.0, -1.0, -1.5, -3.0, 0.0, np.nextafter(np.asarray(-1.0, dtype), 0), 0.5], dtype)
    v = fl.msle(y, p, reduction="none")
    g = fl.msle.grad(y, p, reduction="none")
    assert v[0] == np.inf and v[1] == np.inf, v
    assert g[0] == -np.inf and g[1] == -np.inf, g
    assert np.all(np.isnan(v[2:5])) and np.all(np.isnan(g[2:5])), (v, g)
    assert np.isfinite(v[5]) and np.isfinite(g[5])
    assert v[6] == 0 and g[6] == 0
    check_call("msle", {}, y, p, reduction="none")
    assert fl.msle(y[:2], p[:2]) == np.inf
    assert np.isnan(fl.msle(y, p))


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
@pytest.mark.parametrize("full", [False, True])
def test_poisson_exp_overflow_is_inf(full, dtype):
    big = [710.0, 1000.0, 1e6, 1e300] if dtype == np.float64 else [89.0, 100.0, 1000.0, 1e30]
    p = np.array(big * 2, dtype)
    y = np.array([0, 0, 0, 0, 3, 7, 1.5, 2], dtype)
    v = fl.poisson_nll(y, p, full=full, reduction="none")
    g = fl.poisson_nll.grad(y, p, full=full, reduction="none")
    np.testing.assert_array_equal(v, np.full(8, np.inf))
    np.testing.assert_array_equal(g, np.full(8, np.inf))
    assert fl.poisson_nll(y, p, full=full) == np.inf
    # exp underflow: value -y p, gradient -y
    pn = -p
    check_call("poisson_nll", {"full": full}, y, pn, reduction="none")
    assert np.all(np.isfinite(fl.poisson_nll(y, pn, full=full, reduction="none")))


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
@pytest.mark.parametrize("full", [False, True])
def test_poisson_log_of_zero(full, dtype):
    """log_input=False, eps=0, y_pred == 0 < y_true: -y log(0) = +inf (Highway's
    Log(0) is about -105 unless the kernel guards it)."""
    y = np.array([1.0, 2.0, 5.0, 0.5, 3.0, 1.0, 2.0, 4.0, 9.0], dtype)
    p = np.zeros(9, dtype)
    v = fl.poisson_nll(y, p, log_input=False, eps=0.0, full=full, reduction="none")
    g = fl.poisson_nll.grad(y, p, log_input=False, eps=0.0, full=full, reduction="none")
    np.testing.assert_array_equal(v, np.full(9, np.inf))
    np.testing.assert_array_equal(g, np.full(9, -np.inf))
    assert fl.poisson_nll(y, p, log_input=False, eps=0.0, full=full, reduction="sum") == np.inf
    # with the default eps: -y log(1e-8), finite
    check_call("poisson_nll", {"log_input": False, "full": full}, y, p, reduction="none")
    # tiny positive predictions: large but finite
    pt = np.full(9, 1e-30 if dtype == np.float32 else 1e-300, dtype)
    check_call("poisson_nll", {"log_input": False, "eps": 0.0, "full": full}, y, pt, reduction="none")


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
def test_poisson_negative_rate_is_nan(dtype):
    """log_input=False with y_pred + eps < 0: log of a negative number is NaN."""
    y = np.array([1.0, 0.0, 2.0, 3.0, 1.0], dtype)
    p = np.array([-1.0, -2.0, -0.5, -1e-3, -7.0], dtype)
    v = fl.poisson_nll(y, p, log_input=False, reduction="none")
    assert np.all(np.isnan(v)), v
    assert np.isnan(fl.poisson_nll(y, p, log_input=False))
    # the gradient formula 1 - y/(p + eps) has no log: it stays finite
    check_call("poisson_nll", {"log_input": False}, y, p, reduction="none")


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
def test_poisson_full_term_only_above_one(dtype):
    y = np.array([0.0, 0.5, 1.0, 1.5, 2.0, 10.0, 100.0], dtype)
    p = np.full(7, 0.3, dtype)
    base = fl.poisson_nll(y, p, reduction="none")
    full = fl.poisson_nll(y, p, full=True, reduction="none")
    diff = full.astype(np.float64) - base.astype(np.float64)
    y64 = y.astype(np.float64)
    with np.errstate(all="ignore"):
        stirling = np.where(y64 > 1, y64 * np.log(y64) - y64 + 0.5 * np.log(2 * np.pi * y64), 0.0)
    assert np.all(diff[:3] == 0)
    assert_close(diff, stirling, rtol=rtol_for("poisson_nll", dtype), mag=np.abs(base) + 1, what="full term")
    # the full term does not depend on y_pred: same gradient
    np.testing.assert_array_equal(
        fl.poisson_nll.grad(y, p, full=True, reduction="none"), fl.poisson_nll.grad(y, p, reduction="none")
    )


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
def test_mape_zero_targets_use_eps(dtype):
    y = np.array([0.0, 0.0, 1e-20, -0.0, 2.0], dtype)
    p = np.array([1.0, -3.0, 1.0, 0.0, 1.0], dtype)
    eps = np.finfo(np.float64).eps
    v = fl.mape(y, p, reduction="none")
    assert_close(v, [1 / eps, 3 / eps, 1 / eps, 0.0, 0.5], rtol=rtol_for("mape", dtype), what="mape eps")
    g = fl.mape.grad(y, p, reduction="none")
    assert_close(g, [1 / eps, -1 / eps, 1 / eps, 0.0, -0.5], rtol=rtol_for("mape", dtype), what="mape grad eps")
    v = fl.mape(y, p, eps=0.25, reduction="none")
    assert_close(v, [4.0, 12.0, 4.0, 0.0, 0.5], rtol=rtol_for("mape", dtype), what="mape eps=0.25")


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
@pytest.mark.parametrize("q", [0.1, 0.5, 0.9])
def test_quantile_asymmetry(q, dtype):
    y = np.array([1.0, 1.0, 1.0], dtype)
    p = np.array([0.0, 2.0, 1.0], dtype)  # under-, over-prediction, exact
    v = fl.quantile(y, p, q=q, reduction="none")
    g = fl.quantile.grad(y, p, q=q, reduction="none")
    qq = float(np.asarray(q, dtype))
    assert_close(v, [qq, 1 - qq, 0.0], rtol=4 * np.finfo(dtype).eps, what="pinball")
    assert_close(g, [-qq, 1 - qq, 0.0], rtol=4 * np.finfo(dtype).eps, what="pinball grad")


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
def test_mae_sign_at_zero(dtype):
    y = np.array([1.0, 2.0, -3.0, 0.0, -0.0], dtype)
    p = np.array([1.0, 2.5, -4.0, -0.0, 0.0], dtype)
    np.testing.assert_array_equal(fl.mae.grad(y, p, reduction="none"), [0.0, 1.0, -1.0, 0.0, 0.0])
    np.testing.assert_array_equal(fl.mae(y, p, reduction="none"), [0.0, 0.5, 1.0, 0.0, 0.0])


INF_PAIRS = [(0.0, np.inf), (0.0, -np.inf), (np.inf, 0.0), (-np.inf, 0.0), (np.inf, np.inf), (1.0, 3.0), (2.0, -0.5)]


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
@pytest.mark.parametrize("config", CONFIGS, ids=CONFIG_IDS)
def test_infinite_inputs_as_numpy(config, dtype):
    """Infinite inputs give what the NumPy formula gives (inf, or NaN for inf - inf)."""
    name, opts = config
    y = np.array([a for a, _ in INF_PAIRS] * 3, dtype)
    p = np.array([b for _, b in INF_PAIRS] * 3, dtype)
    if name == "msle":
        keep = (y > -1) & (p > -1)
        y, p = y[keep], p[keep]
    check_call(name, opts, y, p, reduction="none")
