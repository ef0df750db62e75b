"""Confusion metrics: fl.confusion_counts and the scores made from them
(fl.precision, fl.recall, fl.f1_score, fl.fbeta_score, fl.specificity).

The contract under test: the int64 counts ``[tp, fp, tn, fn]`` per class equal
the NumPy reference (``fastloss.reference.confusion``) and scikit-learn's
``multilabel_confusion_matrix`` exactly, for every task, dtype, layout
(strides, class axis) and option; the scores equal scikit-learn's
``precision_score`` / ``recall_score`` / ``f1_score`` / ``fbeta_score`` with
``labels=range(C)`` and ``zero_division``; segments equal per-segment calls
bit for bit; accumulators give the one-shot counts exactly for any batch
split, merge order and thread; bad input is a ValueError / TypeError naming
the argument, never a crash.
"""

import copy
import itertools
import pickle
import subprocess
import sys
import threading
import warnings

import numpy as np
import pytest

import fastloss as fl
from fastloss.reference import confusion as rc

skm = pytest.importorskip("sklearn.metrics")

TASKS = ["binary", "multiclass", "multilabel"]
SCORES = ["precision", "recall", "f1_score", "fbeta_score", "specificity"]
AVERAGES = ["macro", "micro", "weighted", "none"]
ZERO_DIVISION = [0.0, 1.0, np.nan]
DTYPES = [np.float32, np.float64]


def bits(a):
    a = np.asarray(a)
    return a.dtype.str, a.shape, a.tobytes()


def data(task, n, rng, dtype=np.float64, C=4, ties=False):
    """(y_true, y_pred) of n items of a task."""
    if task == "binary":
        y = rng.random(n)
        y = np.where(rng.random(n) < 0.5, np.round(y), y)  # 0/1 and fractional targets
        p = rng.random(n)
    elif task == "multiclass":
        y = rng.integers(0, C, n)
        p = rng.normal(size=(n, C))
        if ties:
            p = np.round(p)
    else:
        y = (rng.random((n, C)) < 0.35).astype(np.float64)
        p = rng.random((n, C))
        if ties:
            p = np.round(p * 4) / 4  # scores equal to the threshold
    if task != "multiclass":
        y = y.astype(dtype)
    return y, p.astype(dtype)


def score_kwargs(name, beta=1.0):
    return {"beta": beta} if name == "fbeta_score" else {}


# ---------------------------------------------------------------------------
# Registry, signature, docs, pickling


def test_registry_rows():
    names = {"confusion_counts", "precision", "recall", "f1_score", "fbeta_score",
             "specificity"}
    assert names <= set(fl.METRICS)
    from fastloss import reference

    assert reference.confusion is rc
    for name in names:
        m = getattr(fl, name)
        assert fl.METRICS[name] is m
        assert isinstance(m, fl.ConfusionMetric)
        assert name not in fl.LOSSES
        assert m.is_metric
        assert name in fl.__all__
        assert pickle.loads(pickle.dumps(m)) is m
        assert copy.deepcopy(m) is m
        assert m.__doc__ and "y_true" in m.__doc__
        assert ".grad(" not in m.__doc__


def test_options_and_signature():
    import inspect

    opts = fl.confusion_counts.options
    assert opts == {"task": "binary", "num_classes": None, "threshold": 0.5,
                    "from_logits": False, "ignore_index": None, "axis": -1}
    assert fl.precision.options == {**opts, "average": "macro", "zero_division": 0.0}
    assert fl.fbeta_score.options == {**opts, "average": "macro", "beta": 1.0,
                                      "zero_division": 0.0}
    for name in ("precision", "recall", "f1_score", "specificity"):
        assert "beta" not in getattr(fl, name).options
    sig = inspect.signature(fl.fbeta_score)
    assert list(sig.parameters)[:2] == ["y_true", "y_pred"]
    for key, default in fl.fbeta_score.options.items():
        assert sig.parameters[key].default == default
        assert sig.parameters[key].kind is inspect.Parameter.KEYWORD_ONLY
    for key in ("offsets", "segment_ids", "num_segments"):
        assert sig.parameters[key].default is None
    # the signature binds a real call
    sig.bind(np.zeros(3), np.zeros(3), task="binary", beta=2.0, offsets=None)


def test_result_types():
    rng = np.random.default_rng(0)
    y, p = data("multiclass", 50, rng)
    c = fl.confusion_counts(y, p, task="multiclass")
    assert c.dtype == np.int64 and c.shape == (4, 4)
    v = fl.precision(y, p, task="multiclass")
    assert type(v) is np.float64
    v = fl.precision(y, p, task="multiclass", average="none")
    assert v.dtype == np.float64 and v.shape == (4,)
    yb, pb = data("binary", 30, rng, np.float32)
    assert fl.confusion_counts(yb, pb).shape == (1, 4)
    assert type(fl.recall(yb, pb)) is np.float64
    assert fl.recall(yb, pb, average="none").shape == (1,)
    # every item is counted once per class
    assert np.all(c.sum(axis=1) == 50)


# ---------------------------------------------------------------------------
# Counts against the reference


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_counts_match_reference(task, dtype, seed):
    rng = np.random.default_rng(seed)
    C = int(rng.integers(1, 7)) if task != "binary" else 1
    n = int(rng.integers(1, 400))
    y, p = data(task, n, rng, dtype, C=C, ties=seed == 1)
    option_sets = [{}]
    if task != "multiclass":
        option_sets += [{"threshold": 0.25}, {"threshold": 0.0}, {"threshold": 1.0},
                        {"threshold": 0.7, "from_logits": True}]
        p_logit = (p - 0.5) * 6
    for opts in option_sets:
        pp = p_logit.astype(dtype) if opts.get("from_logits") else p
        got = fl.confusion_counts(y, pp, task=task, **opts)
        exp = rc.confusion_counts(y, pp, task=task, **opts)
        assert got.dtype == np.int64
        np.testing.assert_array_equal(got, exp, err_msg=str(opts))
        np.testing.assert_array_equal(got.sum(axis=1), n)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_counts_non_contiguous_and_class_axis(dtype):
    rng = np.random.default_rng(3)
    n, C = 301, 5
    y, p = data("multiclass", 2 * n, rng, dtype, C=C)
    # strided rows, strided classes, Fortran order
    ys, ps = y[::2], p[::2]
    exp = rc.confusion_counts(ys, ps, task="multiclass")
    np.testing.assert_array_equal(fl.confusion_counts(ys, ps, task="multiclass"), exp)
    np.testing.assert_array_equal(
        fl.confusion_counts(ys, np.asfortranarray(ps), task="multiclass"), exp)
    # classes along axis 0 (a transposed view and a C-contiguous copy)
    pt = ps.T
    for q in (pt, np.ascontiguousarray(pt)):
        np.testing.assert_array_equal(fl.confusion_counts(ys, q, task="multiclass", axis=0), exp)
        np.testing.assert_array_equal(fl.confusion_counts(ys, q, task="multiclass", axis=-2), exp)
    # 3-D: (B, C, T) with the class axis in the middle; labels (B, T)
    B, T = 6, 11
    lab = rng.integers(0, C, (B, T))
    sc = rng.normal(size=(B, C, T)).astype(dtype)
    got = fl.confusion_counts(lab, sc, task="multiclass", axis=1)
    np.testing.assert_array_equal(got, rc.confusion_counts(lab, sc, task="multiclass", axis=1))
    np.testing.assert_array_equal(
        got, fl.confusion_counts(lab.reshape(-1), np.moveaxis(sc, 1, -1).reshape(-1, C),
                                 task="multiclass"))
    # strided labels (int32, a non-unit stride)
    lab32 = rng.integers(0, C, 2 * n).astype(np.int32)[::2]
    np.testing.assert_array_equal(fl.confusion_counts(lab32, ps, task="multiclass"),
                                  rc.confusion_counts(lab32, ps, task="multiclass"))
    # multilabel, classes along axis 0, strided
    yl, pl = data("multilabel", 2 * n, rng, dtype, C=C)
    ylt, plt = yl[::2].T, pl[::2].T
    np.testing.assert_array_equal(
        fl.confusion_counts(ylt, plt, task="multilabel", axis=0),
        rc.confusion_counts(yl[::2], pl[::2], task="multilabel"))
    # binary: 2-D strided views (every element an item)
    yb, pb = data("binary", 4 * n, rng, dtype)
    yb, pb = yb.reshape(4, n)[:, ::3], pb.reshape(4, n)[::-1, ::3]
    np.testing.assert_array_equal(fl.confusion_counts(yb, pb), rc.confusion_counts(yb, pb))


