"""Segments (``offsets=``, ``segment_ids=`` with ``num_segments=``) on Dask
arrays: one lazy value per segment, from per-chunk segment states added as
integers; the same bits on every scheduler and, where no chunk boundary cuts
a segment off its 1024-item blocks, the same bits as the NumPy call."""

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")
import dask.callbacks  # noqa: E402
distributed = pytest.importorskip("distributed")

import fastloss as fl  # noqa: E402
from dask_checks import bits, local_client, on_all  # noqa: E402

DTYPES = [np.float32, np.float64]


@pytest.fixture(scope="module")
def client():
    with local_client() as c:
        yield c


def check(client, lazy, expected, exact=True):
    """Every scheduler gives the same bits; those of ``expected`` (NumPy) when
    ``exact``, else within the rounding of differently cut block partials."""
    results = on_all(client, *lazy)
    for r in results[1:]:
        for a, b in zip(r, results[0]):
            assert bits(a) == bits(b)
    for got, want in zip(results[0], expected):
        want = np.asarray(want)
        assert got.dtype == want.dtype and got.shape == want.shape, (got, want)
        if exact:
            assert bits(got) == bits(want), (got, want)
        else:
            rtol = 2e-7 if want.dtype == np.float32 else 1e-13
            np.testing.assert_allclose(got, want, rtol=rtol, atol=0)


def ragged_offsets(n, S, rng, cuts=()):
    """S + 1 offsets from 0 to n with some empty segments; ``cuts`` are
    forced among them."""
    inner = np.sort(np.concatenate([rng.integers(0, n + 1, S - 1 - len(cuts)),
                                    np.asarray(cuts, np.int64)]))
    return np.concatenate([[0], inner, [n]]).astype(np.int64)


# ---------------------------------------------------------------------------
# Elementwise: segments of the flat elements


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_offsets_on_chunk_boundaries_same_bits(client, dtype, reduction):
    rng = np.random.default_rng(0)
    n, chunk = 40_960, 8192
    y = rng.standard_normal(n).astype(dtype)
    p = rng.standard_normal(n).astype(dtype)
    w = rng.random(n).astype(dtype)
    # every chunk boundary is a segment boundary: each segment is one chunk's
    offsets = ragged_offsets(n, 25, rng, cuts=range(chunk, n, chunk))
    Y, P = da.from_array(y, chunks=chunk), da.from_array(p, chunks=chunk)
    W = da.from_array(w, chunks=chunk)
    lazy = [fl.huber(Y, P, delta=0.7, reduction=reduction, offsets=offsets),
            *fl.huber.value_and_grad(Y, P, delta=0.7, reduction=reduction, weights=W,
                                     offsets=offsets)]
    expected = [fl.huber(y, p, delta=0.7, reduction=reduction, offsets=offsets),
                *fl.huber.value_and_grad(y, p, delta=0.7, reduction=reduction, weights=w,
                                         offsets=offsets)]
    assert lazy[0].shape == (25,) and lazy[0].dtype == dtype
    assert lazy[2].chunks == P.chunks
    check(client, lazy, expected)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_segments_across_chunks(client, dtype):
    """Segments cut by chunk boundaries: per-segment states add exactly; the
    value is within rounding of the NumPy call (block partials cut
    differently), the same bits on every scheduler; the gradient is exact."""
    rng = np.random.default_rng(1)
    n = 50_000
    y = rng.integers(0, 2, n).astype(dtype)
    p = rng.standard_normal(n).astype(dtype)
    offsets = ragged_offsets(n, 40, rng)
    ids = np.repeat(np.arange(40), np.diff(offsets))
    P = da.from_array(p, chunks=3000)
    lazy = [fl.bce(y, P, from_logits=True, offsets=offsets),
            fl.bce(y, P, from_logits=True, segment_ids=ids, num_segments=40, reduction="sum"),
            fl.bce.grad(y, P, from_logits=True, offsets=offsets)]
    expected = [fl.bce(y, p, from_logits=True, offsets=offsets),
                fl.bce(y, p, from_logits=True, segment_ids=ids, num_segments=40,
                       reduction="sum"),
                fl.bce.grad(y, p, from_logits=True, offsets=offsets)]
    check(client, lazy[:2], expected[:2], exact=False)
    check(client, lazy[2:], expected[2:])


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_unsorted_dask_ids(client, reduction):
    """Ids in any order, a Dask array chunked unlike y_pred, with weights and
    an array pos_weight; empty segments give 0 (sum) or NaN (mean) and a zero
    gradient share."""
    rng = np.random.default_rng(2)
    n, S = 30_000, 17
    y = rng.integers(0, 2, n).astype(np.float64)
    p = rng.random(n) * 0.98 + 0.01
    w = rng.random(n)
    pw = rng.random(n) + 0.5
    ids = rng.integers(0, S - 2, n)  # the last two segments stay empty
    I = da.from_array(ids, chunks=7000)
    P = da.from_array(p, chunks=4096)
    lazy = fl.bce.value_and_grad(y, P, weights=w, pos_weight=pw, segment_ids=I, num_segments=S,
                                 reduction=reduction)
    expected = fl.bce.value_and_grad(y, p, weights=w, pos_weight=pw, segment_ids=ids,
                                     num_segments=S, reduction=reduction)
    v = lazy[0].compute()
    assert (np.isnan(v[-2:]).all() if reduction == "mean" else (v[-2:] == 0).all())
    # A mean's gradient divides by sum(w) per segment, whose block partials
    # are cut by the chunks too: exact for "sum" only.
    check(client, lazy, expected, exact=False)
    if reduction == "sum":
        check(client, lazy[1:], expected[1:])


