"""Checks every driver shares (cpp/src/drivers/checks.h): outputs that
overlap an input or themselves, y_true validated before anything is written,
float32 sums that overflow in float lanes, Huber's linear branch for a large
delta, and the mean over a zero total weight."""

import numpy as np
import pytest

import fastloss as fl

DTYPES = [np.float32, np.float64]
SENTINEL = 7.25


def call(name, entry, *args, **kw):
    fn = getattr(fl, name)
    if entry == "value":
        return fn(*args, **kw)
    return getattr(fn, entry)(*args, **kw)


def softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def row_cases(dtype, rows=4, classes=5, seed=3):
    """(name, options, y_true, y_pred) for every row-wise loss."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 2.0, (rows, classes)).astype(dtype)
    prob = softmax(rng.normal(0.0, 1.0, (rows, classes))).astype(dtype)
    target = softmax(rng.normal(0.0, 1.0, (rows, classes))).astype(dtype)
    labels = rng.integers(0, classes, rows).astype(np.int64)
    onehot = np.eye(classes, dtype=dtype)[labels]
    logp = np.log(prob).astype(dtype)
    return [
        ("categorical_cross_entropy", {"from_logits": True}, target, x),
        ("categorical_cross_entropy", {}, target, prob),
        ("sparse_categorical_cross_entropy", {"from_logits": True}, labels, x),
        ("sparse_categorical_cross_entropy", {}, labels, prob),
        ("categorical_focal", {"from_logits": True}, target, x),
        ("categorical_focal", {}, target, prob),
        ("categorical_hinge", {}, onehot, x),
        ("kl_divergence", {}, target, prob),
        ("jensen_shannon", {}, target, prob),
        ("nll", {}, labels, logp),
        ("multi_margin", {}, labels, x),
    ]


def row_id(case):
    name, opts = case[0], case[1]
    return name + ("-logits" if opts.get("from_logits") else "")


ROW_CASES = row_cases(np.float64)
ROW_IDS = [row_id(c) for c in ROW_CASES]


def shifted(x, by=1):
    """(base, xin, out): xin holds x in base[:-by]; out is base[by:], the same
    memory shifted by `by` elements."""
    base = np.zeros(x.size + by, x.dtype)
    xin = base[:-by].reshape(x.shape)
    xin[...] = x
    return base, xin, base[by:].reshape(x.shape)


# --- 1. Partial overlap of out with an input ---------------------------------


def test_sparse_cce_partial_overlap_repro():
    """The issue's repro: 3.98 instead of 4.89 before; now a ValueError."""
    rng = np.random.default_rng(0)
    x = rng.normal(0.0, 3.0, (6, 7)).astype(np.float32)
    lab = rng.integers(0, 7, 6)
    expected = fl.sparse_cce(lab, x, from_logits=True)
    base, xin, out = shifted(x)
    before = base.copy()
    with pytest.raises(ValueError, match="out"):
        fl.sparse_cce.value_and_grad(lab, xin, from_logits=True, out=out)
    np.testing.assert_array_equal(base, before)
    assert np.isfinite(expected)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("entry", ["grad", "value_and_grad"])
@pytest.mark.parametrize("case", ROW_CASES, ids=ROW_IDS)
def test_rows_out_partially_overlapping_y_pred(case, entry, dtype):
    name, opts, y, p = case
    y = y if y.dtype == np.int64 else y.astype(dtype)
    p = p.astype(dtype)
    for by in (1, p.shape[-1], p.size - 1):
        base, xin, out = shifted(p, by)
        before = base.copy()
        with pytest.raises(ValueError, match="out"):
            call(name, entry, y, xin, out=out, **opts)
        np.testing.assert_array_equal(base, before)


@pytest.mark.parametrize("entry", ["grad", "value_and_grad"])
@pytest.mark.parametrize("case", [c for c in ROW_CASES if c[2].dtype != np.int64],
                         ids=[row_id(c) for c in ROW_CASES if c[2].dtype != np.int64])