@pytest.mark.parametrize("label_dtype", [np.int64, np.int32, np.int16, np.uint8])
def test_predicted_labels(label_dtype):
    rng = np.random.default_rng(4)
    n, C = 500, 6
    y = rng.integers(0, C, n).astype(label_dtype)
    pred = rng.integers(0, C, n).astype(label_dtype)
    got = fl.confusion_counts(y, pred, task="multiclass", num_classes=C)
    np.testing.assert_array_equal(got, rc.confusion_counts(y, pred, task="multiclass",
                                                           num_classes=C))
    # the same counts as the scores whose argmax the labels are
    scores = np.eye(C)[pred.astype(np.int64)] + 0.01 * rng.random((n, C))
    np.testing.assert_array_equal(got, fl.confusion_counts(y, scores, task="multiclass"))
    # a class no row has is all tn
    got = fl.confusion_counts(y, pred, task="multiclass", num_classes=C + 2)
    np.testing.assert_array_equal(got[C:], [[0, 0, n, 0]] * 2)


def test_ignore_index():
    rng = np.random.default_rng(5)
    n, C = 400, 5
    # multiclass: -100 rows drop out; their scores may be anything (NaN too)
    y, p = data("multiclass", n, rng, C=C)
    y[rng.random(n) < 0.2] = -100
    p[y == -100, 0] = np.nan
    got = fl.confusion_counts(y, p, task="multiclass", ignore_index=-100)
    keep = y != -100
    np.testing.assert_array_equal(got, rc.confusion_counts(y[keep], p[keep], task="multiclass"))
    np.testing.assert_array_equal(got, rc.confusion_counts(y, p, task="multiclass",
                                                           ignore_index=-100))
    assert np.all(got.sum(axis=1) == keep.sum())
    # an ignore_index inside [0, C) drops that class's rows
    got = fl.confusion_counts(y[keep], p[keep], task="multiclass", ignore_index=2)
    k2 = y[keep] != 2
    np.testing.assert_array_equal(got, rc.confusion_counts(y[keep][k2], p[keep][k2],
                                                           task="multiclass", num_classes=C))
    # predicted labels out of range are fine on ignored rows
    pred = rng.integers(0, C, n)
    pred[~keep] = 99
    np.testing.assert_array_equal(
        fl.confusion_counts(y, pred, task="multiclass", num_classes=C, ignore_index=-100),
        rc.confusion_counts(y[keep], pred[keep], task="multiclass", num_classes=C))
    for dtype in DTYPES:
        # binary: targets equal to ignore_index drop out (per element)
        yb, pb = data("binary", n, rng, dtype)
        yb[rng.random(n) < 0.25] = -1
        pb[yb == -1] = np.nan
        got = fl.confusion_counts(yb, pb, ignore_index=-1)
        np.testing.assert_array_equal(got, rc.confusion_counts(yb[yb != -1], pb[yb != -1]))
        np.testing.assert_array_equal(got, rc.confusion_counts(yb, pb, ignore_index=-1))
        # multilabel: per element
        yl, pl = data("multilabel", n, rng, dtype, C=C)
        yl[rng.random((n, C)) < 0.25] = -100
        got = fl.confusion_counts(yl, pl, task="multilabel", ignore_index=-100)
        exp = rc.confusion_counts(yl, pl, task="multilabel", ignore_index=-100)
        np.testing.assert_array_equal(got, exp)
        np.testing.assert_array_equal(got.sum(axis=1), (yl != -100).sum(axis=0))


@pytest.mark.parametrize("task", TASKS)
def test_empty_input(task):
    C = 3 if task != "binary" else 1
    y, p = data(task, 0, np.random.default_rng(0), C=3)
    counts = fl.confusion_counts(y, p, task=task)
    np.testing.assert_array_equal(counts, np.zeros((C, 4), np.int64))
    np.testing.assert_array_equal(counts, rc.confusion_counts(y, p, task=task))
    for zd in ZERO_DIVISION:
        for name in SCORES:
            for avg in AVERAGES:
                got = getattr(fl, name)(y, p, task=task, average=avg, zero_division=zd)
                exp = rc.score(counts, name, avg, zero_division=zd)
                np.testing.assert_array_equal(got, exp, err_msg=f"{name} {avg} {zd}")
    # every item ignored: the same
    if task == "multiclass":
        y, p = np.full(5, -100), np.zeros((5, C))
        np.testing.assert_array_equal(
            fl.confusion_counts(y, p, task=task, ignore_index=-100), np.zeros((C, 4)))


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_soft_targets(dtype):
    """A target counts as the class it is nearer to, 0.5 as positive."""
    half_below = np.nextafter(dtype(0.5), dtype(0))
    y = np.array([0.5, half_below, 0.0, 1.0, 0.75, 0.25], dtype)
    p = np.array([0.9, 0.9, 0.9, 0.9, 0.1, 0.1], dtype)
    # tp: 0.5, 1.0; fp: half_below, 0.0; tn: 0.25; fn: 0.75
    np.testing.assert_array_equal(fl.confusion_counts(y, p), [[2, 2, 1, 1]])
    np.testing.assert_array_equal(fl.confusion_counts(y, p), rc.confusion_counts(y, p))