def test_2d_elementwise_flat_segments(client):
    """Elementwise losses segment the flat elements in C order, whatever the
    chunks of a 2-D array; the gradient keeps y_pred's shape."""
    rng = np.random.default_rng(3)
    y = rng.standard_normal((64, 300)).astype(np.float32)
    p = rng.standard_normal((64, 300)).astype(np.float32)
    w = rng.random(300).astype(np.float32)
    offsets = np.arange(0, 64 * 300 + 1, 300 * 4)  # 16 segments of 4 rows
    P = da.from_array(p, chunks=(16, 100))
    # (the NumPy call takes per-element weights with element segments; Dask
    # broadcasts them first)
    lazy = fl.mse.value_and_grad(y, P, weights=w, offsets=offsets)
    expected = fl.mse.value_and_grad(y, p, weights=np.broadcast_to(w, p.shape).copy(),
                                     offsets=offsets)
    assert lazy[1].shape == p.shape
    check(client, lazy, expected, exact=False)


# ---------------------------------------------------------------------------
# Row-wise, region and box losses: segments of axis 0


def test_rows_segments(client):
    rng = np.random.default_rng(4)
    n, C = 6000, 7
    logits = rng.standard_normal((n, C)).astype(np.float32)
    labels = rng.integers(-1, C, n)  # -1: ignored rows
    cw = (rng.random(C) + 0.5).astype(np.float32)
    offsets = ragged_offsets(n, 9, rng, cuts=(2048, 4096))
    L = da.from_array(logits, chunks=(2048, C))
    kw = dict(ignore_index=-1, class_weights=cw, offsets=offsets)
    lazy = [*fl.sparse_categorical_cross_entropy.value_and_grad(labels, L, **kw)]
    expected = [*fl.sparse_categorical_cross_entropy.value_and_grad(labels, logits, **kw)]
    check(client, lazy, expected)
    onehot = np.eye(C, dtype=np.float32)[np.maximum(labels, 0)]
    ids = np.repeat(np.arange(9), np.diff(offsets))
    lazy = [fl.categorical_cross_entropy(onehot, L, segment_ids=ids, num_segments=9,
                                         label_smoothing=0.1),
            fl.categorical_cross_entropy.grad(onehot, L, segment_ids=ids, num_segments=9,
                                              label_smoothing=0.1)]
    expected = [fl.categorical_cross_entropy(onehot, logits, segment_ids=ids, num_segments=9,
                                             label_smoothing=0.1),
                fl.categorical_cross_entropy.grad(onehot, logits, segment_ids=ids,
                                                  num_segments=9, label_smoothing=0.1)]
    check(client, lazy, expected)


