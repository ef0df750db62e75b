"""The binary classification losses (binary_cross_entropy, binary_focal, hinge,
squared_hinge, soft_margin: the elementwise driver) against the NumPy float64
reference of fastloss.reference.classification: the grid of every option x
reduction x dtype x shape, pos_weight, out=y_pred, and the edge cases of the spec
(saturated and infinite logits, clipped probabilities, NaN labels, hinge label
conversion).
"""

import math

import numpy as np
import pytest

import fastloss as fl
from checks import DTYPES, REDUCTIONS, assert_close
from classification_checks import (
    BCE, BIN_CONFIGS, BIN_IDS, BIN_SHAPES, ENTRY, FOCAL, SENTINEL, call, check, dtype_id, edge_cases_on_every_target,
    expected, make_binary, seeded_rng,
)

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
        w = seeded_rng(i, shape, 3).uniform(0.5, 2.0, shape)
        check(name, opts, y, p, reduction=reduction, weights=w, what="weighted")


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
# Every SIMD target
# --------------------------------------------------------------------------

# The binary edge cases above, on every target.
TARGET_EDGES = [
    ("bce_extremes", lambda d: [test_bce_logits_extremes(d, pw) for pw in (None, 2.0)]),
    ("bce_soft_inf", lambda d: test_bce_logits_soft_labels_at_infinity(d)),
    ("bce_f32_saturated", lambda d: test_bce_float32_saturated_logits() if d == np.float32 else None),
    ("bfocal_extremes", lambda d: test_binary_focal_logits_extremes(d)),
    ("bce_clipped", lambda d: test_bce_probabilities_clipped(d)),
    ("soft_margin", lambda d: test_soft_margin_values(d)),
]

test_edge_cases_on_target = edge_cases_on_every_target(TARGET_EDGES)
