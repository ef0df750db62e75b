"""The Python call contract of the spec: accepted inputs (dtypes, strides,
buffer-protocol objects, lists), out=, weights and option validation, error
types and messages, and the package-level API."""

import array
import os
import subprocess
import sys

import numpy as np
import pytest

import fastloss as fl
import fastloss.testing
from checks import CONFIG_IDS, CONFIGS, DTYPES, LOSS_NAMES, REDUCTIONS, assert_close, check_call, make_data
from checks import expected, rtol_for

ALL_FNS = [getattr(fl, n) for n in LOSS_NAMES]


def dtype_id(dtype):
    return np.dtype(dtype).name


def entry_points(name):
    """The three entry points of a loss, each as f(y_true, y_pred, **kw)."""
    fn = getattr(fl, name)
    return [("value", fn), ("grad", fn.grad), ("value_and_grad", fn.value_and_grad)]


ENTRY = ["value", "grad", "value_and_grad"]


def call(name, entry, *args, **kw):
    fn = getattr(fl, name)
    if entry == "value":
        return fn(*args, **kw)
    return getattr(fn, entry)(*args, **kw)


# --------------------------------------------------------------------------
# Package API
# --------------------------------------------------------------------------


def test_aliases():
    assert fl.mean_squared_error is fl.mse
    assert fl.mean_absolute_error is fl.mae


def test_losses_registry():
    assert isinstance(fl.LOSSES, dict)
    assert set(LOSS_NAMES) <= set(fl.LOSSES)
    assert "mean_squared_error" not in fl.LOSSES and "mean_absolute_error" not in fl.LOSSES
    for name, obj in fl.LOSSES.items():
        assert getattr(fl, name) is obj, name
        assert callable(obj) and callable(obj.grad) and callable(obj.value_and_grad), name


# Formula fragments: a docstring "mentions its formula" when it contains one of
# these for its loss, and names every option.
FORMULA_TOKENS = {
    "mse": (["^2", "**2", "²", "square"], []),
    "mae": (["abs", "|"], []),
    "huber": (["delta", "δ"], ["delta"]),
    "smooth_l1": (["beta", "β"], ["beta"]),
    "log_cosh": (["cosh"], []),
    "msle": (["log1p", "log(1"], []),
    "mape": (["abs", "|"], ["eps"]),
    "poisson_nll": (["exp"], ["log_input", "full", "eps"]),
    "quantile": (["max", "pinball"], ["q"]),
}


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_docstrings(name):
    doc = fl.LOSSES[name].__doc__
    assert isinstance(doc, str) and len(doc.strip()) > 40, f"{name} has no real docstring: {doc!r}"
    tokens, options = FORMULA_TOKENS[name]
    assert any(t in doc for t in tokens), f"{name} docstring shows no formula: {doc!r}"
    for opt in options:
        assert opt in doc, f"{name} docstring does not mention option {opt!r}"
    assert "grad" in doc.lower(), f"{name} docstring says nothing about the gradient"


def test_every_registered_loss_documented():
    for name, obj in fl.LOSSES.items():
        assert isinstance(obj.__doc__, str) and obj.__doc__.strip(), name


def test_version():
    assert isinstance(fl.__version__, str) and fl.__version__.strip()
    assert fl.__version__[0].isdigit()


def test_simd_target():
    t = fl.simd_target()
    assert isinstance(t, str) and t
    names = fastloss.testing.simd_targets()
    assert isinstance(names, list) and names and all(isinstance(n, str) for n in names)
    assert t in names


def test_threads_api(restore_threads):
    assert fl.get_num_threads() == os.cpu_count()
    fl.set_num_threads(1)
    assert fl.get_num_threads() == 1
    fl.set_num_threads(3)
    assert fl.get_num_threads() == 3
    for bad in (0, -1):
        with pytest.raises(ValueError):
            fl.set_num_threads(bad)
    assert fl.get_num_threads() == 3


def test_cli_table(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "fastloss"], cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr
    for name in LOSS_NAMES:
        assert name in proc.stdout, f"{name} missing from `python -m fastloss` output"