def test_scalar_binary_item():
    np.testing.assert_array_equal(fl.confusion_counts(np.float64(1.0), np.float64(0.7)),
                                  [[1, 0, 0, 0]])
    np.testing.assert_array_equal(fl.confusion_counts(np.float32(0.2), np.float32(0.7)),
                                  [[0, 1, 0, 0]])


@pytest.mark.parametrize("from_logits", [False, True])
@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.9, 1e-3])
def test_threshold_is_compared_exactly(threshold, from_logits):
    """A float32 score is positive iff its float64 value is above the
    threshold (or above log(t) - log1p(-t) with logits)."""
    t = float(np.log(threshold) - np.log1p(-threshold)) if from_logits else threshold
    c = np.float32(t)
    near = [c]
    for _ in range(3):
        near.append(np.nextafter(near[-1], np.float32(np.inf)))
        near.insert(0, np.nextafter(near[0], np.float32(-np.inf)))
    for dtype in DTYPES:
        x = np.array(near, dtype=dtype)
        if dtype == np.float64:
            x = np.concatenate([x, [t, np.nextafter(t, np.inf), np.nextafter(t, -np.inf)]])
        y = np.ones(x.shape, dtype)
        got = fl.confusion_counts(y, x, threshold=threshold, from_logits=from_logits)
        positive = int(np.sum(x.astype(np.float64) > t))
        np.testing.assert_array_equal(got, [[positive, 0, 0, len(x) - positive]])
        np.testing.assert_array_equal(
            got, rc.confusion_counts(y, x, threshold=threshold, from_logits=from_logits))
        # the same per class for multilabel
        got = fl.confusion_counts(np.stack([y, 1 - y], 1), np.stack([x, x], 1),
                                  task="multilabel", threshold=threshold,
                                  from_logits=from_logits)
        np.testing.assert_array_equal(got, [[positive, 0, 0, len(x) - positive],
                                            [0, positive, len(x) - positive, 0]])


def test_infinite_scores():
    x = np.array([-np.inf, np.inf, 0.0, np.inf])
    y = np.array([0.0, 1.0, 1.0, 0.0])
    np.testing.assert_array_equal(fl.confusion_counts(y, x, from_logits=True), [[1, 1, 1, 1]])
    # multiclass: an infinite score wins, the first of equal ones
    p = np.array([[0.0, np.inf, np.inf], [-np.inf, -np.inf, -np.inf]])
    np.testing.assert_array_equal(fl.confusion_counts(np.array([1, 0]), p, task="multiclass"),
                                  [[1, 0, 1, 0], [1, 0, 1, 0], [0, 0, 2, 0]])


# ---------------------------------------------------------------------------
# Against scikit-learn


def mcm_counts(mcm):
    """sklearn's multilabel_confusion_matrix (C, 2, 2) as (C, 4) [tp, fp, tn, fn]."""
    return np.stack([mcm[:, 1, 1], mcm[:, 0, 1], mcm[:, 0, 0], mcm[:, 1, 0]], axis=1)


SK = {"precision": "precision_score", "recall": "recall_score", "f1_score": "f1_score",
      "fbeta_score": "fbeta_score"}


def sklearn_score(name, y, pred, C, average, zd, beta=1.0, per_class_support=None):
    """scikit-learn's score with labels=range(C) (fastloss follows it: a
    weighted mean whose supports are all 0 is the plain mean)."""
    fn = getattr(skm, SK[name])
    kw = {"beta": beta} if name == "fbeta_score" else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(y, pred, labels=list(range(C)), average=None if average == "none" else average,
                  zero_division=zd, **kw)


def specificity_of(mcm, average, zd):
    c = mcm_counts(mcm)
    tn, fp = c[:, 2].astype(float), c[:, 1].astype(float)
    with np.errstate(all="ignore"):
        per = np.where(tn + fp == 0, zd, tn / np.where(tn + fp == 0, 1, tn + fp))
    if average == "none":
        return per
    if average == "micro":
        d = tn.sum() + fp.sum()
        return zd if d == 0 else tn.sum() / d
    w = np.ones(len(per)) if average == "macro" else (c[:, 0] + c[:, 3]).astype(float)
    ok = ~np.isnan(per)
    if not ok.any():
        return np.nan
    if w[ok].sum() == 0:
        return per[ok].mean()
    return np.sum(w[ok] * per[ok]) / w[ok].sum()


def check_scores(y_fl, p_fl, task, y_sk, pred_sk, C, rtol=1e-13, **opts):
    mcm = skm.multilabel_confusion_matrix(y_sk, pred_sk, labels=list(range(C)))
    counts = fl.confusion_counts(y_fl, p_fl, task=task, **opts)
    np.testing.assert_array_equal(counts, mcm_counts(mcm))
    support = (counts[:, 0] + counts[:, 3]).astype(float)
    for zd, avg in itertools.product(ZERO_DIVISION, AVERAGES):
        for name, beta in [("precision", 1.0), ("recall", 1.0), ("f1_score", 1.0),
                           ("fbeta_score", 0.5), ("fbeta_score", 2.0), ("fbeta_score", 0.3),
                           ("specificity", 1.0)]:
            got = getattr(fl, name)(y_fl, p_fl, task=task, average=avg, zero_division=zd,
                                    **score_kwargs(name, beta), **opts)
            if name == "specificity":
                exp = specificity_of(mcm, avg, zd)
            else:
                exp = sklearn_score(name, y_sk, pred_sk, C, avg, zd, beta, support)
            what = f"{name} beta={beta} average={avg} zero_division={zd} counts={counts.tolist()}"
            np.testing.assert_allclose(got, exp, rtol=rtol, atol=0, err_msg=what)
            # and the reference, to rounding
            ref = rc.score(counts, name, avg, beta=beta, zero_division=zd)
            np.testing.assert_allclose(got, ref, rtol=1e-15, atol=0, err_msg=what)


@pytest.mark.parametrize("seed", range(8))
def test_multiclass_against_sklearn(seed):
    rng = np.random.default_rng(seed)
    C = int(rng.integers(2, 9))
    n = int(rng.integers(1, 120)) if seed % 2 else int(rng.integers(1, 12))  # small: empty classes
    dtype = DTYPES[seed % 2]
    y, p = data("multiclass", n, rng, dtype, C=C, ties=seed % 3 == 0)
    pred = np.argmax(p, axis=1)
    check_scores(y, p, "multiclass", y, pred, C)
    # predicted labels give the same
    check_scores(y, pred, "multiclass", y, pred, C, num_classes=C)


