"""Accuracy metrics of the registry (fastloss.Metric): binary_accuracy,
categorical_accuracy, sparse_categorical_accuracy.

The contract under test: called like a loss (reductions, weights, segments,
accumulators, Dask arrays), each gives the NumPy float64 reference's value
(``fastloss.reference.classification``: hits of 1.0 / 0.0, NaN where an input
is NaN) in y_pred's dtype, scikit-learn's ``accuracy_score`` /
``top_k_accuracy_score`` where ties do not matter; segments equal
per-segment calls bit for bit, accumulators over whole 1024-item batches the
one-shot call bit for bit; a metric has no gradient and does not combine;
bad input is a ValueError / TypeError naming the argument.
"""

import copy
import inspect
import pickle
import re
import threading
import warnings

import numpy as np
import pytest

import fastloss as fl
from fastloss import reference

skm = pytest.importorskip("sklearn.metrics")

METRIC_NAMES = ["binary_accuracy", "categorical_accuracy", "sparse_categorical_accuracy"]
DTYPES = [np.float32, np.float64]
REDUCTIONS = ["mean", "sum", "none"]
B = 1024  # the reduction block


def bits(a):
    a = np.asarray(a)
    return a.dtype.str, a.shape, a.tobytes()


def binary_data(n, rng, dtype, shape=None):
    y = rng.random(n)
    y = np.where(rng.random(n) < 0.5, np.round(y), y)  # 0/1 and fractional targets
    p = rng.random(n)
    if shape is not None:
        y, p = y.reshape(shape), p.reshape(shape)
    return y.astype(dtype), p.astype(dtype)


def dense_data(n, C, rng, dtype, ties=False):
    y = rng.random((n, C))
    y = np.where(rng.random((n, 1)) < 0.5, np.eye(C)[rng.integers(0, C, n)], y)  # one-hot rows
    p = rng.normal(size=(n, C))
    if ties:
        p = np.round(p)
        y = np.round(y * 2)  # ties in y_true too: the first argmax is the target
    return y.astype(dtype), p.astype(dtype)


def label_data(n, C, rng, dtype, ties=False):
    t = rng.integers(0, C, n)
    p = rng.normal(size=(n, C))
    if ties:
        p = np.round(p)
    return t, p.astype(dtype)


def data(name, n, rng, dtype, C=5, ties=False):
    if name == "binary_accuracy":
        return binary_data(n, rng, dtype)
    if name == "categorical_accuracy":
        return dense_data(n, C, rng, dtype, ties)
    return label_data(n, C, rng, dtype, ties)


def check(name, y, p, reduction, weights=None, **opts):
    """fl.NAME against the float64 reference, in y_pred's dtype."""
    dtype = np.asarray(p).dtype
    got = getattr(fl, name)(y, p, reduction=reduction, weights=weights, **opts)
    exp, grad = reference.value_and_grad(name, y, p, weights=weights, reduction=reduction,
                                         **opts)
    assert not np.any(grad)
    got = np.asarray(got)
    assert got.dtype == dtype, (got.dtype, dtype)
    what = f"{name} {reduction} {opts} weighted={weights is not None}"
    if reduction == "none":
        # w * hit: exact in the dtype
        np.testing.assert_array_equal(got, np.asarray(exp).astype(dtype), err_msg=what)
    else:
        # a ratio of exact sums, rounded once (float32: at most 1 ulp from the
        # float64 quotient rounded to float32)
        rtol = 1.2e-7 if dtype == np.float32 else 4e-16 if weights is None else 1e-13
        assert got.shape == ()
        np.testing.assert_allclose(got, exp, rtol=rtol, atol=0, err_msg=what)
    return got


# ---------------------------------------------------------------------------
# Registry: metric rows, options, signature, docs, pickling


def test_registry_rows():
    for name in METRIC_NAMES:
        m = getattr(fl, name)
        assert fl.METRICS[name] is m
        assert name not in fl.LOSSES
        assert isinstance(m, fl.Metric) and isinstance(m, fl.Loss)
        assert m.is_metric
        assert not fl.mse.is_metric and not isinstance(fl.mse, fl.Metric)
        assert name in fl.__all__
        assert name in reference.METRICS
    assert issubclass(fl.Metric, fl.Loss)


def test_options_and_signature():
    assert fl.binary_accuracy.options == {"threshold": 0.5, "from_logits": False}
    assert fl.categorical_accuracy.options == {"top_k": 1, "axis": -1}
    assert fl.sparse_categorical_accuracy.options == {"top_k": 1, "ignore_index": None,
                                                      "axis": -1}
    sig = inspect.signature(fl.binary_accuracy)
    params = sig.parameters
    assert list(params)[:2] == ["y_true", "y_pred"]
    assert params["reduction"].default == "mean"
    assert params["weights"].default is None
    assert params["threshold"].default == 0.5
    assert params["from_logits"].default is False
    for key in ("offsets", "segment_ids", "num_segments"):
        assert params[key].default is None
    sig.bind(np.zeros(3), np.zeros(3), reduction="sum", threshold=0.2)
    sig = inspect.signature(fl.sparse_categorical_accuracy)
    assert sig.parameters["top_k"].default == 1
    assert sig.parameters["ignore_index"].default is None
    assert sig.parameters["axis"].default == -1