def test_rows_out_overlapping_y_true(case, entry):
    """Dense targets: a gradient shifted over y_true is refused; y_true
    itself (an exact alias) stays allowed and gives the separate result."""
    name, opts, y, p = case
    base, yin, out = shifted(y)
    before = base.copy()
    with pytest.raises(ValueError, match="out"):
        call(name, entry, yin, p, out=out, **opts)
    np.testing.assert_array_equal(base, before)
    for C in (y.shape[-1], 100):
        yy = softmax(np.random.default_rng(C).normal(0.0, 1.0, (3, C)))
        if name == "categorical_hinge":
            yy = np.eye(C)[[0, 2, 1]]
        pp = softmax(np.random.default_rng(C + 1).normal(0.0, 1.0, (3, C)))
        ev, eg = getattr(fl, name).value_and_grad(yy, pp, **opts)
        buf = yy.copy()
        v, g = getattr(fl, name).value_and_grad(buf, pp, out=buf, **opts)
        assert g is buf
        np.testing.assert_allclose(v, ev, rtol=1e-12)
        np.testing.assert_allclose(buf, eg, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("entry", ["grad", "value_and_grad"])
@pytest.mark.parametrize("case", ROW_CASES, ids=ROW_IDS)
def test_rows_out_overlapping_weights(case, entry):
    name, opts, y, p = case
    buf = np.full(p.size + 2, 0.5)
    w = buf[:p.shape[0]]  # per-row weights inside out's memory
    out = buf[2:].reshape(p.shape)
    before = buf.copy()
    with pytest.raises(ValueError, match="out"):
        call(name, entry, y, p, weights=w, out=out, **opts)
    np.testing.assert_array_equal(buf, before)


@pytest.mark.parametrize("case", ROW_CASES, ids=ROW_IDS)
def test_rows_out_is_y_pred_still_allowed(case):
    name, opts, y, p = case
    ev, eg = getattr(fl, name).value_and_grad(y, p, **opts)
    buf = p.copy()
    v, g = getattr(fl, name).value_and_grad(y, buf, out=buf, **opts)
    assert g is buf
    np.testing.assert_allclose(v, ev, rtol=1e-12)
    np.testing.assert_allclose(buf, eg, rtol=1e-12, atol=1e-300)


def test_elementwise_partial_overlap_names_out():
    x = np.linspace(-1.0, 1.0, 12)
    base, xin, out = shifted(x)
    before = base.copy()
    with pytest.raises(ValueError, match="out"):
        fl.mse.value_and_grad(np.zeros(12), xin, out=out)
    np.testing.assert_array_equal(base, before)


def test_group_and_box_partial_overlap_names_out():
    rng = np.random.default_rng(5)
    p = rng.uniform(0.1, 0.9, (3, 8))
    y = (rng.random((3, 8)) < 0.5).astype(np.float64)
    base, pin, out = shifted(p)
    with pytest.raises(ValueError, match="out"):
        fl.dice.grad(y, pin, out=out)
    with pytest.raises(ValueError, match="out"):
        fl.cosine_similarity.grad(y, pin, out=out)
    # Weights inside out's memory (groups and boxes).
    buf = np.full(p.size + 1, 0.5)
    with pytest.raises(ValueError, match="out"):
        fl.dice.grad(y, p, axis=-1, weights=buf[:3], out=buf[1:].reshape(p.shape))
    boxes_t = np.array([[0, 0, 2, 2], [1, 1, 3, 4]], np.float64)
    boxes_p = np.array([[0, 1, 2, 3], [1, 0, 2, 4]], np.float64)
    buf = np.full(9, 0.5)
    before = buf.copy()
    with pytest.raises(ValueError, match="out"):
        fl.box_iou.grad(boxes_t, boxes_p, weights=buf[:2], out=buf[1:].reshape(2, 4))
    np.testing.assert_array_equal(buf, before)
    base, pin, out = shifted(boxes_p)
    with pytest.raises(ValueError, match="out"):
        fl.box_iou.grad(boxes_t, pin, out=out)


# --- 2. Outputs whose elements share memory ---------------------------------


def self_overlapping_outs(shape, dtype):
    """Writable views of `shape` whose elements share memory."""
    it = np.dtype(dtype).itemsize
    buf = np.full(64, SENTINEL, dtype)
    zero = np.lib.stride_tricks.as_strided(buf, shape=shape, strides=(it, 0))
    inter = np.lib.stride_tricks.as_strided(buf, shape=shape, strides=(it, 2 * it))
    rows0 = np.lib.stride_tricks.as_strided(buf, shape=shape, strides=(0, it))
    return buf, [zero, inter, rows0]


SELF_OVERLAP_CALLS = [
    ("mse", lambda p: (np.zeros_like(p), p), {}),
    ("huber", lambda p: (np.zeros_like(p), p), {"reduction": "sum"}),
    ("binary_cross_entropy", lambda p: (np.zeros_like(p), np.full_like(p, 0.5)), {}),
    ("categorical_cross_entropy", lambda p: (np.full_like(p, 0.25), p), {"from_logits": True}),
    ("sparse_categorical_cross_entropy", lambda p: (np.zeros(4, np.int64), p), {"from_logits": True}),
    ("kl_divergence", lambda p: (np.full_like(p, 0.25), np.full_like(p, 0.25)), {}),
    ("multi_margin", lambda p: (np.zeros(4, np.int64), p), {}),
    ("dice", lambda p: (np.zeros_like(p), np.full_like(p, 0.5)), {}),
    ("cosine_similarity", lambda p: (np.ones_like(p), p + 1.0), {}),
    ("box_iou", lambda p: (np.array([[0, 0, 2, 2]] * 4, p.dtype), np.array([[0, 1, 2, 3]] * 4, p.dtype)), {}),
    ("gan_generator", lambda p: (p,), {}),
    ("gradient_penalty", lambda p: (p + 1.0,), {}),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("entry", ["grad", "value_and_grad"])
@pytest.mark.parametrize("case", SELF_OVERLAP_CALLS, ids=[c[0] for c in SELF_OVERLAP_CALLS])
def test_out_with_shared_elements(case, entry, dtype):
    name, make, opts = case
    p = np.linspace(-1.0, 1.0, 16).reshape(4, 4).astype(dtype)
    args = make(p)
    buf, outs = self_overlapping_outs((4, 4), dtype)
    for out in outs:
        with pytest.raises(ValueError, match="out"):
            call(name, entry, *args, out=out, **opts)
    assert np.all(buf == SENTINEL)


def test_issue_repro_as_strided_out():
    buf = np.zeros(16, np.float32)
    out = np.lib.stride_tricks.as_strided(buf, shape=(4, 4), strides=(4, 0))
    with pytest.raises(ValueError, match="out.*share memory"):
        fl.mse.grad(np.zeros((4, 4), np.float32), np.ones((4, 4), np.float32), out=out)


# --- 3. y_true outside [0, 1] leaves out untouched --------------------------


CAT_CONFIGS = [
    ("categorical_cross_entropy", {}),
    ("categorical_cross_entropy", {"from_logits": True}),
    ("categorical_focal", {}),
    ("categorical_focal", {"from_logits": True}),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("entry", ["grad", "value_and_grad"])
@pytest.mark.parametrize("config", CAT_CONFIGS, ids=lambda c: c[0] + str(c[1]))
@pytest.mark.parametrize("shape", [(4, 5), (3, 1000), (32, 1024)])
def test_categorical_bad_y_true_writes_nothing(shape, config, entry, dtype):
    """Arrays of up to 32768 elements are checked before anything is
    written: a bad target in the last row leaves `out` as it was."""
    name, opts = config
    rng = np.random.default_rng(11)
    p = softmax(rng.normal(0.0, 1.0, shape)).astype(dtype)
    y = softmax(rng.normal(0.0, 1.0, shape)).astype(dtype)
    y[-1, -1] = 1.5
    out = np.full(shape, SENTINEL, dtype)
    with pytest.raises(ValueError, match="y_true"):
        call(name, entry, y, p, out=out, **opts)
    assert np.all(out == SENTINEL)
    # Strided targets and a middle class axis.
    yt = np.ascontiguousarray(y.T).T
    with pytest.raises(ValueError, match=r"y_true must be in \[0, 1\].*position"):
        call(name, entry, yt, p, out=out, **opts)
    assert np.all(out == SENTINEL)


@pytest.mark.parametrize("config", CAT_CONFIGS, ids=lambda c: c[0] + str(c[1]))
def test_categorical_bad_y_true_out_is_y_true(config):
    """out=y_true with a target outside [0, 1]: the check runs before the
    gradient is written over it, so y_true stays the caller's data."""
    name, opts = config
    y = np.full((4, 5), 0.2)
    y[2, 3] = -0.5
    p = np.full((4, 5), 0.2)
    keep = y.copy()
    with pytest.raises(ValueError, match=r"y_true must be in \[0, 1\].*position \(2, 3\)"):
        getattr(fl, name).grad(y, p, out=y, **opts)
    np.testing.assert_array_equal(y, keep)


@pytest.mark.parametrize("config", CAT_CONFIGS, ids=lambda c: c[0] + str(c[1]))
def test_categorical_bad_y_true_large_arrays_still_raise(config):
    """Above one task (32768 elements) the kernels check each row as they
    read it: the error still names the first bad position."""
    name, opts = config
    rng = np.random.default_rng(12)
    p = softmax(rng.normal(0.0, 1.0, (100, 1000)))
    y = softmax(rng.normal(0.0, 1.0, (100, 1000)))
    y[70, 3] = 2.0
    with pytest.raises(ValueError, match=r"position \(70, 3\)"):
        getattr(fl, name).grad(y, p, **opts)


# --- 4. float32 sums that overflow in float lanes ----------------------------


def test_mse_float32_block_sum_overflow_repro():
    v = fl.mse(np.zeros(8, np.float32), np.full(8, 1e19, np.float32))
    assert np.isfinite(v)
    np.testing.assert_allclose(float(v), float(np.float32(1e19)) ** 2, rtol=1e-6)


@pytest.mark.parametrize("n", [8, 1000, 5000, 70_000])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_float32_overflowing_runs_summed_in_float64(n, reduction):
    rng = np.random.default_rng(n)
    y = np.zeros(n, np.float32)
    p = rng.uniform(1e18, 1.8e19, n).astype(np.float32)
    p[::7] = rng.uniform(-1.0, 1.0, p[::7].size)  # small losses among them
    expected = ((p.astype(np.float64) ** 2).astype(np.float32).astype(np.float64)).sum()
    if reduction == "mean":
        expected /= n
    v, g = fl.mse.value_and_grad(y, p, reduction=reduction)
    if expected > np.finfo(np.float32).max:
        assert v == np.inf  # the float64 sum, rounded to the float32 result
        return
    np.testing.assert_allclose(float(v), expected, rtol=1e-5)
    # out= its own array, strided and weighted calls as well (in place,
    # out=y_pred, such a block stays inf: its input is overwritten).
    out = np.empty_like(p)
    v2, _ = fl.mse.value_and_grad(y, p, reduction=reduction, out=out)
    np.testing.assert_allclose(float(v2), expected, rtol=1e-5)
    np.testing.assert_array_equal(out, g)
    big = np.zeros(2 * n, np.float32)
    big[::2] = p
    np.testing.assert_allclose(float(fl.mse(y, big[::2], reduction=reduction)), expected, rtol=1e-5)
    w = np.ones(n, np.float32)
    np.testing.assert_allclose(float(fl.mse(y, p, weights=w, reduction=reduction)), expected, rtol=1e-5)


def test_float32_weight_total_overflow():
    """sum(w) of float32 weights near 1e38 is taken in float64 too."""
    w = np.full(8, 1e38, np.float32)
    v, g = fl.mse.value_and_grad(np.zeros(8, np.float32), np.ones(8, np.float32), weights=w)
    np.testing.assert_allclose(float(v), 1.0, rtol=1e-6)
    np.testing.assert_allclose(g, np.full(8, 0.25, np.float32), rtol=1e-4)  # a subnormal 1 / sum(w)


def test_float32_inf_and_nan_stay():
    p = np.full(8, 1e19, np.float32)
    p[3] = np.inf
    assert fl.mse(np.zeros(8, np.float32), p) == np.inf
    p[3] = np.nan
    assert np.isnan(fl.mse(np.zeros(8, np.float32), p))


def test_group_sums_overflowing_float_lanes():
    """The multi-sum driver's float32 block sums (|y|^2 of 1e18 entries)."""
    y = np.full((2, 4096), 1e18, np.float32)
    p = y.copy()
    p[:, ::2] *= 2
    p[1, 5] = -3e18
    expected = fl.cosine_similarity(y.astype(np.float64), p.astype(np.float64), reduction="none")
    v, g = fl.cosine_similarity.value_and_grad(y, p, reduction="none")
    np.testing.assert_allclose(v.astype(np.float64), expected, rtol=1e-4, atol=1e-6)
    assert np.all(np.isfinite(g))


# --- 5. Huber's linear branch for a large delta ------------------------------


def test_huber_large_delta_is_inf_not_nan():
    assert fl.huber(np.float32([0]), np.float32([1e38]), delta=1e30) == np.inf
    assert fl.huber(np.float64([0]), np.float64([1e300]), delta=1e200) == np.inf
    v, g = fl.huber.value_and_grad(np.float32([0, 0]), np.float32([-1e38, 1e38]), delta=1e30, reduction="none")
    assert np.all(v == np.inf)
    np.testing.assert_array_equal(g, np.float32([-1e30, 1e30]))


@pytest.mark.parametrize("dtype", DTYPES)
def test_huber_linear_branch_values(dtype):
    """The rewritten linear branch delta (|r| - delta/2) at large scales."""
    delta = 1e18 if dtype == np.float32 else 1e150
    r = (np.array([3.0, -5.0, 0.25]) * delta).astype(dtype)
    l = fl.huber(np.zeros(3, dtype), r, delta=delta, reduction="none")
    e = np.abs(r.astype(np.float64))
    expected = np.where(e > delta, delta * (e - delta / 2), 0.5 * e * e)
    np.testing.assert_allclose(l.astype(np.float64), expected, rtol=1e-6)
    assert np.all(np.isfinite(l))
    # smooth_l1 is the same functor: |r| - beta/2 in the linear branch.
    s = fl.smooth_l1(np.zeros(3, dtype), r, beta=delta, reduction="none")
    np.testing.assert_allclose(s.astype(np.float64), expected / delta, rtol=1e-6)


# --- 6. A mean over a zero total weight: NaN with a zero gradient ------------


def zero_weight_calls():
    rng = np.random.default_rng(9)
    p = rng.uniform(0.1, 0.9, (4, 6))
    y = (rng.random((4, 6)) < 0.5).astype(np.float64)
    w_rows = np.array([1.0, -1.0, 0.5, -0.5])
    w_elem = np.tile([1.0, -1.0], 12).reshape(4, 6)
    x = rng.normal(0.0, 1.0, (4, 6))
    t = softmax(rng.normal(0.0, 1.0, (4, 6)))
    lab = rng.integers(0, 6, 4)
    boxes_t = np.array([[0, 0, 2, 2], [1, 1, 3, 4], [0, 0, 1, 1], [2, 2, 5, 5]], np.float64)
    boxes_p = np.array([[0, 1, 2, 3], [1, 0, 2, 4], [0, 0, 2, 1], [2, 1, 4, 5]], np.float64)
    return [
        ("mse", (y, p), {"weights": w_elem}),
        ("huber", (y, p), {"weights": np.zeros(6)}),
        ("binary_cross_entropy", (y, p), {"weights": w_rows[:, None]}),
        ("categorical_cross_entropy", (t, x), {"from_logits": True, "weights": w_rows}),
        ("sparse_categorical_cross_entropy", (lab, x), {"from_logits": True, "weights": w_rows}),
        ("sparse_categorical_cross_entropy", (np.full(4, -100), x), {"from_logits": True, "ignore_index": -100}),
        ("kl_divergence", (t, softmax(x)), {"weights": w_rows}),
        ("multi_margin", (lab, x), {"weights": np.zeros(4)}),
        ("dice", (y, p), {"axis": -1, "weights": w_rows}),
        ("cosine_similarity", (y + 1.0, p), {"weights": w_rows}),
        ("box_iou", (boxes_t, boxes_p), {"weights": w_rows}),
        ("gan_generator", (x,), {"weights": w_elem}),
        ("gradient_penalty", (x,), {"weights": w_rows}),
    ]


ZERO_WEIGHT = zero_weight_calls()


@pytest.mark.parametrize("case", ZERO_WEIGHT, ids=[c[0] + str(i) for i, c in enumerate(ZERO_WEIGHT)])
def test_mean_over_zero_total_weight_is_nan_with_zero_gradient(case):
    name, args, opts = case
    v, g = getattr(fl, name).value_and_grad(*args, **opts)
    assert np.isnan(v), f"{name}: value {v}"
    np.testing.assert_array_equal(g, np.zeros_like(g))
    assert np.isnan(getattr(fl, name)(*args, **opts))
    g2 = getattr(fl, name).grad(*args, **opts)
    np.testing.assert_array_equal(g2, np.zeros_like(g2))