@pytest.mark.parametrize("seed", range(6))
def test_multilabel_against_sklearn(seed):
    rng = np.random.default_rng(100 + seed)
    C = int(rng.integers(2, 7))
    n = int(rng.integers(1, 100)) if seed % 2 else int(rng.integers(1, 6))
    dtype = DTYPES[seed % 2]
    y, p = data("multilabel", n, rng, dtype, C=C)
    thr = [0.5, 0.3, 0.8][seed % 3]
    check_scores(y, p, "multilabel", y.astype(int), (p.astype(np.float64) > thr).astype(int), C,
                 threshold=thr)


@pytest.mark.parametrize("seed", range(6))
def test_binary_against_sklearn(seed):
    """The binary task is scikit-learn's average="binary" (pos_label=1), for
    every average (one class)."""
    rng = np.random.default_rng(200 + seed)
    n = int(rng.integers(2, 200))
    dtype = DTYPES[seed % 2]
    y, p = data("binary", n, rng, dtype)
    y[0], p[0] = 1, 0.9  # a positive target: scikit-learn's weighted average is defined
    thr = [0.5, 0.3, 0.8][seed % 3]
    truth = (y >= 0.5).astype(int)
    pred = (p.astype(np.float64) > thr).astype(int)
    for zd in ZERO_DIVISION:
        for name, beta in [("precision", 1.0), ("recall", 1.0), ("f1_score", 1.0),
                           ("fbeta_score", 0.5), ("fbeta_score", 3.0)]:
            fn = getattr(skm, SK[name])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                exp = fn(truth, pred, average="binary", zero_division=zd,
                         **score_kwargs(name, beta))
            for avg in AVERAGES:
                got = getattr(fl, name)(y, p, threshold=thr, average=avg, zero_division=zd,
                                        **score_kwargs(name, beta))
                got = got[0] if avg == "none" else got
                np.testing.assert_allclose(got, exp, rtol=1e-15, atol=0,
                                           err_msg=f"{name} {avg} {zd}")
    # confusion counts vs sklearn's confusion_matrix [[tn, fp], [fn, tp]]
    (tn, fp), (fn_, tp) = skm.confusion_matrix(truth, pred, labels=[0, 1])
    np.testing.assert_array_equal(fl.confusion_counts(y, p, threshold=thr), [[tp, fp, tn, fn_]])


def test_binary_weighted_average_without_positive_targets():
    """Binary: "every average is the positive class's score", also where no
    target is positive (the positive class has no support)."""
    y = np.zeros(6)
    p = np.array([0.9, 0.8, 0.1, 0.2, 0.3, 0.7])  # 3 false positives, no tp
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for zd in ZERO_DIVISION:
            for name in ("precision", "recall", "f1_score"):
                exp = getattr(skm, SK[name])(y.astype(int), (p > 0.5).astype(int),
                                             average="binary", zero_division=zd)
                per_class = getattr(fl, name)(y, p, average="none", zero_division=zd)[0]
                np.testing.assert_array_equal(per_class, exp)
                for avg in ("macro", "micro", "weighted"):
                    got = getattr(fl, name)(y, p, average=avg, zero_division=zd)
                    np.testing.assert_array_equal(got, exp, err_msg=f"{name} {avg} zd={zd}")


def test_top_level_zero_division_cases():
    """Classes without predictions / without support take zero_division;
    macro skips NaN scores."""
    y = np.array([0, 0, 1, 1])
    pred = np.array([0, 0, 0, 0])  # class 1 never predicted, class 2 absent
    for zd in ZERO_DIVISION:
        got = fl.precision(y, pred, task="multiclass", num_classes=3, average="none",
                           zero_division=zd)
        np.testing.assert_array_equal(got, [0.5, zd, zd])
        got = fl.precision(y, pred, task="multiclass", num_classes=3, zero_division=zd)
        np.testing.assert_array_equal(got, 0.5 if np.isnan(zd) else (0.5 + 2 * zd) / 3)
        got = fl.recall(y, pred, task="multiclass", num_classes=3, average="none",
                        zero_division=zd)
        np.testing.assert_array_equal(got, [1.0, 0.0, zd])
        got = fl.recall(y, pred, task="multiclass", num_classes=3, average="weighted",
                        zero_division=zd)
        np.testing.assert_array_equal(got, 0.5)


def test_from_counts():
    rng = np.random.default_rng(7)
    y, p = data("multiclass", 300, rng, C=5)
    counts = fl.confusion_counts(y, p, task="multiclass")
    for name in SCORES:
        for avg in AVERAGES:
            for zd in ZERO_DIVISION:
                kw = {"average": avg, "zero_division": zd, **score_kwargs(name, 0.7)}
                a = getattr(fl, name).from_counts(counts, **kw)
                b = getattr(fl, name)(y, p, task="multiclass", **kw)
                assert bits(a) == bits(b)
                assert type(a) is type(b)
    # (S, C, 4): one per segment; lists are fine
    stacked = np.stack([counts, counts * 2, np.zeros_like(counts)])
    got = fl.f1_score.from_counts(stacked.tolist(), average="none")
    np.testing.assert_array_equal(got, rc.score(stacked, "f1_score", "none"))


# ---------------------------------------------------------------------------
# Segments


def offsets_of(rng, n, s):
    cuts = np.sort(rng.integers(0, n + 1, s - 1))
    if s > 3:
        cuts[1] = cuts[0]  # an empty segment
    return np.concatenate([[0], cuts, [n]]).astype(np.int64)


@pytest.mark.parametrize("task", TASKS)
def test_segments_equal_per_segment_calls(task):
    rng = np.random.default_rng(8)
    n, S, C = 700, 13, 4
    y, p = data(task, n, rng, np.float32, C=C)
    off = offsets_of(rng, n, S)
    off[-2] = n  # an empty last segment
    ids = np.repeat(np.arange(S), np.diff(off))
    counts = fl.confusion_counts(y, p, task=task, offsets=off)
    Cn = 1 if task == "binary" else C
    assert counts.shape == (S, Cn, 4) and counts.dtype == np.int64
    np.testing.assert_array_equal(
        counts, fl.confusion_counts(y, p, task=task, segment_ids=ids, num_segments=S))
    for k in range(S):
        sl = slice(off[k], off[k + 1])
        np.testing.assert_array_equal(counts[k], fl.confusion_counts(y[sl], p[sl], task=task))
        np.testing.assert_array_equal(counts[k], rc.confusion_counts(y[sl], p[sl], task=task))
    np.testing.assert_array_equal(counts.sum(axis=0), fl.confusion_counts(y, p, task=task))
    for name in SCORES:
        for avg in AVERAGES:
            for zd in (0.0, np.nan):
                kw = {"average": avg, "zero_division": zd, **score_kwargs(name, 2.0)}
                got = getattr(fl, name)(y, p, task=task, offsets=off, **kw)
                assert got.shape == ((S, Cn) if avg == "none" else (S,))
                assert bits(got) == bits(getattr(fl, name)(y, p, task=task, segment_ids=ids,
                                                           num_segments=S, **kw))
                for k in range(S):
                    sl = slice(off[k], off[k + 1])
                    assert bits(got[k]) == bits(getattr(fl, name)(y[sl], p[sl], task=task,
                                                                  **kw)), (name, avg, k)