@pytest.mark.parametrize("name", METRIC_NAMES)
def test_docstring_and_pickling(name):
    m = getattr(fl, name)
    doc = m.__doc__
    assert doc and "y_true" in doc and ("threshold" in doc or "top_k" in doc)
    # no gradient call form (the text may say that grad raises)
    assert not re.search(r"\.(grad|value_and_grad)\(", doc), doc
    assert f"{name}(y_true, y_pred" in doc  # the value call form
    assert pickle.loads(pickle.dumps(m)) is m
    assert copy.copy(m) is m and copy.deepcopy(m) is m
    assert name in repr(m)
    assert not re.search(r"\.(grad|value_and_grad)\(", type(m).__doc__ or "")


@pytest.mark.parametrize("name", METRIC_NAMES)
def test_no_gradient(name):
    rng = np.random.default_rng(0)
    y, p = data(name, 10, rng, np.float64)
    m = getattr(fl, name)
    with pytest.raises(TypeError, match="gradient"):
        m.grad(y, p)
    with pytest.raises(TypeError, match="gradient"):
        m.value_and_grad(y, p)
    with pytest.raises(TypeError, match="gradient"):
        m.value_and_grad(y, p, reduction="sum")


@pytest.mark.parametrize("make", [
    lambda: 0.5 * fl.mse + fl.binary_accuracy,
    lambda: fl.binary_accuracy + fl.mse,
    lambda: fl.mse + fl.binary_accuracy,
    lambda: fl.categorical_cross_entropy + 0.1 * fl.categorical_accuracy,
    lambda: 2.0 * fl.sparse_categorical_accuracy + fl.sparse_categorical_cross_entropy,
], ids=["scaled_loss_plus_metric", "metric_plus_loss", "loss_plus_metric", "rows",
        "scaled_metric"])
def test_metrics_do_not_combine(make):
    with pytest.raises(TypeError, match="metric"):
        make()


# ---------------------------------------------------------------------------
# binary_accuracy against the reference and scikit-learn


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_binary_accuracy_matches_reference(reduction, dtype):
    rng = np.random.default_rng(1)
    for n in (1, 7, 1000, 5000):
        y, p = binary_data(n, rng, dtype)
        w = rng.uniform(0.1, 2.0, n).astype(dtype)
        logits = ((p - 0.5) * 8).astype(dtype)
        for weights in (None, w):
            for opts in ({}, {"threshold": 0.3}, {"threshold": 0.0}, {"threshold": 1.0}):
                check("binary_accuracy", y, p, reduction, weights, **opts)
            for thr in (0.5, 0.2, 0.0, 1.0):
                check("binary_accuracy", y, logits, reduction, weights, threshold=thr,
                      from_logits=True)
    # 2-D, non-contiguous views and broadcast weights
    y, p = binary_data(3000, rng, dtype, shape=(60, 50))
    check("binary_accuracy", y[::2, ::3], p[1::2, ::-3], reduction)
    check("binary_accuracy", y.T, p.T, reduction)
    check("binary_accuracy", y, p, reduction, weights=rng.random((60, 1)).astype(dtype))
    check("binary_accuracy", np.asfortranarray(y), p, reduction)


@pytest.mark.parametrize("seed", range(4))
def test_binary_accuracy_against_sklearn(seed):
    rng = np.random.default_rng(10 + seed)
    n = int(rng.integers(1, 3000))
    dtype = DTYPES[seed % 2]
    y, p = binary_data(n, rng, dtype)
    thr = [0.5, 0.35, 0.8, 0.5][seed]
    truth = y >= 0.5
    pred = p.astype(np.float64) > thr
    w = rng.uniform(0.0, 3.0, n)
    got = fl.binary_accuracy(y, p, threshold=thr)
    np.testing.assert_allclose(got, skm.accuracy_score(truth, pred), rtol=1e-15 if dtype ==
                               np.float64 else 1.2e-7)
    got = fl.binary_accuracy(y, p, threshold=thr, weights=w.astype(dtype))
    np.testing.assert_allclose(got, skm.accuracy_score(truth, pred,
                                                       sample_weight=w.astype(dtype)),
                               rtol=1e-13 if dtype == np.float64 else 1.2e-7)
    got = fl.binary_accuracy(y, p, threshold=thr, reduction="sum")
    assert got == skm.accuracy_score(truth, pred, normalize=False)


