"""The classification losses over a class axis (the row-wise driver: categorical and
sparse cross-entropy, focal, hinge, nll, multi_margin, KL divergence,
Jensen-Shannon) against the NumPy float64 reference of
fastloss.reference.classification: the grid (class counts 1..32000, any class axis,
1-D rows, empty input), weights broadcast to the rows, out=y_pred, and the edge
cases of the spec (softmax of huge and masked logits, label dtypes and ranges,
ignored rows, KL and JSD at zero and infinite probabilities).
"""

import math

import numpy as np
import pytest

import fastloss as fl
import fastloss.testing
from fastloss.reference import classification as ref
from checks import DTYPES, REDUCTIONS, assert_close
from classification_checks import (
    ALL_CONFIGS, ALL_IDS, BCE, CCE, CFOCAL, CW, ENTRY, INT_DTYPES, ROW_CONFIGS, ROW_IDS, ROW_SHAPES, SCCE, SENTINEL,
    TARGETS, call, check, config_id, distributions, dtype_id, edge_cases_on_every_target, expected, make_data,
    make_rows, resolve, rows_shape, seeded_rng,
)


# --------------------------------------------------------------------------
# The grid
# --------------------------------------------------------------------------


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
        w = seeded_rng(i, R, 4).uniform(0.5, 2.0, R)
        check(name, o, y, p, reduction=reduction, weights=w, what="weighted")


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
    y = distributions(rng, (7, 5)).astype(dtype)
    p = distributions(rng, (7, 5)).astype(dtype)
    s = fl.kl_divergence(y, p, reduction="sum")
    m = fl.kl_divergence(y, p, reduction="mean")
    assert_close(m, np.float64(s) / 7, rtol=1e-5 if dtype == np.float32 else 1e-12, what="batchmean")


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
def test_jsd_identities(dtype):
    """beta = 0 is KL(P || Q) (kl_divergence); beta = 1 is KL(Q || P); the
    symmetric JSD is symmetric and 0 for P == Q."""
    rng = np.random.default_rng(59)
    P = distributions(rng, (6, 5)).astype(dtype)
    Q = distributions(rng, (6, 5)).astype(dtype)
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
# Every SIMD target
# --------------------------------------------------------------------------

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


# The softmax, ignored-row and KL edge cases above, on every target.
TARGET_EDGES = [
    ("huge_logits", lambda d: test_equal_huge_logits_give_log2(d)),
    ("masked", lambda d: test_masked_logits(d)),
    ("ignored_nan", lambda d: test_ignored_rows_with_nan_logits(d)),
    ("kl_zero", lambda d: test_kl_zero_targets(d)),
    ("kl_inf", lambda d: test_kl_infinities_and_negative_targets(d)),
]

test_edge_cases_on_target = edge_cases_on_every_target(TARGET_EDGES)