def test_segments_of_binary_elements_of_a_2d_input():
    rng = np.random.default_rng(9)
    y, p = data("binary", 600, rng)
    y2, p2 = y.reshape(20, 30), p.reshape(20, 30)
    off = offsets_of(rng, 600, 9)
    got = fl.confusion_counts(y2, p2, offsets=off)
    for k in range(9):
        sl = slice(off[k], off[k + 1])
        np.testing.assert_array_equal(got[k], rc.confusion_counts(y[sl], p[sl]))


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("task", TASKS)
def test_large_inputs_over_several_tasks(task, threads):
    """Inputs of several 64K-value work items, segments crossing them: the
    same counts for any thread count."""
    rng = np.random.default_rng(10)
    n = 150_000 if task == "binary" else 60_000
    C = 3
    y, p = data(task, n, rng, np.float32, C=C)
    if task == "multiclass":
        y[rng.random(n) < 0.05] = -1
    off = offsets_of(rng, n, 25)
    old = fl.get_num_threads()
    try:
        fl.set_num_threads(threads)
        whole = fl.confusion_counts(y, p, task=task, ignore_index=-1)
        seg = fl.confusion_counts(y, p, task=task, ignore_index=-1, offsets=off)
    finally:
        fl.set_num_threads(old)
    np.testing.assert_array_equal(whole, rc.confusion_counts(y, p, task=task, ignore_index=-1))
    np.testing.assert_array_equal(seg.sum(axis=0), whole)
    for k in range(25):
        sl = slice(off[k], off[k + 1])
        np.testing.assert_array_equal(seg[k], rc.confusion_counts(y[sl], p[sl], task=task,
                                                                  ignore_index=-1))


# ---------------------------------------------------------------------------
# Accumulators


def splits(rng, n, k):
    cuts = np.sort(rng.integers(0, n + 1, k - 1))
    return np.concatenate([[0], cuts, [n]])


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("name", ["confusion_counts", "precision", "fbeta_score"])
def test_accumulator_any_split_equals_one_shot(task, name):
    rng = np.random.default_rng(11)
    n, C = 2000, 5
    y, p = data(task, n, rng, np.float32, C=C)
    metric = getattr(fl, name)
    kw = {} if name == "confusion_counts" else {"average": "weighted"}
    if name == "fbeta_score":
        kw["beta"] = 0.4
    opts = {"task": task, "threshold": 0.4} if task != "multiclass" else {"task": task}
    one_shot = metric(y, p, **opts, **kw)
    counts = fl.confusion_counts(y, p, **opts)
    for trial in range(5):
        acc = metric.accumulator(**opts, **kw)
        cuts = splits(rng, n, int(rng.integers(1, 12)))
        for a, b in zip(cuts[:-1], cuts[1:]):  # empty batches included
            acc.update(y[a:b], p[a:b])
        np.testing.assert_array_equal(acc.counts, counts)
        np.testing.assert_array_equal(acc.state(), counts)
        assert bits(acc.result()) == bits(one_shot)
        assert type(acc.result()) is type(one_shot)
    # float64 batches add to the same counts as float32 ones (items, not values)
    acc.update(y.astype(np.float64) if task != "multiclass" else y, p.astype(np.float64))
    np.testing.assert_array_equal(acc.counts, 2 * counts)


def test_accumulator_merge_order_and_tree():
    rng = np.random.default_rng(12)
    n, C = 3000, 4
    y, p = data("multiclass", n, rng, C=C)
    cuts = splits(rng, n, 8)
    parts = []
    for a, b in zip(cuts[:-1], cuts[1:]):
        acc = fl.f1_score.accumulator(task="multiclass", average="macro")
        acc.update(y[a:b], p[a:b])
        parts.append(acc)
    expected = fl.f1_score(y, p, task="multiclass", average="macro")
    for perm in list(itertools.permutations(range(len(parts))))[::997][:20]:
        total = fl.f1_score.accumulator(task="multiclass", average="macro")
        for i in perm:
            total.merge(parts[i])
        assert bits(total.result()) == bits(expected)
    # a tree of merges, and merge of an iterable
    left = parts[0].copy().merge(parts[1:4])
    right = parts[7].copy().merge([parts[6], parts[5]]).merge(parts[4])
    assert bits(left.merge(right).result()) == bits(expected)
    # states add as integers
    total_state = np.sum([a.state() for a in parts], axis=0)
    rebuilt = fl.f1_score.accumulator.from_state(total_state, task="multiclass", average="macro")
    assert bits(rebuilt.result()) == bits(expected)
    # merging an empty accumulator changes nothing
    empty = fl.f1_score.accumulator(task="multiclass", average="macro")
    assert bits(left.merge(empty).result()) == bits(expected)


def test_accumulator_pickle_copy_reset():
    rng = np.random.default_rng(13)
    y, p = data("multilabel", 500, rng, C=3)
    acc = fl.recall.accumulator(task="multilabel", average="none", threshold=0.3)
    acc.update(y[:200], p[:200])
    for twin in (pickle.loads(pickle.dumps(acc)), copy.copy(acc), copy.deepcopy(acc),
                 acc.copy()):
        assert twin.metric is fl.recall
        assert twin.options == acc.options and twin.num_segments is None
        np.testing.assert_array_equal(twin.counts, acc.counts)
        twin.update(y[200:], p[200:])
        np.testing.assert_array_equal(
            twin.result(), fl.recall(y, p, task="multilabel", average="none", threshold=0.3))
    # the twins did not share counts with acc
    np.testing.assert_array_equal(acc.counts, fl.confusion_counts(y[:200], p[:200],
                                                                  task="multilabel",
                                                                  threshold=0.3))
    # an empty accumulator pickles too, and has no result yet
    empty = pickle.loads(pickle.dumps(fl.precision.accumulator(task="binary")))
    assert empty.counts is None
    with pytest.raises(ValueError, match="no update"):
        empty.result()
    acc.reset()
    assert acc.counts is None
    acc.update(y, p)
    np.testing.assert_array_equal(acc.counts, fl.confusion_counts(y, p, task="multilabel",
                                                                  threshold=0.3))
    # the counts property is a copy
    c = acc.counts
    c[:] = 0
    assert acc.counts.sum() > 0
    # confusion_counts' accumulator results in the counts
    cc = fl.confusion_counts.accumulator(task="multilabel", threshold=0.3)
    cc.update(y, p)
    np.testing.assert_array_equal(cc.result(), acc.counts)