@pytest.mark.parametrize("from_logits", [False, True])
@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.9, 1e-3])
def test_binary_accuracy_threshold_is_compared_exactly(threshold, from_logits):
    """A float32 score x is positive iff float64(x) > t (t = threshold, or
    log(threshold) - log1p(-threshold) with logits)."""
    t = float(np.log(threshold) - np.log1p(-threshold)) if from_logits else threshold
    near = [np.float32(t)]
    for _ in range(3):
        near.append(np.nextafter(near[-1], np.float32(np.inf)))
        near.insert(0, np.nextafter(near[0], np.float32(-np.inf)))
    for dtype in DTYPES:
        x = np.array(near, dtype=dtype)
        if dtype == np.float64:
            x = np.concatenate([x, [t, np.nextafter(t, np.inf), np.nextafter(t, -np.inf)]])
        y = np.ones(x.shape, dtype)
        got = fl.binary_accuracy(y, x, reduction="none", threshold=threshold,
                                 from_logits=from_logits)
        np.testing.assert_array_equal(got, (x.astype(np.float64) > t).astype(dtype))
        check("binary_accuracy", y, x, "none", threshold=threshold, from_logits=from_logits)
        check("binary_accuracy", 1 - y, x, "sum", threshold=threshold, from_logits=from_logits)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_binary_accuracy_soft_targets(dtype):
    """A target counts as the class it is nearer to, 0.5 as positive."""
    half_below = np.nextafter(dtype(0.5), dtype(0))
    y = np.array([0.5, half_below, 0.0, 1.0, 0.75, 0.25], dtype)
    p = np.array([0.9, 0.9, 0.9, 0.9, 0.1, 0.1], dtype)
    np.testing.assert_array_equal(fl.binary_accuracy(y, p, reduction="none"),
                                  np.array([1, 0, 0, 1, 0, 1], dtype))
    check("binary_accuracy", y, p, "mean")


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_binary_accuracy_nan_and_inf(dtype):
    y = np.array([0.0, 1.0, np.nan, 1.0, 0.0, 1.0], dtype)
    p = np.array([0.1, np.nan, 0.7, np.inf, -np.inf, 0.9], dtype)
    got = fl.binary_accuracy(y, p, reduction="none")
    np.testing.assert_array_equal(got, np.array([1, np.nan, np.nan, 1, 1, 1], dtype))
    for r in REDUCTIONS:
        check("binary_accuracy", y, p, r)
        check("binary_accuracy", y, p, r, weights=np.arange(1.0, 7.0).astype(dtype))
    assert np.isnan(fl.binary_accuracy(y, p))
    assert np.isnan(fl.binary_accuracy(y, p, reduction="sum"))
    assert fl.binary_accuracy(y[[0, 3, 4, 5]], p[[0, 3, 4, 5]]) == 1.0
    assert fl.binary_accuracy(y[[0, 3, 4, 5]], p[[0, 3, 4, 5]], from_logits=True) == 0.75


# ---------------------------------------------------------------------------
# Row metrics: categorical_accuracy, sparse_categorical_accuracy


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("name", ["categorical_accuracy", "sparse_categorical_accuracy"])
def test_row_metrics_match_reference(name, reduction, dtype):
    rng = np.random.default_rng(2)
    for n, C in ((1, 1), (9, 2), (700, 5), (3000, 13)):
        for ties in (False, True):
            y, p = data(name, n, rng, dtype, C=C, ties=ties)
            w = rng.uniform(0.1, 2.0, n).astype(dtype)
            for weights in (None, w):
                for k in sorted({1, 2, 3, C, C + 1}):
                    check(name, y, p, reduction, weights, top_k=k)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("name", ["categorical_accuracy", "sparse_categorical_accuracy"])
def test_row_metrics_layouts(name, dtype):
    """The class axis anywhere, strided and transposed views: the value of
    the class-last contiguous call."""
    rng = np.random.default_rng(3)
    n, C = 1500, 6
    y, p = data(name, 2 * n, rng, dtype, C=C)
    w = rng.random(2 * n).astype(dtype)
    for reduction in REDUCTIONS:
        for k in (1, 2):
            ys, ps, ws = y[::2], p[::2], w[::2]
            base = check(name, ys, ps, reduction, ws, top_k=k)
            check(name, ys, ps[:, ::-1][:, ::-1], reduction, ws, top_k=k)
            # classes along axis 0
            yt = ys.T if name == "categorical_accuracy" else ys
            got = check(name, yt, ps.T, reduction, ws, top_k=k, axis=0)
            assert bits(got) == bits(base)
            got = check(name, yt, np.ascontiguousarray(ps.T), reduction, ws, top_k=k, axis=-2)
            assert bits(got) == bits(base)
    # 3-D: (B, C, T) with axis=1; labels (B, T)
    Bn, T = 8, 33
    if name == "sparse_categorical_accuracy":
        yy = rng.integers(0, C, (Bn, T))
    else:
        yy = np.moveaxis(np.eye(C)[rng.integers(0, C, (Bn, T))], -1, 1).astype(dtype)
    pp = rng.normal(size=(Bn, C, T)).astype(dtype)
    for reduction in REDUCTIONS:
        got = check(name, yy, pp, reduction, rng.random((Bn, T)).astype(dtype), top_k=2, axis=1)
        if reduction == "none":
            assert got.shape == (Bn, T)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_sparse_ignore_index_and_label_dtypes(dtype):
    rng = np.random.default_rng(4)
    n, C = 2000, 7
    t, p = label_data(n, C, rng, dtype)
    t[rng.random(n) < 0.3] = -100
    p[t == -100, 2] = np.nan  # an ignored row's scores do not matter
    w = rng.uniform(0.5, 1.5, n).astype(dtype)
    for reduction in REDUCTIONS:
        for weights in (None, w):
            for k in (1, 3):
                got = check("sparse_categorical_accuracy", t, p, reduction, weights, top_k=k,
                            ignore_index=-100)
                if reduction == "none":
                    assert np.all(got[t == -100] == 0)
    # the mean leaves ignored rows out of its denominator
    keep = t != -100
    got = fl.sparse_categorical_accuracy(t, p, ignore_index=-100)
    np.testing.assert_allclose(got, fl.sparse_categorical_accuracy(t[keep], p[keep]),
                               rtol=1.2e-7 if dtype == np.float32 else 4e-16)
    # an ignore_index inside [0, C)
    check("sparse_categorical_accuracy", t[keep], p[keep], "mean", ignore_index=3)
    # every row ignored: mean NaN, sum 0
    assert np.isnan(fl.sparse_categorical_accuracy(np.full(4, -100), p[:4], ignore_index=-100))
    assert fl.sparse_categorical_accuracy(np.full(4, -100), p[:4], ignore_index=-100,
                                          reduction="sum") == 0
    # label dtypes
    tk = t[keep]
    expected = fl.sparse_categorical_accuracy(tk, p[keep], reduction="sum")
    for ldt in (np.int32, np.int16, np.uint8, np.uint16, np.int8):
        assert bits(fl.sparse_categorical_accuracy(tk.astype(ldt), p[keep],
                                                   reduction="sum")) == bits(expected)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_row_metrics_nan(dtype):
    rng = np.random.default_rng(5)
    n, C = 50, 4
    y, p = dense_data(n, C, rng, dtype)
    t = np.argmax(y, axis=1)
    p[3, 2] = np.nan
    y[7, 0] = np.nan
    for r in REDUCTIONS:
        check("categorical_accuracy", y, p, r)
        check("sparse_categorical_accuracy", t, p, r)
    got = fl.categorical_accuracy(y, p, reduction="none")
    assert np.isnan(got[3]) and np.isnan(got[7]) and np.sum(np.isnan(got)) == 2
    got = fl.sparse_categorical_accuracy(t, p, reduction="none", top_k=C)
    assert np.isnan(got[3]) and np.sum(np.isnan(got)) == 1
    assert np.isnan(fl.categorical_accuracy(y, p))