# --------------------------------------------------------------------------
# Input types and conversions
# --------------------------------------------------------------------------


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_python_scalars_and_lists(reduction):
    v = fl.mse(1.0, 3.0, reduction=reduction)
    if reduction == "none":
        assert isinstance(v, np.ndarray) and v.shape == () and v.dtype == np.float64 and v == 4.0
    else:
        assert type(v) is np.float64 and v == 4.0
    check_call("huber", {}, [0.0, 1.0, 2.0], [0.5, -1.0, 2.0], reduction=reduction)
    check_call("mse", {}, [[0.0, 1.0], [2.0, 3.0]], [[0.5, -1.0], [2.0, 7.5]], reduction=reduction)
    check_call("mae", {}, [0, 1, 2], [0.5, -1.0, 2.0], reduction=reduction)  # int list y_true
    g = fl.mse.grad([1.0], [3.0], reduction=reduction)
    assert isinstance(g, np.ndarray) and g.dtype == np.float64


@pytest.mark.parametrize("ytype", [np.int8, np.int32, np.int64, np.uint8, np.uint64, np.bool_, np.float16, np.float32, np.float64])
@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
def test_y_true_dtypes(ytype, dtype):
    rng = np.random.default_rng(11)
    y = rng.integers(0, 5, 37).astype(ytype)
    p = rng.normal(1.0, 2.0, 37).astype(dtype)
    for reduction in REDUCTIONS:
        check_call("huber", {"delta": 1.5}, y, p, reduction=reduction)
        check_call("poisson_nll", {}, y, p, reduction=reduction)


def test_y_true_converted_to_y_pred_dtype():
    """y_true is rounded to float32 when y_pred is float32: 1 + 1e-10 becomes 1."""
    y = np.full(19, 1.0 + 1e-10)
    p = np.ones(19, np.float32)
    assert fl.mae(y, p) == 0
    np.testing.assert_array_equal(fl.mae.grad(y, p, reduction="none"), np.zeros(19, np.float32))
    assert fl.mae.grad(y, p).dtype == np.float32


BAD_PRED_DTYPES = [np.complex64, np.complex128, object]
if np.dtype(np.longdouble) != np.dtype(np.float64):
    BAD_PRED_DTYPES.append(np.longdouble)


@pytest.mark.parametrize("entry", ENTRY)
@pytest.mark.parametrize("bad", BAD_PRED_DTYPES, ids=lambda t: np.dtype(t).name)
def test_bad_y_pred_dtype(bad, entry):
    y = np.zeros(5)
    p = np.arange(5).astype(bad)
    with pytest.raises(TypeError, match="y_pred"):
        call("mse", entry, y, p)
    with pytest.raises(TypeError, match="y_pred"):
        call("huber", entry, y.astype(np.float32), p, reduction="none")


@pytest.mark.parametrize("entry", ENTRY)
@pytest.mark.parametrize("itype", [np.int8, np.int32, np.int64, np.uint8, np.uint64, np.bool_],
                         ids=lambda t: np.dtype(t).name)
def test_integer_y_pred_is_float64_as_lists_are(itype, entry):
    """Integer and bool y_pred arrays, buffers and lists alike: converted to
    float64 (as NumPy's mean does), the float64 call's numbers and dtype."""
    y = np.linspace(-1, 2, 5)
    p = np.arange(5).astype(itype)
    want = call("mse", entry, y, p.astype(np.float64))
    for given in (p, p.tolist()):
        got = call("mse", entry, y, given)
        for g, w in zip(got if isinstance(got, tuple) else (got,),
                        want if isinstance(want, tuple) else (want,)):
            assert np.asarray(g).dtype == np.float64
            np.testing.assert_array_equal(g, w)
    # out= of the float64 gradient; a float32 out= is refused as for float64 input
    out = np.full(5, np.nan)
    fl.mse.grad(y, p, out=out)
    np.testing.assert_array_equal(out, fl.mse.grad(y, p.astype(np.float64)))
    with pytest.raises(ValueError, match="out must have y_pred's dtype float64"):
        fl.mse.grad(y, p, out=np.zeros(5, np.float32))