def test_accumulator_segments():
    rng = np.random.default_rng(14)
    S, C = 6, 3
    acc = fl.precision.accumulator(num_segments=S, task="multiclass", average="none")
    acc_ids = fl.precision.accumulator(num_segments=S, task="multiclass", average="none")
    total = np.zeros((S, C, 4), np.int64)
    for _ in range(4):
        n = int(rng.integers(0, 300))
        y, p = data("multiclass", n, rng, C=C)
        off = offsets_of(rng, n, S)
        acc.update(y, p, offsets=off)
        acc_ids.update(y, p, segment_ids=np.repeat(np.arange(S), np.diff(off)))
        total += fl.confusion_counts(y, p, task="multiclass", offsets=off)
    np.testing.assert_array_equal(acc.counts, total)
    np.testing.assert_array_equal(acc_ids.counts, total)
    np.testing.assert_array_equal(acc.result(), fl.precision.from_counts(total, average="none"))
    twin = pickle.loads(pickle.dumps(acc))
    assert twin.num_segments == S
    np.testing.assert_array_equal(twin.result(), acc.result())
    rebuilt = fl.precision.accumulator.from_state(total, num_segments=S, task="multiclass",
                                                  average="none")
    np.testing.assert_array_equal(rebuilt.result(), acc.result())
    with pytest.raises(TypeError, match="offsets|segment_ids"):
        acc.update(np.array([0]), np.zeros((1, C)))
    with pytest.raises(ValueError, match="segment"):
        acc.update(np.array([0, 1]), np.zeros((2, C)), offsets=np.array([0, 1, 2]))
    with pytest.raises(TypeError, match="num_segments"):
        fl.precision.accumulator(task="multiclass").update(np.array([0]), np.zeros((1, C)),
                                                           offsets=np.array([0, 1]))
    with pytest.raises(ValueError, match="num_segments"):
        fl.precision.accumulator.from_state(total, task="multiclass")
    np.testing.assert_array_equal(acc.counts, total)