@pytest.mark.parametrize("name", METRIC_NAMES)
def test_empty_input(name):
    for dtype in DTYPES:
        y, p = data(name, 0, np.random.default_rng(0), dtype, C=3)
        v = getattr(fl, name)(y, p)
        assert np.isnan(v) and np.asarray(v).dtype == dtype
        v = getattr(fl, name)(y, p, reduction="sum")
        assert v == 0 and np.asarray(v).dtype == dtype
        v = getattr(fl, name)(y, p, reduction="none")
        assert v.shape == (0,) and v.dtype == dtype
        for r in REDUCTIONS:
            check(name, y, p, r)


def test_ties_follow_the_documented_rank():
    """rank = #{c: x_c > x_t} + #{c < t: x_c == x_t}: among equal scores the
    lower class ranks first; y_true's first argmax is the target."""
    p = np.array([[1.0, 1.0, 1.0, 0.0]] * 4)
    t = np.array([0, 1, 2, 3])
    np.testing.assert_array_equal(fl.sparse_categorical_accuracy(t, p, reduction="none"),
                                  [1, 0, 0, 0])
    np.testing.assert_array_equal(
        fl.sparse_categorical_accuracy(t, p, reduction="none", top_k=2), [1, 1, 0, 0])
    np.testing.assert_array_equal(
        fl.sparse_categorical_accuracy(t, p, reduction="none", top_k=3), [1, 1, 1, 0])
    y = np.array([[0.5, 0.5, 0.0, 0.0], [0.0, 0.5, 0.5, 0.0]])  # targets 0 and 1
    np.testing.assert_array_equal(
        fl.categorical_accuracy(y, p[:2], reduction="none"), [1, 0])
    np.testing.assert_array_equal(
        fl.categorical_accuracy(y, p[:2], reduction="none", top_k=2), [1, 1])


@pytest.mark.parametrize("seed", range(4))
def test_row_metrics_against_sklearn(seed):
    """accuracy_score of the argmax (ties are rare with continuous scores but
    follow the first-argmax rule: the same as NumPy's argmax) and
    top_k_accuracy_score (no ties)."""
    rng = np.random.default_rng(20 + seed)
    n, C = int(rng.integers(1, 2000)), int(rng.integers(3, 10))
    dtype = DTYPES[seed % 2]
    t, p = label_data(n, C, rng, dtype)
    w = rng.uniform(0.0, 2.0, n)
    rtol = 1.2e-7 if dtype == np.float32 else 1e-13
    onehot = np.eye(C, dtype=dtype)[t]
    pred = np.argmax(p, axis=1)
    for weights in (None, w):
        wd = None if weights is None else weights.astype(dtype)
        exp = skm.accuracy_score(t, pred, sample_weight=wd)
        np.testing.assert_allclose(fl.sparse_categorical_accuracy(t, p, weights=wd), exp,
                                   rtol=rtol)
        np.testing.assert_allclose(fl.categorical_accuracy(onehot, p, weights=wd), exp,
                                   rtol=rtol)
        for k in (1, 2, C - 1, C):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # k == C: "a perfect score"
                exp = skm.top_k_accuracy_score(t, p.astype(np.float64), k=k, labels=list(range(C)),
                                               sample_weight=wd)
            np.testing.assert_allclose(fl.sparse_categorical_accuracy(t, p, weights=wd, top_k=k),
                                       exp, rtol=rtol, err_msg=f"k={k}")
            np.testing.assert_allclose(fl.categorical_accuracy(onehot, p, weights=wd, top_k=k),
                                       exp, rtol=rtol, err_msg=f"k={k}")


# ---------------------------------------------------------------------------
# Segments