def test_regions_and_boxes_segments(client):
    rng = np.random.default_rng(5)
    y = (rng.random((12, 2, 16, 16)) > 0.5).astype(np.float32)
    p = rng.random((12, 2, 16, 16)).astype(np.float32)
    offsets = np.array([0, 4, 4, 8, 12])
    P = da.from_array(p, chunks=(4, 1, 16, 8))
    lazy = [*fl.dice.value_and_grad(y, P, axis=(1, 2, 3), offsets=offsets)]
    expected = [*fl.dice.value_and_grad(y, p, axis=(1, 2, 3), offsets=offsets)]
    check(client, lazy, expected)
    # regions spanning axis 0: each segment's dataset Dice, on one chunk
    lazy = [*fl.dice.value_and_grad(y, P, axis=(0, 2, 3), offsets=offsets)]
    expected = [*fl.dice.value_and_grad(y, p, axis=(0, 2, 3), offsets=offsets)]
    check(client, lazy, expected)
    b = rng.random((500, 4)).astype(np.float64)
    boxes_p = np.concatenate([b[:, :2], b[:, :2] + b[:, 2:] + 0.1], axis=1)
    b = rng.random((500, 4))
    boxes_t = np.concatenate([b[:, :2], b[:, :2] + b[:, 2:] + 0.1], axis=1)
    ids = np.sort(rng.integers(0, 6, 500))
    B = da.from_array(boxes_p, chunks=(128, 4))
    lazy = [*fl.box_iou.value_and_grad(boxes_t, B, segment_ids=ids, num_segments=6)]
    expected = [*fl.box_iou.value_and_grad(boxes_t, boxes_p, segment_ids=ids, num_segments=6)]
    check(client, lazy, expected, exact=False)
    np.testing.assert_array_equal(lazy[1].compute(), expected[1])


# ---------------------------------------------------------------------------
# Laziness and errors


def test_lazy():
    calls = []

    class Count(dask.callbacks.Callback):
        def _start(self, dsk):
            calls.append(1)

    P = da.random.random(10_000, chunks=1000)
    ids = da.zeros(10_000, chunks=2500, dtype=np.int64)
    with Count():
        v = fl.mse(P, P, segment_ids=ids, num_segments=3)
        g = fl.mse.grad(P, P, offsets=np.array([0, 5000, 10_000]))
    assert not calls
    assert isinstance(v, da.Array) and v.shape == (3,)
    assert isinstance(g, da.Array) and g.chunks == P.chunks
    np.testing.assert_array_equal(v.compute(), [0.0, np.nan, np.nan])


def test_errors():
    P = da.zeros(10_000, chunks=4096)
    ids = np.zeros(10_000, np.int64)
    with pytest.raises(ValueError, match="reduction"):
        fl.mse(P, P, offsets=[0, 10_000], reduction="none")
    with pytest.raises(TypeError, match="offsets"):
        fl.mse(P, P, offsets=da.from_array(np.array([0, 10_000])))
    with pytest.raises(ValueError, match="offsets"):
        fl.mse(P, P, offsets=[0, 9_999])
    with pytest.raises(ValueError, match="offsets"):
        fl.mse(P, P, offsets=[0, 6000, 5000, 10_000])
    with pytest.raises(TypeError, match="offsets"):
        fl.mse(P, P, offsets=[0.0, 10_000.0])
    with pytest.raises(ValueError, match="segment_ids"):
        fl.mse(P, P, segment_ids=ids[:-1], num_segments=1)
    with pytest.raises(TypeError, match="segment_ids"):
        fl.mse(P, P, segment_ids=ids.astype(np.float64), num_segments=1)
    with pytest.raises(ValueError, match="num_segments"):
        fl.mse(P, P, segment_ids=ids, num_segments=-1)
    with pytest.raises(TypeError, match="num_segments"):
        fl.mse(P, P, segment_ids=ids)
    with pytest.raises(TypeError):
        fl.mse(P, P, segment_ids=ids, num_segments=1, offsets=[0, 10_000])
    with pytest.raises(ValueError, match="items along axis 0"):
        fl.categorical_cross_entropy(da.zeros((100, 3), chunks=(50, 3)),
                                     da.zeros((100, 3), chunks=(50, 3)),
                                     segment_ids=np.zeros(300, np.int64), num_segments=1)
    # ids out of range: raised when the graph runs, by the value and the gradient
    bad = ids.copy()
    bad[7777] = 5
    for lazy in (fl.mse(P, P, segment_ids=da.from_array(bad, chunks=3000), num_segments=5),
                 fl.mse.grad(P, P, segment_ids=bad, num_segments=5, reduction="sum")):
        with pytest.raises(ValueError, match="segment_ids"):
            lazy.compute(scheduler="sync")