@pytest.mark.parametrize("entry", ENTRY)
@pytest.mark.parametrize("bad", [np.complex64, np.complex128, object], ids=lambda t: np.dtype(t).name)
def test_bad_y_true_dtype(bad, entry):
    y = np.arange(5).astype(bad)
    for p in (np.zeros(5), np.zeros(5, np.float32)):
        with pytest.raises(TypeError, match="y_true"):
            call("mae", entry, y, p)


def test_bad_y_pred_buffers():
    y = np.zeros(4)
    with pytest.raises(TypeError, match="y_pred"):
        fl.mse(y, bytearray(4))
    with pytest.raises(TypeError, match="y_pred"):
        fl.mse(y, array.array("u", "abcd"))
    # integer buffers are integers: float64, as arrays and lists of them
    assert fl.mse(y, array.array("i", [1, 2, 3, 4])) == fl.mse(y, [1.0, 2.0, 3.0, 4.0])
    g = fl.mse.grad(y, array.array("q", [1, 2, 3, 4]))
    assert g.dtype == np.float64


def test_big_endian_inputs():
    rng = np.random.default_rng(12)
    y = rng.normal(size=23)
    p = rng.normal(size=23)
    # y_true of any real dtype is converted: a byte-swapped float64 is one.
    for reduction in REDUCTIONS:
        check_call("mse", {}, y.astype(">f8"), p, reduction=reduction)
        check_call("log_cosh", {}, y.astype(">f4"), p.astype(np.float32), reduction=reduction)
    # y_pred byte-swapped: converted to native order, same precision.
    for dt, native in ((">f8", np.float64), (">f4", np.float32)):
        v = fl.mse(y, p.astype(dt))
        g = fl.mse.grad(y, p.astype(dt))
        assert g.dtype == native and v.dtype == native
        assert np.asarray(v).tobytes() == np.asarray(fl.mse(y, p.astype(native))).tobytes()
        ev, eg, _, _ = expected("mse", {}, y, p.astype(native))
        assert_close(v, ev, rtol=rtol_for("mse", native), what=f"mse y_pred {dt}")
        assert_close(g, eg, rtol=rtol_for("mse", native), what=f"grad y_pred {dt}")


# --------------------------------------------------------------------------
# Shapes, options, reductions: errors
# --------------------------------------------------------------------------

MISMATCHED = [((5,), (5, 1)), ((5, 1), (5,)), ((5,), (6,)), ((2, 3), (3, 2)), ((), (1,)), ((4,), ())]


@pytest.mark.parametrize("entry", ENTRY)
@pytest.mark.parametrize("shapes", MISMATCHED, ids=str)
def test_shape_mismatch(shapes, entry):
    ys, ps = shapes
    for dtype in DTYPES:
        with pytest.raises(ValueError, match="y_true|shape"):
            call("mse", entry, np.zeros(ys), np.zeros(ps, dtype))
    with pytest.raises(ValueError, match="y_true|shape"):
        call("quantile", entry, np.zeros(ys), np.zeros(ps), q=0.3, reduction="none")


BAD_OPTIONS = [
    ("huber", "delta", 0.0),
    ("huber", "delta", -1.0),
    ("huber", "delta", -1e-300),
    ("smooth_l1", "beta", -0.1),
    ("smooth_l1", "beta", -1e-300),
    ("quantile", "q", 0.0),
    ("quantile", "q", 1.0),
    ("quantile", "q", -0.5),
    ("quantile", "q", 1.5),
    ("mape", "eps", 0.0),
    ("mape", "eps", -1e-3),
    ("poisson_nll", "eps", -1e-8),
    ("poisson_nll", "eps", -1.0),
    # NaN is not > 0 (nor >= 0, nor inside (0, 1))
    ("huber", "delta", float("nan")),
    ("smooth_l1", "beta", float("nan")),
    ("quantile", "q", float("nan")),
    ("mape", "eps", float("nan")),
    ("poisson_nll", "eps", float("nan")),
]