def offsets_of(rng, n, s):
    cuts = np.sort(rng.integers(0, n + 1, s - 1))
    if s > 3:
        cuts[1] = cuts[0]  # an empty segment
    return np.concatenate([[0], cuts, [n]]).astype(np.int64)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("name", METRIC_NAMES)
def test_segments_equal_per_segment_calls(name, dtype):
    rng = np.random.default_rng(6)
    n, S = 5000, 23
    y, p = data(name, n, rng, dtype, C=4)
    if name == "sparse_categorical_accuracy":
        y[rng.random(n) < 0.1] = -1
    opts = {"ignore_index": -1, "top_k": 2} if name == "sparse_categorical_accuracy" else {}
    if name == "binary_accuracy":
        opts = {"threshold": 0.3}
    w = rng.uniform(0.1, 2.0, n).astype(dtype)
    off = offsets_of(rng, n, S)
    ids = np.repeat(np.arange(S), np.diff(off))
    m = getattr(fl, name)
    for reduction in ("mean", "sum"):
        for weights in (None, w):
            v = m(y, p, reduction=reduction, weights=weights, offsets=off, **opts)
            assert v.shape == (S,) and v.dtype == dtype
            assert bits(v) == bits(m(y, p, reduction=reduction, weights=weights,
                                     segment_ids=ids, num_segments=S, **opts))
            for k in range(S):
                sl = slice(off[k], off[k + 1])
                wk = None if weights is None else weights[sl]
                e = m(y[sl], p[sl], reduction=reduction, weights=wk, **opts)
                assert bits(v[k]) == bits(e), (k, v[k], e)
                if off[k] == off[k + 1]:
                    assert np.isnan(v[k]) if reduction == "mean" else v[k] == 0
                elif not (name == "sparse_categorical_accuracy" and np.all(y[sl] == -1)):
                    ref, _ = reference.value_and_grad(name, y[sl], p[sl], weights=wk,
                                                      reduction=reduction, **opts)
                    # float32: weights summed in float lanes (up to 17 per
                    # lane) before float64, then the ratio rounded: 2 ulp.
                    np.testing.assert_allclose(v[k], ref, rtol=2.4e-7 if dtype == np.float32
                                               else 1e-13)


# ---------------------------------------------------------------------------
# Accumulators


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("name", METRIC_NAMES)
def test_accumulator_over_whole_blocks_equals_one_shot(name, dtype):
    rng = np.random.default_rng(7)
    n = 9 * B
    y, p = data(name, n, rng, dtype, C=5)
    if name == "sparse_categorical_accuracy":
        y[rng.random(n) < 0.1] = -100
    opts = {"ignore_index": -100, "top_k": 2} if name == "sparse_categorical_accuracy" else {}
    if name == "binary_accuracy":
        opts = {"threshold": 0.6}
    w = rng.uniform(0.1, 2.0, n).astype(dtype)
    m = getattr(fl, name)
    for reduction in ("mean", "sum"):
        for weights in (None, w):
            one_shot = m(y, p, reduction=reduction, weights=weights, **opts)
            for cuts in ([0, n], [0, B, 3 * B, 3 * B, 8 * B, n], list(range(0, n + 1, B))):
                acc = m.accumulator(reduction, **opts)
                for a, b in zip(cuts[:-1], cuts[1:]):
                    acc.update(y[a:b], p[a:b], weights=None if weights is None else weights[a:b])
                got = acc.result()
                assert bits(got) == bits(one_shot), (reduction, cuts, got, one_shot)
                assert type(got) is type(one_shot)
            # any other split: within rounding
            acc = m.accumulator(reduction, **opts)
            for a, b in zip([0, 77, 2000], [77, 2000, n]):
                acc.update(y[a:b], p[a:b], weights=None if weights is None else weights[a:b])
            np.testing.assert_allclose(acc.result(), one_shot,
                                       rtol=1.2e-7 if dtype == np.float32 else 1e-14)


def test_accumulator_merge_order_pickle_and_state():
    rng = np.random.default_rng(8)
    n = 8 * B
    t, p = label_data(n, 6, rng, np.float32)
    one_shot = fl.sparse_categorical_accuracy(t, p, top_k=3)
    parts = []
    for k in range(8):
        acc = fl.sparse_categorical_accuracy.accumulator(top_k=3)
        acc.update(t[k * B:(k + 1) * B], p[k * B:(k + 1) * B])
        parts.append(acc)
    for order in ([0, 1, 2, 3, 4, 5, 6, 7], [7, 6, 5, 4, 3, 2, 1, 0], [3, 0, 6, 1, 7, 2, 5, 4]):
        total = fl.sparse_categorical_accuracy.accumulator(top_k=3)
        total.merge([parts[i] for i in order])
        assert bits(total.result()) == bits(one_shot)
    tree = parts[0].copy().merge(parts[1]).merge(parts[2].copy().merge(parts[3:]))
    assert bits(tree.result()) == bits(one_shot)
    for twin in (pickle.loads(pickle.dumps(tree)), copy.deepcopy(tree)):
        assert bits(twin.result()) == bits(one_shot)
        assert twin.options == tree.options
    words = np.sum([a.state() for a in parts], axis=0)
    rebuilt = fl.sparse_categorical_accuracy.accumulator.from_state(words, top_k=3,
                                                                    dtype="float32")
    assert bits(rebuilt.result()) == bits(one_shot)
    assert tree.count == n
    # accumulators of other options do not merge
    with pytest.raises(ValueError):
        tree.merge(fl.sparse_categorical_accuracy.accumulator(top_k=2))
    with pytest.raises((ValueError, TypeError)):
        tree.merge(fl.binary_accuracy.accumulator())