def test_accumulator_threads():
    """Threads updating one accumulator: the counts of all their batches."""
    rng = np.random.default_rng(15)
    n, C, T = 40_000, 6, 4
    y, p = data("multiclass", n, rng, np.float32, C=C)
    acc = fl.specificity.accumulator(task="multiclass", average="micro")
    cuts = splits(rng, n, 64)
    batches = list(zip(cuts[:-1], cuts[1:]))
    errors = []

    def work(k):
        try:
            for a, b in batches[k::T]:
                acc.update(y[a:b], p[a:b])
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(T)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    np.testing.assert_array_equal(acc.counts, fl.confusion_counts(y, p, task="multiclass"))
    assert bits(acc.result()) == bits(fl.specificity(y, p, task="multiclass", average="micro"))
    # merging from several threads into one accumulator
    total = fl.specificity.accumulator(task="multiclass", average="micro")
    parts = [fl.specificity.accumulator(task="multiclass", average="micro") for _ in range(T)]
    for k, part in enumerate(parts):
        for a, b in batches[k::T]:
            part.update(y[a:b], p[a:b])
    threads = [threading.Thread(target=total.merge, args=(part,)) for part in parts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    np.testing.assert_array_equal(total.counts, acc.counts)


def test_accumulator_errors_add_nothing():
    rng = np.random.default_rng(16)
    y, p = data("multiclass", 50, rng, C=3)
    acc = fl.recall.accumulator(task="multiclass")
    acc.update(y, p)
    before = acc.counts
    bad_labels = y.copy()
    bad_labels[-1] = 3
    with pytest.raises(ValueError, match="y_true"):
        acc.update(bad_labels, p)
    bad_scores = p.copy()
    bad_scores[-1, 1] = np.nan
    with pytest.raises(ValueError, match="y_pred"):
        acc.update(y, bad_scores)
    with pytest.raises(ValueError, match="class"):
        acc.update(y, np.zeros((50, 4)))  # another number of classes
    np.testing.assert_array_equal(acc.counts, before)
    # merging accumulators of other options or metrics
    with pytest.raises(ValueError):
        acc.merge(fl.recall.accumulator(task="multiclass", ignore_index=-1))
    with pytest.raises(ValueError):
        acc.merge(fl.precision.accumulator(task="multiclass"))
    with pytest.raises(TypeError):
        acc.merge(fl.mse.accumulator())
    with pytest.raises(TypeError):
        acc.merge([1])
    np.testing.assert_array_equal(acc.counts, before)
    with pytest.raises(TypeError, match="bogus"):
        fl.recall.accumulator(task="multiclass", bogus=1)
    with pytest.raises(TypeError, match="beta"):
        fl.recall.accumulator(task="multiclass", beta=2.0)
    with pytest.raises(TypeError, match="average"):
        fl.confusion_counts.accumulator(average="macro")
    with pytest.raises(ValueError, match="average"):
        fl.recall.accumulator(average="bogus")
    with pytest.raises(ValueError, match="num_segments"):
        fl.recall.accumulator(num_segments=-1)
    with pytest.raises(ValueError, match="counts"):
        fl.recall.accumulator.from_state(np.zeros((3, 5), np.int64))
    with pytest.raises(ValueError, match="counts"):
        fl.recall.accumulator.from_state(-np.ones((3, 4), np.int64))


def test_accumulator_checks_count_options_when_made():
    """Bad values of the count options are errors when the accumulator is
    made (as for the score options), not at the first update."""
    with pytest.raises(ValueError, match="task"):
        fl.precision.accumulator(task="bogus")
    with pytest.raises(ValueError, match="threshold"):
        fl.precision.accumulator(threshold=2.0)
    with pytest.raises(ValueError, match="num_classes"):
        fl.confusion_counts.accumulator(task="multiclass", num_classes=0)


def test_accumulator_merge_compares_options_with_defaults_filled_in():
    """As the losses' accumulators do: an option given at its default is the
    same accumulator as one left out."""
    y = np.array([0.0, 1.0, 1.0])
    p = np.array([0.2, 0.9, 0.1])
    a = fl.precision.accumulator(task="binary")
    b = fl.precision.accumulator(task="binary", threshold=0.5, average="macro")
    a.update(y, p)
    b.update(y, p)
    a.merge(b)
    np.testing.assert_array_equal(a.counts, 2 * fl.confusion_counts(y, p))


# ---------------------------------------------------------------------------
# Bad input

Y3, P3 = np.array([0, 1, 2]), np.eye(3)
YB, PB = np.array([0.0, 1.0, 1.0]), np.array([0.2, 0.7, 0.4])
YL, PL = np.array([[0.0, 1.0], [1.0, 1.0]]), np.array([[0.2, 0.7], [0.9, 0.1]])


def _with(a, index, value):
    a = np.array(a, copy=True)
    a[index] = value
    return a


BAD = [
    ("task", ValueError, "task", lambda: fl.confusion_counts(YB, PB, task="bogus")),
    ("task type", (TypeError, ValueError), "task", lambda: fl.precision(YB, PB, task=1)),
    ("label high", ValueError, "y_true",
     lambda: fl.precision(np.array([0, 3, 1]), P3, task="multiclass")),
    ("label negative", ValueError, "y_true",
     lambda: fl.recall(np.array([0, -1, 1]), P3, task="multiclass")),
    ("predicted label", ValueError, "y_pred",
     lambda: fl.precision(Y3, np.array([0, 5, 1]), task="multiclass", num_classes=3)),
    ("predicted negative", ValueError, "y_pred",
     lambda: fl.confusion_counts(Y3, np.array([0, -5, 1]), task="multiclass", num_classes=3)),
    ("nan score multiclass", ValueError, "y_pred",
     lambda: fl.f1_score(Y3, _with(P3, (2, 1), np.nan), task="multiclass")),
    ("nan first score", ValueError, "y_pred",
     lambda: fl.f1_score(Y3, _with(P3, (1, 0), np.nan), task="multiclass")),
    ("nan score binary", ValueError, "y_pred", lambda: fl.precision(YB, _with(PB, 1, np.nan))),
    ("nan score multilabel", ValueError, "y_pred",
     lambda: fl.recall(YL, _with(PL, (1, 1), np.nan), task="multilabel")),
    ("nan target", ValueError, "y_true", lambda: fl.precision(_with(YB, 0, np.nan), PB)),
    ("target > 1", ValueError, "y_true", lambda: fl.confusion_counts(_with(YB, 2, 2.0), PB)),
    ("target < 0", ValueError, "y_true",
     lambda: fl.confusion_counts(_with(YL, (0, 1), -0.5), PL, task="multilabel")),
    ("shapes binary", ValueError, "y_true|y_pred", lambda: fl.precision(YB, PB[:2])),
    ("shapes multilabel", ValueError, "y_true|y_pred",
     lambda: fl.precision(YL, PL[:, :1], task="multilabel")),
    ("rows multiclass", ValueError, "y_true", lambda: fl.precision(Y3[:2], P3, task="multiclass")),
    ("shapes predicted", ValueError, "y_true|y_pred",
     lambda: fl.precision(Y3, Y3[:2], task="multiclass", num_classes=3)),
    ("unknown option", TypeError, "bogus", lambda: fl.precision(YB, PB, bogus=1)),
    ("unknown option counts", TypeError, "average",
     lambda: fl.confusion_counts(YB, PB, average="macro")),
    ("beta on precision", TypeError, "beta", lambda: fl.precision(YB, PB, beta=2.0)),
    ("beta 0", ValueError, "beta", lambda: fl.fbeta_score(YB, PB, beta=0.0)),
    ("beta negative", ValueError, "beta", lambda: fl.fbeta_score(YB, PB, beta=-1.0)),
    ("beta inf", ValueError, "beta", lambda: fl.fbeta_score(YB, PB, beta=np.inf)),
    ("average", ValueError, "average", lambda: fl.recall(YB, PB, average="binary")),
    ("num_classes mismatch", ValueError, "num_classes",
     lambda: fl.precision(Y3, P3, task="multiclass", num_classes=4)),
    ("num_classes mismatch multilabel", ValueError, "num_classes",
     lambda: fl.precision(YL, PL, task="multilabel", num_classes=3)),
    ("num_classes missing", ValueError, "num_classes",
     lambda: fl.precision(Y3, Y3, task="multiclass")),
    ("num_classes 0", ValueError, "num_classes",
     lambda: fl.precision(Y3, Y3, task="multiclass", num_classes=0)),
    ("threshold 2", ValueError, "threshold", lambda: fl.precision(YB, PB, threshold=2.0)),
    ("threshold negative", ValueError, "threshold",
     lambda: fl.confusion_counts(YB, PB, threshold=-0.1)),
    ("threshold nan", ValueError, "threshold", lambda: fl.confusion_counts(YB, PB, threshold=np.nan)),
    ("axis", ValueError, "axis", lambda: fl.precision(Y3, P3, task="multiclass", axis=2)),
    ("axis multilabel", ValueError, "axis", lambda: fl.recall(YL, PL, task="multilabel", axis=-3)),
    ("float labels", (TypeError, ValueError), "y_true",
     lambda: fl.precision(Y3.astype(float), P3, task="multiclass")),
    ("zero classes", ValueError, "class", lambda: fl.precision(np.zeros(3, np.int64),
                                                               np.zeros((3, 0)), task="multiclass")),
    ("string scores", (TypeError, ValueError), "y_pred", lambda: fl.precision(YB, ["a", "b", "c"])),
    ("offsets decreasing", ValueError, "offsets",
     lambda: fl.precision(YB, PB, offsets=np.array([0, 2, 1, 3]))),
    ("offsets end", ValueError, "offsets", lambda: fl.precision(YB, PB, offsets=np.array([0, 2]))),
    ("offsets and ids", TypeError, "offsets|segment_ids",
     lambda: fl.precision(YB, PB, offsets=np.array([0, 3]), segment_ids=np.zeros(3, int),
                          num_segments=1)),
    ("ids without num_segments", TypeError, "num_segments",
     lambda: fl.precision(YB, PB, segment_ids=np.zeros(3, int))),
    ("ids out of range", ValueError, "segment_ids",
     lambda: fl.precision(YB, PB, segment_ids=np.array([0, 1, 5]), num_segments=2)),
    ("zero_division type", (TypeError, ValueError), "zero_division",
     lambda: fl.precision(YB, PB, zero_division="warn")),
    ("from_counts of the counts", TypeError, "counts",
     lambda: fl.confusion_counts.from_counts(np.zeros((1, 4), np.int64))),
    ("from_counts shape", ValueError, "counts",
     lambda: fl.precision.from_counts(np.zeros((3, 3), np.int64))),
    ("from_counts negative", ValueError, "counts",
     lambda: fl.precision.from_counts(-np.ones((3, 4), np.int64))),
    ("from_counts option", TypeError, "threshold",
     lambda: fl.precision.from_counts(np.zeros((3, 4), np.int64), threshold=0.5)),
    ("grad", (AttributeError, TypeError), "grad", lambda: fl.precision.grad(YB, PB)),
    ("combination", TypeError, None, lambda: fl.mse + fl.f1_score),
    ("combination scaled", TypeError, None, lambda: 0.5 * fl.mse + fl.precision),
]


@pytest.mark.parametrize("exc,match,call", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_input(exc, match, call):
    with pytest.raises(exc, match=match):
        call()


def test_bad_input_never_crashes():
    """Random bad arguments on the confusion path: errors only, in a
    subprocess that would report a crash."""
    code = r"""
import numpy as np, fastloss as fl
rng = np.random.default_rng(0)
def arr():
    k = int(rng.integers(0, 12))
    n = int(rng.integers(0, 6))
    c = int(rng.integers(0, 4))
    return [None, 1.5, "x", np.zeros(0), rng.random(n), rng.random((n, c)),
            rng.integers(-3, 5, n), rng.integers(-3, 5, (n, c)), np.full(n, np.nan),
            rng.random((n, c, 2))[:, ::-1], np.arange(2 * n, dtype=np.int32)[::2],
            rng.random((n, c)).astype(np.float16)][k]
opts_pool = [("task", ["binary", "multiclass", "multilabel", "x", 3]),
             ("num_classes", [None, -1, 0, 1, 3, 7]),
             ("threshold", [0.0, 0.5, 1.0, 2.0, np.nan]),
             ("from_logits", [True, False]),
             ("ignore_index", [None, -1, 0, 2, 2**62]),
             ("axis", [-3, -2, -1, 0, 1, 5]),
             ("offsets", [None, np.array([0]), np.array([0, 2]), np.array([0, 9, 1]),
                          np.array([0, 0, 1, 2, 3]), np.array([-1, 3]), np.array([0.0, 1.0])]),
             ("segment_ids", [None, np.zeros(3, np.int64), np.array([0, 1, 0]),
                              np.array([-1, 0, 0]), np.arange(5)]),
             ("num_segments", [None, 0, 1, 2, -1, 2**40])]
n_err = 0
for trial in range(8000):
    name = ["confusion_counts", "precision", "recall", "f1_score", "fbeta_score",
            "specificity"][trial % 6]
    kw = {}
    for key, vals in opts_pool:
        if rng.random() < 0.5:
            kw[key] = vals[int(rng.integers(len(vals)))]
    if name != "confusion_counts" and rng.random() < 0.3:
        kw["average"] = ["macro", "micro", "weighted", "none", "x"][int(rng.integers(5))]
    try:
        getattr(fl, name)(arr(), arr(), **kw)
    except (ValueError, TypeError):
        n_err += 1
    except MemoryError:  # num_segments=2**40 (as for the losses' segments)
        assert kw.get("num_segments") == 2**40, kw
    if trial % 7 == 0:
        acc_kw = {k: v for k, v in kw.items()
                  if k not in ("offsets", "segment_ids", "num_segments")}
        try:
            acc = getattr(fl, name).accumulator(**acc_kw)
            acc.update(arr(), arr())
            acc.update(arr(), arr())
            acc.result()
        except (ValueError, TypeError):
            n_err += 1
print("ok", n_err)
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.startswith("ok")


@pytest.mark.parametrize("threads", [1, 2])
def test_the_first_bad_item_is_reported_for_any_thread_count(threads):
    n = 200_000
    y = np.zeros(n, np.int64)
    y[150_000], y[190_000] = 7, 9
    p = np.zeros((n, 3))
    old = fl.get_num_threads()
    try:
        fl.set_num_threads(threads)
        with pytest.raises(ValueError, match=r"y_true label 7 at \(150000,\)"):
            fl.confusion_counts(y, p, task="multiclass")
        p[120_000, 1] = np.nan
        with pytest.raises(ValueError, match=r"y_pred is NaN at .*120000"):
            fl.confusion_counts(y, p, task="multiclass")
    finally:
        fl.set_num_threads(old)


def test_memory_does_not_grow_with_rows_times_classes():
    """Counting N predicted labels of C classes needs O(C) memory (the
    counts), not O(N * C): 60,000 rows of 20,000 classes under an address
    space limit of 1.5 GiB above what the process already holds."""
    code = r"""
import resource, sys
import numpy as np, fastloss as fl
C, n = 20_000, 60_000
rng = np.random.default_rng(0)
y, p = rng.integers(0, C, n), rng.integers(0, C, n)
fl.confusion_counts(y[:10], p[:10], task="multiclass", num_classes=C)  # threads started
with open("/proc/self/status") as f:
    vm = [int(l.split()[1]) * 1024 for l in f if l.startswith("VmSize")][0]
limit = vm + (3 << 29)
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
try:
    c = fl.confusion_counts(y, p, task="multiclass", num_classes=C)
except MemoryError:
    print("MemoryError")
    sys.exit(3)
assert (c.sum(axis=1) == n).all()
print("ok")
"""
    if not sys.platform.startswith("linux"):
        pytest.skip("uses /proc and RLIMIT_AS")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "ok", (r.returncode, r.stdout, r.stderr[-2000:])


@pytest.mark.parametrize("scheduler", ["sync", "threads"])
def test_dask_arrays_give_lazy_exact_results(scheduler):
    da = pytest.importorskip("dask.array")
    import dask

    rng = np.random.default_rng(21)
    labels = rng.integers(0, 5, 3000)
    scores = rng.normal(size=(3000, 5)).astype(np.float32)
    y01 = (rng.random((3000, 4)) < 0.4).astype(np.float64)
    probs = rng.random((3000, 4))
    cases = [
        (dict(task="multiclass"), labels, scores, da.from_array(labels, chunks=700),
         da.from_array(scores, chunks=(500, 2))),
        (dict(task="multiclass", num_classes=5), labels, scores.argmax(1),
         labels, da.from_array(scores.argmax(1), chunks=999)),
        (dict(task="multilabel", threshold=0.3), y01, probs, da.from_array(y01, chunks=(800, 4)),
         probs),
        (dict(task="binary"), y01[:, 0], probs[:, 0], da.from_array(y01[:, 0], chunks=512),
         da.from_array(probs[:, 0], chunks=1000)),
    ]
    with dask.config.set(scheduler=scheduler):
        for opts, t, p, dt, dp in cases:
            lazy = fl.confusion_counts(dt, dp, **opts)
            assert isinstance(lazy, da.Array) and lazy.dtype == np.int64
            np.testing.assert_array_equal(lazy.compute(), fl.confusion_counts(t, p, **opts))
            for avg in ("macro", "none"):
                got = fl.f1_score(dt, dp, average=avg, **opts)
                assert isinstance(got, da.Array)
                np.testing.assert_array_equal(got.compute(), fl.f1_score(t, p, average=avg, **opts))
    # segments: lazy per-segment results (more in test_dask_segments.py)
    seg = fl.recall(da.from_array(labels), scores, task="multiclass", offsets=np.array([0, 3000]))
    assert isinstance(seg, da.Array) and seg.shape == (1,)
    np.testing.assert_array_equal(
        seg.compute(), fl.recall(labels, scores, task="multiclass", offsets=np.array([0, 3000])))
    with pytest.raises(ValueError, match="task"):
        fl.recall(da.from_array(labels), scores, task="nope")


def test_dask_on_a_local_cluster():
    """Per-chunk counts computed in 2 worker processes add to the NumPy counts."""
    da = pytest.importorskip("dask.array")
    distributed = pytest.importorskip("distributed")
    rng = np.random.default_rng(22)
    t, p = rng.integers(0, 5, 5000), rng.normal(size=(5000, 5))
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, distributed.Client(cluster):
        lazy = fl.f1_score(da.from_array(t, chunks=1000), da.from_array(p, chunks=(1000, 5)),
                           task="multiclass", average="weighted")
        assert lazy.compute() == fl.f1_score(t, p, task="multiclass", average="weighted")