@pytest.mark.parametrize("entry", ENTRY)
@pytest.mark.parametrize("bad", BAD_OPTIONS, ids=lambda b: f"{b[0]}-{b[1]}={b[2]}")
def test_bad_option_values(bad, entry):
    name, opt, value = bad
    y, p = np.zeros(9), np.ones(9)
    with pytest.raises(ValueError, match=rf"\b{opt}\b"):
        call(name, entry, y, p, **{opt: value})
    with pytest.raises(ValueError, match=rf"\b{opt}\b"):
        call(name, entry, y.astype(np.float32), p.astype(np.float32), reduction="sum", **{opt: value})


def test_boundary_option_values_accepted():
    y, p = np.zeros(9), np.ones(9)
    fl.smooth_l1(y, p, beta=0.0)
    fl.poisson_nll(y, p, eps=0.0)
    fl.poisson_nll(y, p, log_input=False, eps=0.0)
    fl.quantile(y, p, q=1e-12)
    fl.quantile(y, p, q=1 - 1e-12)
    fl.huber(y, p, delta=1e-300)
    fl.mape(y, p, eps=1e-300)


UNKNOWN_OPTIONS = [
    ("mse", "delta"),
    ("mae", "beta"),
    ("huber", "beta"),
    ("smooth_l1", "delta"),
    ("log_cosh", "eps"),
    ("msle", "q"),
    ("mape", "delta"),
    ("poisson_nll", "log_inputs"),
    ("quantile", "alpha"),
]


@pytest.mark.parametrize("entry", ENTRY)
@pytest.mark.parametrize("bad", UNKNOWN_OPTIONS, ids=lambda b: f"{b[0]}-{b[1]}")
def test_unknown_option(bad, entry):
    name, opt = bad
    with pytest.raises(TypeError, match=opt):
        call(name, entry, np.zeros(3), np.ones(3), **{opt: 0.5})


@pytest.mark.parametrize("entry", ENTRY)
@pytest.mark.parametrize("reduction", ["avg", "Mean", "SUM", "", "none ", "elementwise"])
def test_bad_reduction(reduction, entry):
    for name in LOSS_NAMES:
        with pytest.raises(ValueError, match="reduction"):
            call(name, entry, np.zeros(3), np.ones(3), reduction=reduction)


@pytest.mark.parametrize("entry", ENTRY)
def test_keyword_only_arguments(entry):
    with pytest.raises(TypeError):
        call("mse", entry, np.zeros(3), np.ones(3), "sum")


# --------------------------------------------------------------------------
# Weights: errors
# --------------------------------------------------------------------------

BAD_WEIGHTS = [
    ((4, 6), (7,)),  # trailing axis mismatch
    ((4, 6), (4,)),  # per-sample weights must be (N, 1), not (N,)
    ((4, 6), (2, 6)),
    ((4, 6), (4, 6, 1)),  # more dims than y_pred
    ((4, 6), (1, 4, 6)),  # more dims than y_pred, even though NumPy could broadcast
    ((5,), (2,)),
    ((5,), (1, 5)),
    ((), (1,)),
    ((3,), (3, 1)),
]


@pytest.mark.parametrize("entry", ENTRY)
@pytest.mark.parametrize("shapes", BAD_WEIGHTS, ids=str)
def test_bad_weights_shape(shapes, entry):
    ps, ws = shapes
    for reduction in REDUCTIONS:
        with pytest.raises(ValueError, match="weights"):
            call("mse", entry, np.zeros(ps), np.ones(ps), weights=np.ones(ws), reduction=reduction)
    with pytest.raises(ValueError, match="weights"):
        call("huber", entry, np.zeros(ps, np.float32), np.ones(ps, np.float32), weights=np.ones(ws, np.float32))


# --------------------------------------------------------------------------
# Strides and layouts
# --------------------------------------------------------------------------