def test_accumulator_segments():
    rng = np.random.default_rng(9)
    S, n = 5, 4 * B
    y, p = binary_data(n, rng, np.float64)
    off = offsets_of(rng, n, S)
    acc = fl.binary_accuracy.accumulator("mean", num_segments=S, threshold=0.4)
    acc.update(y, p, offsets=off)
    expected = fl.binary_accuracy(y, p, offsets=off, threshold=0.4)
    assert bits(acc.result()) == bits(expected)
    ids = np.repeat(np.arange(S), np.diff(off))
    acc2 = fl.binary_accuracy.accumulator("mean", num_segments=S, threshold=0.4)
    half = 2 * B
    acc2.update(y[:half], p[:half], segment_ids=ids[:half])
    acc2.update(y[half:], p[half:], segment_ids=ids[half:])
    np.testing.assert_allclose(acc2.result(), expected, rtol=1e-15)
    assert bits(pickle.loads(pickle.dumps(acc)).result()) == bits(expected)


def test_accumulator_threads():
    """Threads updating one accumulator with whole-block batches: the
    one-shot value bit for bit, whatever the interleaving."""
    rng = np.random.default_rng(10)
    n, T = 64 * B, 4
    y, p = dense_data(n, 8, rng, np.float32)
    w = rng.random(n).astype(np.float32)
    acc = fl.categorical_accuracy.accumulator("mean", top_k=2)
    errors = []

    def work(k):
        try:
            for j in range(k, 64, T):
                sl = slice(j * B, (j + 1) * B)
                acc.update(y[sl], p[sl], weights=w[sl])
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(T)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert acc.count == n
    assert bits(acc.result()) == bits(fl.categorical_accuracy(y, p, weights=w, top_k=2))


def test_accumulator_errors_add_nothing():
    rng = np.random.default_rng(11)
    t, p = label_data(100, 4, rng, np.float64)
    acc = fl.sparse_categorical_accuracy.accumulator()
    acc.update(t, p)
    words = acc.state()
    with pytest.raises(ValueError, match="label|y_true"):
        acc.update(np.array([0, 9]), np.zeros((2, 4)))
    with pytest.raises(TypeError):
        acc.update(t.astype(float), p)
    np.testing.assert_array_equal(acc.state(), words)
    with pytest.raises(TypeError, match="bogus"):
        fl.binary_accuracy.accumulator(bogus=1)
    with pytest.raises(ValueError, match="threshold"):
        fl.binary_accuracy.accumulator(threshold=2.0)
    with pytest.raises(ValueError, match="reduction"):
        fl.binary_accuracy.accumulator("none")
    with pytest.raises(TypeError, match="top_k"):
        fl.categorical_accuracy.accumulator(top_k=1.5)
    acc = fl.categorical_accuracy.accumulator(top_k=2)
    with pytest.raises(TypeError, match="gradient|grad|reduction|weights"):
        acc.update(np.eye(3), np.eye(3), reduction="sum")


def test_accumulator_checks_option_values_when_made():
    """As for the losses (fl.huber.accumulator(delta=-1) is a ValueError at
    once): a bad option value is an error when the accumulator is made."""
    with pytest.raises(ValueError, match="top_k"):
        fl.categorical_accuracy.accumulator(top_k=0)
    with pytest.raises(ValueError, match="top_k"):
        fl.sparse_categorical_accuracy.accumulator(top_k=-1)


# ---------------------------------------------------------------------------
# Dask arrays: lazy values, the NumPy call's bits (chunks of whole blocks)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_dask(dtype):
    da = pytest.importorskip("dask.array")
    dask = pytest.importorskip("dask")
    rng = np.random.default_rng(12)
    n = 16 * B
    y, p = binary_data(n, rng, dtype)
    w = rng.random(n).astype(dtype)
    Y, P, W = da.from_array(y, chunks=4 * B), da.from_array(p, chunks=2 * B), da.from_array(
        w, chunks=8 * B)
    t, logits = label_data(n, 5, rng, dtype)
    t[rng.random(n) < 0.1] = -100
    Tl, L = da.from_array(t, chunks=4 * B), da.from_array(logits, chunks=(2 * B, 2))
    onehot = np.eye(5, dtype=dtype)[np.maximum(t, 0)]
    O = da.from_array(onehot, chunks=(4 * B, 5))
    for reduction in ("mean", "sum"):
        for weights, wn in ((None, None), (W, w)):
            lazy = [
                fl.binary_accuracy(Y, P, reduction=reduction, weights=weights, threshold=0.3),
                fl.sparse_categorical_accuracy(Tl, L, reduction=reduction, weights=weights,
                                               ignore_index=-100, top_k=2),
                fl.categorical_accuracy(O, L, reduction=reduction, weights=weights),
            ]
            expected = [
                fl.binary_accuracy(y, p, reduction=reduction, weights=wn, threshold=0.3),
                fl.sparse_categorical_accuracy(t, logits, reduction=reduction, weights=wn,
                                               ignore_index=-100, top_k=2),
                fl.categorical_accuracy(onehot, logits, reduction=reduction, weights=wn),
            ]
            assert all(isinstance(v, da.Array) for v in lazy)
            for scheduler in ("sync", "threads"):
                got = dask.compute(*lazy, scheduler=scheduler)
                for g, e in zip(got, expected):
                    assert bits(g) == bits(e), (scheduler, reduction, g, e)
                    assert type(g) is type(e)
    v = fl.binary_accuracy(Y, P, reduction="none")
    np.testing.assert_array_equal(v.compute(scheduler="sync"),
                                  fl.binary_accuracy(y, p, reduction="none"))
    # no gradient of Dask arrays either
    with pytest.raises(TypeError, match="gradient"):
        fl.binary_accuracy.grad(Y, P)
    # value errors surface when the graph runs
    bad = da.from_array(np.where(np.arange(n) == 5000, 7, np.maximum(t, 0)), chunks=4 * B)
    with pytest.raises(ValueError, match="label|y_true"):
        fl.sparse_categorical_accuracy(bad, L).compute(scheduler="sync")


