"""The classification losses as a family, against the NumPy float64
reference of fastloss.reference.classification: the package API, strided and
permuted layouts, out=, finite differences, identities between the losses,
option and input validation, every SIMD target and concurrent callers. The
binary losses' grid and edge cases are in test_binary.py, the row losses' (class
counts 1..32000, any class axis, 1-D rows, empty input, softmax and label edge
cases, KL and JSD) in test_rowwise.py; the data and the checker in
classification_checks.py.
"""

import concurrent.futures
import functools
import threading

import numpy as np
import pytest

import fastloss as fl
import fastloss.testing
from fastloss.reference import classification as ref
from checks import DTYPES, REDUCTIONS, assert_close
from classification_checks import (
    ALL_CONFIGS, ALL_IDS, BCE, CCE, CFOCAL, ENTRY, FOCAL, SCCE, SENTINEL, TARGETS, call, check, class_targets,
    config_id, dtype_id, expected, make_binary, make_data, make_rows, resolve, rows_shape,
)

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


@pytest.mark.parametrize("alias", ["bce", "cce", "sparse_cce"])
def test_aliases_compute_the_same(alias):
    name = ref.canonical(alias)
    opts = {"from_logits": True}
    y, p = make_data(name, opts, (4, 6), -1, np.float64, 5)
    for reduction in REDUCTIONS:
        v, g = check(alias, opts, y, p, reduction=reduction)
        np.testing.assert_array_equal(g, getattr(fl, name).grad(y, p, reduction=reduction, **opts))


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
        y = class_targets(rng, (N, C)).astype(dtype)
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
            call(name, entry, y, p.astype(np.complex64))  # integers: float64, as lists


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