# ---------------------------------------------------------------------------
# Confusion metrics: per-segment int64 counts, summed over chunks (exact)


def test_confusion_segments(client):
    rng = np.random.default_rng(6)
    n, C, S = 3000, 4, 7
    labels = rng.integers(0, C, n)
    scores = rng.standard_normal((n, C)).astype(np.float32)
    offsets = ragged_offsets(n, S, rng)
    L = da.from_array(scores, chunks=(700, C))
    lazy = [fl.confusion_counts(labels, L, task="multiclass", offsets=offsets),
            fl.f1_score(labels, L, task="multiclass", average="macro", offsets=offsets),
            fl.precision(labels, L, task="multiclass", average="none", offsets=offsets)]
    expected = [fl.confusion_counts(labels, scores, task="multiclass", offsets=offsets),
                fl.f1_score(labels, scores, task="multiclass", average="macro",
                            offsets=offsets),
                fl.precision(labels, scores, task="multiclass", average="none",
                             offsets=offsets)]
    check(client, lazy, expected)
    # ids in any order (a Dask array): each segment's counts are its items'
    ids = rng.integers(0, S, n)
    I = da.from_array(ids, chunks=1000)
    per = np.stack([fl.confusion_counts(labels[ids == s], scores[ids == s], task="multiclass")
                    for s in range(S)])
    got = fl.confusion_counts(labels, L, task="multiclass", segment_ids=I, num_segments=S)
    check(client, [got], [per])
    # multilabel with the class axis in the middle; binary; predicted labels
    y3 = rng.random((50, C, 6)) > 0.5
    p3 = rng.random((50, C, 6))
    off3 = np.array([0, 100, 100, 300])  # rows: (50 * 6) in C order, class axis moved last
    P3 = da.from_array(p3, chunks=(20, C, 3))
    check(client, [fl.recall(y3, P3, task="multilabel", axis=1, average="micro",
                             offsets=off3)],
          [fl.recall(y3, p3, task="multilabel", axis=1, average="micro", offsets=off3)])
    yb = rng.integers(0, 2, (40, 25))
    pb = rng.random((40, 25))
    idsb = np.sort(rng.integers(0, 5, 1000))
    check(client, [fl.confusion_counts(yb, da.from_array(pb, chunks=(10, 25)), task="binary",
                                       segment_ids=idsb, num_segments=5)],
          [fl.confusion_counts(yb, pb, task="binary", segment_ids=idsb, num_segments=5)])
    pred = rng.integers(0, C, n)
    check(client, [fl.specificity(labels, da.from_array(pred, chunks=500), task="multiclass",
                                  num_classes=C, average="weighted", offsets=offsets)],
          [fl.specificity(labels, pred, task="multiclass", num_classes=C, average="weighted",
                          offsets=offsets)])
    with pytest.raises(ValueError, match="offsets"):
        fl.confusion_counts(labels, L, task="multiclass", offsets=[0, n - 1])
    bad = ids.copy()
    bad[5] = S
    with pytest.raises(ValueError, match="segment_ids"):
        fl.confusion_counts(labels, L, task="multiclass", segment_ids=bad,
                            num_segments=S).compute(scheduler="sync")