# ---------------------------------------------------------------------------
# Bad input

YB, PB = np.array([0.0, 1.0, 1.0]), np.array([0.2, 0.7, 0.4])
T3, P3 = np.array([0, 1, 2]), np.eye(3)

BAD = [
    ("y_true above 1", ValueError, "y_true", lambda: fl.binary_accuracy(np.array([0.0, 1.5, 1.0]),
                                                                        PB)),
    ("y_true negative", ValueError, "y_true",
     lambda: fl.binary_accuracy(np.array([0.0, -0.5, 1.0]), PB)),
    ("threshold 2", ValueError, "threshold", lambda: fl.binary_accuracy(YB, PB, threshold=2.0)),
    ("threshold negative", ValueError, "threshold",
     lambda: fl.binary_accuracy(YB, PB, threshold=-0.1)),
    ("threshold nan", ValueError, "threshold",
     lambda: fl.binary_accuracy(YB, PB, threshold=np.nan)),
    ("top_k 0", ValueError, "top_k", lambda: fl.categorical_accuracy(P3, P3, top_k=0)),
    ("top_k negative", ValueError, "top_k",
     lambda: fl.sparse_categorical_accuracy(T3, P3, top_k=-1)),
    ("top_k float", (TypeError, ValueError), "top_k",
     lambda: fl.sparse_categorical_accuracy(T3, P3, top_k=1.5)),
    ("unknown option", TypeError, "bogus", lambda: fl.binary_accuracy(YB, PB, bogus=1)),
    ("option of another metric", TypeError, "top_k",
     lambda: fl.binary_accuracy(YB, PB, top_k=2)),
    ("ignore_index on dense", TypeError, "ignore_index",
     lambda: fl.categorical_accuracy(P3, P3, ignore_index=-1)),
    ("shapes binary", ValueError, "y_true|y_pred",
     lambda: fl.binary_accuracy(np.zeros(4), np.zeros(5))),
    ("shapes dense", ValueError, "y_true|y_pred",
     lambda: fl.categorical_accuracy(np.eye(3), np.eye(4)[:3])),
    ("rows sparse", ValueError, "y_true", lambda: fl.sparse_categorical_accuracy(T3[:2], P3)),
    ("label high", ValueError, "label|y_true",
     lambda: fl.sparse_categorical_accuracy(np.array([0, 3, 1]), P3)),
    ("label negative", ValueError, "label|y_true",
     lambda: fl.sparse_categorical_accuracy(np.array([0, -1, 1]), P3)),
    ("float labels", TypeError, "y_true",
     lambda: fl.sparse_categorical_accuracy(T3.astype(float), P3)),
    ("complex scores", TypeError, "y_pred",
     lambda: fl.binary_accuracy(YB, np.array([0, 1, 1], np.complex64))),
    ("axis", ValueError, "axis", lambda: fl.categorical_accuracy(P3, P3, axis=2)),
    ("zero classes", ValueError, None, lambda: fl.sparse_categorical_accuracy(
        np.zeros(3, np.int64), np.zeros((3, 0)))),
    ("reduction", ValueError, "reduction", lambda: fl.binary_accuracy(YB, PB, reduction="max")),
    ("weights shape", ValueError, "weights",
     lambda: fl.binary_accuracy(YB, PB, weights=np.ones(4))),
    ("row weights shape", ValueError, "weights",
     lambda: fl.sparse_categorical_accuracy(T3, P3, weights=np.ones((3, 3)))),
    ("offsets", ValueError, "offsets",
     lambda: fl.binary_accuracy(YB, PB, offsets=np.array([0, 2, 1, 3]))),
    ("segment_ids without num_segments", TypeError, "num_segments",
     lambda: fl.binary_accuracy(YB, PB, segment_ids=np.zeros(3, int))),
    ("grad", TypeError, "gradient", lambda: fl.binary_accuracy.grad(YB, PB)),
    ("value_and_grad", TypeError, "gradient",
     lambda: fl.sparse_categorical_accuracy.value_and_grad(T3, P3)),
    ("combine", TypeError, "metric", lambda: 0.5 * fl.mse + fl.binary_accuracy),
]