def unaligned(a):
    """A copy of ``a`` at an address that is not a multiple of its itemsize."""
    a = np.ascontiguousarray(a)
    buf = np.empty(a.nbytes + 1, np.uint8)
    b = np.frombuffer(buf.data, dtype=a.dtype, count=a.size, offset=1).reshape(a.shape)
    b[...] = a
    return b


def readonly(a):
    a = a.copy()
    a.setflags(write=False)
    return a


# (base shape, view) pairs: the view is what is passed.
LAYOUTS = {
    "step2": ((41,), lambda a: a[::2]),
    "reversed": ((33,), lambda a: a[::-1]),
    "reversed_step3": ((70,), lambda a: a[::-3]),
    "columns_step3": ((7, 30), lambda a: a[:, ::3]),
    "transposed": ((9, 13), lambda a: a.T),
    "fortran": ((9, 13), np.asfortranarray),
    "reversed_2d": ((10, 12), lambda a: a[::-1, ::-2]),
    "permuted_3d": ((3, 4, 5), lambda a: a.transpose(2, 0, 1)),
    "single_column": ((17, 4), lambda a: a[:, 2]),
    "zero_stride": ((1, 9), lambda a: np.broadcast_to(a, (6, 9))),
    "readonly": ((25,), readonly),
    "readonly_reversed": ((25,), lambda a: readonly(a)[::-1]),
    "unaligned": ((29,), unaligned),
    "large_strided": ((400_001,), lambda a: a[::-2]),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("config", CONFIGS, ids=CONFIG_IDS)
def test_layouts(config, layout, dtype):
    name, opts = config
    base, view = LAYOUTS[layout]
    y, p = make_data(name, opts, base, dtype, 21)
    yv, pv = view(y), view(p)
    for reduction in REDUCTIONS:
        check_call(name, opts, yv, pv, reduction=reduction)
        # only one of the two strided, the other contiguous
        check_call(name, opts, np.ascontiguousarray(yv), pv, reduction=reduction)
        check_call(name, opts, yv, np.ascontiguousarray(pv), reduction=reduction)


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
@pytest.mark.parametrize("layout", ["reversed_2d", "transposed", "zero_stride", "readonly_reversed", "unaligned"])
def test_strided_weights(layout, dtype):
    base, view = LAYOUTS[layout]
    y, p = make_data("huber", {}, base, dtype, 22)
    w = view(np.random.default_rng(22).uniform(0.5, 2.0, base).astype(dtype))
    for reduction in REDUCTIONS:
        check_call("huber", {}, view(y), view(p), weights=w, reduction=reduction)
        check_call("huber", {}, np.ascontiguousarray(view(y)), np.ascontiguousarray(view(p)), weights=w, reduction=reduction)


def test_grad_is_c_contiguous_for_strided_input():
    rng = np.random.default_rng(1)
    p = np.asfortranarray(np.abs(rng.normal(size=(6, 7))))
    y = np.zeros((6, 7))
    for fn in ALL_FNS:
        for pv, yv in ((p, y), (p[::-1, ::-2], y[::-1, ::-2]), (p.T, y.T)):
            g = fn.grad(yv, pv)
            assert g.flags.c_contiguous and g.shape == pv.shape, fn
            assert not np.shares_memory(g, pv)


def test_inputs_not_modified():
    y, p = make_data("huber", {}, (50,), np.float64, 3)
    w = np.random.default_rng(3).uniform(0.5, 2, 50)
    y0, p0, w0 = y.copy(), p.copy(), w.copy()
    for fn in ALL_FNS:
        for reduction in REDUCTIONS:
            fn.value_and_grad(y, np.abs(p), weights=w, reduction=reduction)
            fn.grad(y, np.abs(p), weights=w, reduction=reduction)
    np.testing.assert_array_equal(y, y0)
    np.testing.assert_array_equal(p, p0)
    np.testing.assert_array_equal(w, w0)


# --------------------------------------------------------------------------
# Buffer protocol objects
# --------------------------------------------------------------------------


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_buffer_protocol_objects(reduction):
    rng = np.random.default_rng(31)
    yl = rng.normal(size=21).tolist()
    pl = rng.normal(size=21).tolist()
    # array.array: 'd' is float64, 'f' float32
    v, g = check_call("huber", {}, array.array("d", yl), array.array("d", pl), reduction=reduction)
    assert g.dtype == np.float64
    v, g = check_call("huber", {}, array.array("f", yl), array.array("f", pl), reduction=reduction)
    assert g.dtype == np.float32
    if reduction != "none":
        assert type(v) is np.float32
    # y_true of an integer buffer
    check_call("mae", {}, array.array("i", range(21)), array.array("f", pl), reduction=reduction)
    # memoryviews: of an array.array, of a NumPy array, of a strided NumPy view
    check_call("log_cosh", {}, memoryview(array.array("d", yl)), memoryview(array.array("d", pl)), reduction=reduction)
    a = rng.normal(size=(6, 10))
    b = rng.normal(size=(6, 10)).astype(np.float32)
    check_call("mse", {}, memoryview(a), memoryview(b), reduction=reduction)
    check_call("mse", {}, memoryview(a[::-1, ::3]), memoryview(b[:, 1::2][:, :4][::-1]), reduction=reduction)
    check_call("msle", {}, memoryview(np.abs(a[:, ::2])), memoryview(np.abs(b[::-1, 1::2])), reduction=reduction)
    ro = memoryview(b.tobytes()).cast("f", b.shape)  # read-only buffer
    check_call("mse", {}, a, ro, reduction=reduction)


def test_ctypes_buffers():
    """ctypes arrays export explicit-byte-order formats ('<d', '<f', '<i')."""
    import ctypes

    vals = [0.5, -1.0, 2.0, 3.5, -7.25, 1.0, 0.0]
    yd = (ctypes.c_double * 7)(*[0.0] * 7)
    pd = (ctypes.c_double * 7)(*vals)
    pf = (ctypes.c_float * 7)(*vals)
    yi = (ctypes.c_int * 7)(*range(7))
    for reduction in REDUCTIONS:
        v, g = check_call("mse", {}, yd, pd, reduction=reduction)
        assert g.dtype == np.float64
        v, g = check_call("huber", {}, yi, pf, reduction=reduction)
        assert g.dtype == np.float32


@pytest.mark.parametrize("ndim", [5, 8, 16, 32])
def test_many_dimensions(ndim):
    rng = np.random.default_rng(ndim)
    sides = np.ones(ndim, int)
    sides[rng.permutation(ndim)[: min(ndim, 9)]] = 2  # at most 512 elements
    sides[0] = 3
    shape = tuple(int(s) for s in sides)
    y = rng.normal(size=shape)
    p = rng.normal(size=shape)
    rev = (slice(None, None, -1),) * ndim
    for reduction in REDUCTIONS:
        check_call("log_cosh", {}, y, p, reduction=reduction)
        check_call("log_cosh", {}, y[rev], p[rev], reduction=reduction, weights=rng.uniform(0.5, 2, shape[-1:]))


def test_too_many_dimensions_is_an_error_or_works():
    """NumPy allows 64 dimensions; fastloss may cap them, with a ValueError."""
    x = np.ones((1,) * 40 + (3,))
    try:
        v = fl.mse(np.zeros_like(x), x)
    except ValueError as e:
        assert "dim" in str(e)
    else:
        assert v == 1.0


# --------------------------------------------------------------------------
# out=
# --------------------------------------------------------------------------

SENTINEL = 12345.5


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("config", CONFIGS, ids=CONFIG_IDS)
def test_out_strided_column(config, reduction, dtype):
    """out= a strided view into a bigger array: the gradient lands in the view,
    nothing else in the bigger array changes, and the returned array is out."""
    name, opts = config
    fn = getattr(fl, name)
    n = 37
    y, p = make_data(name, opts, (n,), dtype, 41)
    _, eg, _, gm = expected(name, opts, y, p, reduction=reduction)
    for col, step in ((2, 1), (0, -1), (4, 2)):
        big = np.full((n * abs(step), 5), SENTINEL, dtype)
        out = big[::step, col][:n]
        keep = big.copy()
        g = fn.grad(y, p, reduction=reduction, out=out, **opts)
        assert g is out
        v, g2 = fn.value_and_grad(y, p, reduction=reduction, out=out, **opts)
        assert g2 is out
        assert_close(out, eg, rtol=rtol_for(name, dtype), mag=gm, atol=1e-36, what=f"out col {col} step {step}")
        mask = np.ones(big.shape, bool)
        mask[::step, col][:n] = False
        np.testing.assert_array_equal(big[mask], keep[mask], err_msg="written outside out")


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
def test_out_2d_views(dtype):
    rng = np.random.default_rng(42)
    y = rng.normal(size=(4, 6)).astype(dtype)
    p = rng.normal(size=(4, 6)).astype(dtype)
    w = rng.uniform(0.5, 2, (4, 1))
    _, eg, _, _ = expected("huber", {}, y, p, weights=w)
    big = np.full((4, 12, 3), SENTINEL, dtype)
    views = [
        lambda b: b[:, ::2, 1],
        lambda b: b[::-1, 1::2, 2],
        lambda b: np.asfortranarray(b[:, :6, 0]),
    ]
    for make in views:
        big[...] = SENTINEL
        out = make(big)
        g = fl.huber.grad(y, p, weights=w, out=out)
        assert g is out
        assert_close(out, eg, rtol=rtol_for("huber", dtype), what="2d out")
    big[...] = SENTINEL
    out = big[:, ::2, 1]
    fl.huber.value_and_grad(y, p, out=out)
    assert np.all(big[:, 1::2, :] == SENTINEL) and np.all(big[:, ::2, 0] == SENTINEL)
    assert np.all(big[:, ::2, 2] == SENTINEL)


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
def test_out_large_strided_threads(dtype):
    """A multi-threaded call writes only inside its strided out."""
    n = 1_000_003
    rng = np.random.default_rng(43)
    y = rng.normal(size=n).astype(dtype)
    p = rng.normal(size=n).astype(dtype)
    big = np.full((n, 3), SENTINEL, dtype)
    out = big[::-1, 1]
    g = fl.log_cosh.grad(y, p, reduction="sum", out=out)
    assert g is out
    assert np.all(big[:, 0] == SENTINEL) and np.all(big[:, 2] == SENTINEL)
    assert_close(out, np.tanh(p.astype(np.float64) - y.astype(np.float64)), rtol=rtol_for("log_cosh", dtype), atol=1e-30, what="large out")


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("config", CONFIGS, ids=CONFIG_IDS)
def test_out_is_y_pred(config, reduction, dtype):
    """In place: out=y_pred overwrites y_pred with the gradient; value_and_grad's
    value is that of the original y_pred."""
    name, opts = config
    fn = getattr(fl, name)
    y, p = make_data(name, opts, (3, 11), dtype, 44)
    w = np.random.default_rng(44).uniform(0.5, 2, (3, 1))
    ev, eg, vm, gm = expected(name, opts, y, p, weights=w, reduction=reduction)
    rtol = rtol_for(name, dtype)
    buf = p.copy()
    g = fn.grad(y, buf, weights=w, reduction=reduction, out=buf, **opts)
    assert g is buf
    assert_close(buf, eg, rtol=rtol, mag=gm, atol=1e-36, what="grad out=y_pred")
    buf = p.copy()
    v, g = fn.value_and_grad(y, buf, weights=w, reduction=reduction, out=buf, **opts)
    assert g is buf
    assert_close(v, ev, rtol=rtol, mag=vm, atol=1e-36, what="value with out=y_pred")
    assert_close(buf, eg, rtol=rtol, mag=gm, atol=1e-36, what="value_and_grad out=y_pred")
    # in place on a strided view of a bigger array
    big = np.full((3, 22), SENTINEL, dtype)
    view = big[:, ::2]
    view[...] = p
    v, g = fn.value_and_grad(y, view, weights=w, reduction=reduction, out=view, **opts)
    assert g is view
    assert_close(v, ev, rtol=rtol, mag=vm, atol=1e-36, what="value with out=strided y_pred")
    assert_close(view, eg, rtol=rtol, mag=gm, atol=1e-36, what="grad out=strided y_pred")
    assert np.all(big[:, 1::2] == SENTINEL)


def test_out_empty_and_0d():
    out = np.empty(())
    g = fl.mse.grad(np.array(1.0), np.array(3.0), out=out)
    assert g is out and out == 4.0
    out = np.empty((0, 3), np.float32)
    v, g = fl.mae.value_and_grad(np.zeros((0, 3)), np.zeros((0, 3), np.float32), out=out)
    assert g is out and np.isnan(v)


def bad_outs(shape, dtype):
    other = np.float32 if np.dtype(dtype) == np.float64 else np.float64
    ro = np.zeros(shape, dtype)
    ro.setflags(write=False)
    n = int(np.prod(shape))
    return {
        "longer": (ValueError, np.zeros((n + 1,), dtype)),
        "extra_dim": (ValueError, np.zeros(shape + (1,), dtype)),
        "flat": (ValueError, np.zeros((n,), dtype)),
        "other_dtype": (ValueError, np.zeros(shape, other)),
        "int": (ValueError, np.zeros(shape, np.int64)),
        "readonly": (ValueError, ro),
        "broadcast": (ValueError, np.broadcast_to(np.zeros(shape[-1:], dtype), shape)),
        "list": ((ValueError, TypeError), np.zeros(shape, dtype).tolist()),
        "memoryview": ((ValueError, TypeError), memoryview(np.zeros(shape, dtype))),
    }


@pytest.mark.parametrize("entry", ["grad", "value_and_grad"])
@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
@pytest.mark.parametrize("kind", list(bad_outs((2, 3), np.float64)))
def test_bad_out(kind, dtype, entry):
    shape = (2, 3)
    exc, out = bad_outs(shape, dtype)[kind]
    y = np.zeros(shape)
    p = np.ones(shape, dtype)
    snapshot = np.array(out, copy=True) if not isinstance(out, list) else None
    with pytest.raises(exc, match="out"):
        call("mse", entry, y, p, out=out)
    with pytest.raises(exc, match="out"):
        call("quantile", entry, y, p, out=out, q=0.2, reduction="sum")
    if snapshot is not None and isinstance(out, np.ndarray):
        np.testing.assert_array_equal(out, snapshot)


@pytest.mark.parametrize("entry", ENTRY)
def test_masked_arrays_are_refused_naming_the_argument(entry):
    """A masked array's mask would be ignored (a silent wrong number): refused,
    naming the argument, with the way to give the mask as weights; the same
    numbers through that way."""
    y = np.linspace(0, 1, 6)
    p = np.linspace(1, 0, 6)
    mask = np.array([0, 0, 1, 0, 1, 0], bool)
    for args, name in (((y, np.ma.array(p, mask=mask)), "y_pred"),
                       ((np.ma.array(y, mask=mask), p), "y_true"),
                       ((y, np.ma.array(p.astype(np.float16), mask=mask)), "y_pred")):
        with pytest.raises(TypeError, match=rf"mse: {name} is a masked array.*weights=~{name}.mask"):
            call("mse", entry, *args)
    with pytest.raises(TypeError, match="weights is a masked array"):
        call("mse", entry, y, p, weights=np.ma.array(np.ones(6), mask=mask))
    got = call("mse", entry, y, p, weights=(~mask).astype(float))
    want = call("mse", entry, y[~mask], p[~mask])
    if entry != "grad":
        v = got[0] if isinstance(got, tuple) else got
        w = want[0] if isinstance(want, tuple) else want
        assert v == pytest.approx(w, rel=1e-15)