@pytest.mark.parametrize("exc,match,call", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_input(exc, match, call):
    with pytest.raises(exc, match=match):
        call()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("C", [1, 15, 16, 17, 37, 130])
def test_long_rows_with_ties_and_nans_contiguous_and_strided(C, dtype):
    """Rows longer than the scans' 16-value blocks: ties (scores on a coarse
    grid), NaN at any position, contiguous and strided rows."""
    rng = np.random.default_rng(C)
    R = 64
    x = rng.integers(-3, 4, (R, C)).astype(dtype)
    x[5, rng.integers(0, C)] = np.nan
    x[9, C - 1] = np.nan
    labels = rng.integers(0, C, R)
    dense = rng.integers(0, 3, (R, C)).astype(dtype)
    for xs, ds in ((x, dense), (np.asfortranarray(x), np.asfortranarray(dense))):
        for k in sorted({1, 2, 5, C}):
            got = fl.sparse_categorical_accuracy(labels, xs, top_k=k, reduction="none")
            exp = reference.value_and_grad("sparse_categorical_accuracy", labels, xs, top_k=k,
                                           reduction="none")[0]
            np.testing.assert_array_equal(got, exp.astype(dtype))
            got = fl.categorical_accuracy(ds, xs, top_k=k, reduction="none")
            exp = reference.value_and_grad("categorical_accuracy", ds, xs, top_k=k,
                                           reduction="none")[0]
            np.testing.assert_array_equal(got, exp.astype(dtype))
    clean = np.nan_to_num(x, nan=0.0)
    counts = fl.confusion_counts(labels, clean, task="multiclass")
    np.testing.assert_array_equal(
        counts, reference.confusion.confusion_counts(labels, clean, task="multiclass"))
    with pytest.raises(ValueError, match=r"y_pred is NaN at item \(5,\)"):
        fl.confusion_counts(labels, x, task="multiclass")


# ---------------------------------------------------------------------------
# Token accuracy from the loss's own pass: hits= on the label-row losses


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("C", [3, 40, 40000])
def test_hits_from_the_sparse_ce_pass(C, dtype):
    rng = np.random.default_rng(C)
    R = 300 if C < 1000 else 6
    x = rng.integers(-2, 3, (R, C)).astype(dtype)  # ties
    labels = rng.integers(0, C, R)
    labels[::7] = -100
    x[3, C // 2] = np.nan
    opts = dict(from_logits=True, ignore_index=-100)
    hits = np.full(R, 7.0, dtype)
    v, g = fl.sparse_categorical_cross_entropy.value_and_grad(labels, x, hits=hits, **opts)
    v0, g0 = fl.sparse_categorical_cross_entropy.value_and_grad(labels, x, **opts)
    assert bits(v) == bits(v0)
    np.testing.assert_array_equal(g, g0)
    expect = fl.sparse_categorical_accuracy(labels, x, ignore_index=-100, reduction="none")
    np.testing.assert_array_equal(hits, expect)
    assert np.isnan(hits[3]) and hits[0] == 0  # row 0 is ignored
    # in place (out=y_pred): the hits are read before the gradient overwrites the row
    xi = x.copy()
    hits2 = np.zeros(R, dtype)
    fl.sparse_categorical_cross_entropy.grad(labels, xi, out=xi, hits=hits2, **opts)
    np.testing.assert_array_equal(hits2, expect)


def test_hits_layouts_and_other_label_losses():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(4, 5, 6)).astype(np.float32)  # (N, C, T) with axis=1
    labels = rng.integers(0, 5, (4, 6))
    buf = np.zeros((6, 4), np.float32).T  # strided hits
    fl.sparse_categorical_cross_entropy(labels, x, axis=1, from_logits=True, hits=buf)
    np.testing.assert_array_equal(
        buf, fl.sparse_categorical_accuracy(labels, x, axis=1, reduction="none"))
    logp = np.log(rng.dirichlet(np.ones(5), 50))
    t = rng.integers(0, 5, 50)
    h = np.empty(50)
    fl.nll(t, logp, hits=h)
    np.testing.assert_array_equal(h, (logp.argmax(1) == t).astype(float))


def test_hits_bad_arguments_name_hits():
    x = np.zeros((5, 3))
    t = np.zeros(5, np.int64)
    for bad, exc in [(np.zeros(4), ValueError), (np.zeros(5, np.float32), ValueError),
                     ([0.0] * 5, TypeError), (np.zeros((5, 1)), ValueError)]:
        with pytest.raises(exc, match="hits"):
            fl.sparse_categorical_cross_entropy(t, x, hits=bad)
    ro = np.zeros(5)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="hits"):
        fl.nll(t, x, hits=ro)
    with pytest.raises(ValueError, match="hits"):
        fl.nll(t, x, hits=x[:, 0])  # shares y_pred's memory
    hits = np.full(5, 7.0)
    with pytest.raises(ValueError, match="y_true"):
        fl.nll(np.array([0, 1, 2, 3, 0]), x, hits=hits)  # a label out of range: nothing written
    assert (hits == 7.0).all()
    with pytest.raises(TypeError, match="segments"):
        fl.nll(t, x, hits=hits, offsets=np.array([0, 5]))
    with pytest.raises(TypeError, match="hits"):
        fl.mse(x, x, hits=hits)
    with pytest.raises(TypeError, match="hits"):
        fl.sparse_categorical_accuracy(t, x, hits=hits)
    assert "hits" in inspect.signature(fl.sparse_categorical_cross_entropy).parameters
    assert "hits" not in inspect.signature(fl.sparse_categorical_accuracy).parameters
    assert "hits" in fl.sparse_categorical_cross_entropy.__doc__
