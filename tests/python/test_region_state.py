"""Region losses whose regions span batches: the dataset's score.

``fl.dice.accumulator(axis=None)`` (and any ``axis`` that includes the first
axis, e.g. ``(0, 2, 3)`` for per-class Dice over (N, C, H, W)) keeps each
region's exact sums (Dice's I, Sy, Sp) rather than the batches' scores, so
``result()`` is the Dice of the summed intersections and totals: the one-shot
call on the concatenated batches, bit for bit when every batch is a whole
number of 1024-element blocks of its regions; never a mean of batch scores.
"""

import pickle
import threading

import numpy as np
import pytest

import fastloss as fl
from fastloss import reference
from fastloss._accumulate import STATE_WORDS

B = 1024
REGION_LOSSES = ["dice", "jaccard", "tversky", "focal_tversky"]


def _bits(x):
    return np.float64(x).tobytes()


def _same_bits(a, b):
    assert _bits(a) == _bits(b), (a, b)


def _masks(rng, shape, dtype=np.float64, logits=False):
    y = (rng.random(shape) < 0.3).astype(dtype)
    p = (rng.normal(size=shape) if logits else rng.uniform(0.01, 0.99, shape)).astype(dtype)
    return y, p


OPTIONS = [
    dict(),
    dict(smooth=1.0),
    dict(squared=True),
    dict(from_logits=True),
    dict(squared=True, from_logits=True, smooth=0.5),
]


@pytest.mark.parametrize("name", REGION_LOSSES)
@pytest.mark.parametrize("opts", OPTIONS, ids=lambda o: ",".join(o) or "default")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_axis_none_is_the_datasets_score(name, opts, dtype, reduction):
    rng = np.random.default_rng(3)
    y, p = _masks(rng, (24, 8, 16, 16), dtype, opts.get("from_logits", False))
    loss = getattr(fl, name)
    acc = loss.accumulator(reduction, **opts)
    for k in range(0, 24, 4):  # 4 * 2048 elements: whole blocks
        acc.update(y[k:k + 4], p[k:k + 4])
    one_shot = loss(y, p, reduction=reduction, **opts)
    _same_bits(acc.result(), one_shot)
    assert acc.result().dtype == np.dtype(dtype)
    assert acc.count == y.size
    ref = reference.value_and_grad(name, y, p, reduction=reduction, **opts)[0]
    tol = 2e-6 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(acc.result(), ref, rtol=tol, atol=1e-12)


def test_not_a_mean_of_batch_scores():
    """Batches with very different foregrounds: the dataset Dice differs from
    the mean of the batches' Dice values, and equals the reference."""
    rng = np.random.default_rng(5)
    y = np.zeros((8, 1024))
    y[:2] = rng.random((2, 1024)) < 0.9  # two batches hold nearly every positive
    p = np.clip(y * 0.8 + 0.1 * rng.random((8, 1024)), 0, 1)
    acc = fl.dice.accumulator()
    batch = []
    for k in range(8):
        acc.update(y[k:k + 1], p[k:k + 1])
        batch.append(fl.dice(y[k:k + 1], p[k:k + 1]))
    ref = reference.value_and_grad("dice", y, p)[0]
    np.testing.assert_allclose(acc.result(), ref, rtol=1e-13)
    assert abs(acc.result() - np.mean(batch)) > 0.1
    _same_bits(acc.result(), fl.dice(y, p))


@pytest.mark.parametrize("name", REGION_LOSSES)
def test_per_class_over_the_batch_axis(name):
    """axis=(0, 2, 3) on (N, C, H, W): one score per class over every batch;
    the batches' class scores are never averaged."""
    rng = np.random.default_rng(7)
    y, p = _masks(rng, (12, 5, 32, 32))
    loss = getattr(fl, name)
    for reduction in ("mean", "sum"):
        acc = loss.accumulator(reduction, axis=(0, 2, 3))
        for k in range(0, 12, 3):
            acc.update(y[k:k + 3], p[k:k + 3])
        _same_bits(acc.result(), loss(y, p, axis=(0, 2, 3), reduction=reduction))
        ref = reference.value_and_grad(name, y, p, axis=(0, 2, 3), reduction=reduction)[0]
        np.testing.assert_allclose(acc.result(), ref, rtol=1e-12)
    # negative axes name the same regions
    acc = loss.accumulator(axis=(-1, -2, 0))
    acc.update(y, p)
    _same_bits(acc.result(), loss(y, p, axis=(0, 2, 3)))


def test_uneven_batches_agree_to_rounding():
    rng = np.random.default_rng(11)
    y, p = _masks(rng, (1000, 37))
    acc = fl.dice.accumulator()
    cuts = [0, 1, 17, 400, 401, 999, 1000]
    for a, b in zip(cuts[:-1], cuts[1:]):
        acc.update(y[a:b], p[a:b])
    np.testing.assert_allclose(acc.result(), fl.dice(y, p), rtol=1e-14)


def test_merge_order_tree_words_pickle_and_threads():
    rng = np.random.default_rng(13)
    y, p = _masks(rng, (32, 3, 1024), np.float32)
    expected = fl.tversky(y, p, axis=(0, 2), alpha=0.3, beta=0.7)
    parts = []
    for k in range(8):
        a = fl.tversky.accumulator(axis=(0, 2), alpha=0.3, beta=0.7)
        a.update(y[4 * k:4 * k + 4], p[4 * k:4 * k + 4])
        parts.append(a)
    for order in ([0, 1, 2, 3, 4, 5, 6, 7], [7, 3, 5, 1, 0, 6, 2, 4]):
        acc = fl.tversky.accumulator(axis=(0, 2), alpha=0.3, beta=0.7)
        acc.merge([parts[i] for i in order])
        _same_bits(acc.result(), expected)
    left = fl.tversky.accumulator(axis=(0, 2), alpha=0.3, beta=0.7)
    left.merge(parts[:3])
    right = fl.tversky.accumulator(axis=(0, 2), alpha=0.3, beta=0.7)
    right.merge(parts[3:])
    right.merge(left)
    _same_bits(right.result(), expected)
    # words: 143 + 3 regions * 3 sums * 71, added as integers
    words = np.sum([a.state() for a in parts], axis=0)
    assert words.shape == (STATE_WORDS + 3 * 3 * 71,)
    back = fl.tversky.accumulator.from_state(words, alpha=0.3, beta=0.7, axis=(0, 2),
                                             dtype="float32")
    _same_bits(back.result(), expected)
    _same_bits(pickle.loads(pickle.dumps(right)).result(), expected)
    # threads: concurrent updates, any thread count inside the kernels
    old = fl.get_num_threads()
    for threads in (1, 2):
        fl.set_num_threads(threads)
        try:
            acc = fl.tversky.accumulator(axis=(0, 2), alpha=0.3, beta=0.7)
            ts = [threading.Thread(target=acc.update, args=(y[4 * k:4 * k + 4], p[4 * k:4 * k + 4]))
                  for k in range(8)]
            for t in ts:
                t.start()
            for t in ts:
                t.join()
            _same_bits(acc.result(), expected)
        finally:
            fl.set_num_threads(old)


def test_large_regions_over_threads_and_chunks():
    """A region of 3e5 elements per class (many 16K-element chunks): the
    one-shot value is the same bits for any thread count and equals the
    accumulator over block-aligned batches; the gradient matches the
    reference."""
    rng = np.random.default_rng(17)
    y, p = _masks(rng, (300, 2, 1024), np.float32)
    values = []
    old = fl.get_num_threads()
    for threads in (1, 2):
        fl.set_num_threads(threads)
        try:
            values.append(fl.dice.value_and_grad(y, p, axis=(0, 2)))
        finally:
            fl.set_num_threads(old)
    _same_bits(values[0][0], values[1][0])
    np.testing.assert_array_equal(values[0][1], values[1][1])
    acc = fl.dice.accumulator(axis=(0, 2))
    for k in range(0, 300, 100):
        acc.update(y[k:k + 100], p[k:k + 100])
    _same_bits(acc.result(), values[0][0])
    ref_v, ref_g = reference.value_and_grad("dice", y, p, axis=(0, 2))
    np.testing.assert_allclose(values[0][0], ref_v, rtol=1e-6)
    np.testing.assert_allclose(values[0][1], ref_g, rtol=1e-4, atol=1e-9)


def test_segments_give_each_slice_its_datasets_score():
    rng = np.random.default_rng(19)
    y, p = _masks(rng, (10, 512))
    ids = np.array([0, 0, 1, 1, 1, 0, 2, 2, 0, 1])
    acc = fl.dice.accumulator(num_segments=4)
    acc.update(y[:5], p[:5], segment_ids=ids[:5])
    acc.update(y[5:], p[5:], segment_ids=ids[5:])
    got = acc.result()
    for s in range(3):
        np.testing.assert_allclose(got[s], fl.dice(y[ids == s], p[ids == s]), rtol=1e-14)
    assert np.isnan(got[3])  # a segment that saw nothing
    empty = fl.dice.accumulator("sum")
    assert empty.result() == 0.0
    empty.update(y[:0], p[:0])  # an empty batch: still nothing seen
    assert empty.result() == 0.0 and np.isnan(fl.dice.accumulator().result())
    words = acc.state()
    assert words.shape == (4, STATE_WORDS + 3 * 71)
    back = fl.dice.accumulator.from_state(words)
    np.testing.assert_array_equal(back.result(), got)


def test_bad_updates_add_nothing():
    rng = np.random.default_rng(23)
    y, p = _masks(rng, (4, 3, 8))
    acc = fl.dice.accumulator(axis=(0, 2))
    acc.update(y, p)
    before = acc.state()
    with pytest.raises(ValueError, match="weights"):
        acc.update(y, p, weights=np.ones(3))
    with pytest.raises(ValueError, match="regions"):
        acc.update(y[:, :2], p[:, :2])  # 2 regions, not 3
    np.testing.assert_array_equal(acc.state(), before)
    other = fl.dice.accumulator(axis=(0, 2))
    other.update(y[:, :2].copy(), p[:, :2].copy())
    with pytest.raises(ValueError, match="regions"):
        acc.merge(other)
    np.testing.assert_array_equal(acc.state(), before)
    with pytest.raises(ValueError, match="state"):
        fl.dice.accumulator.from_state(np.zeros(STATE_WORDS + 5, np.int64))
    with pytest.raises(ValueError, match="state"):
        fl.mse.accumulator.from_state(np.zeros(STATE_WORDS + 71, np.int64))


def test_per_sample_regions_keep_their_scores():
    """axis=(1, 2, 3) keeps axis 0: the regions are the samples, each whole
    in one batch; the state is the mean of their scores, as before."""
    rng = np.random.default_rng(29)
    y, p = _masks(rng, (8, 2, 8, 8))
    acc = fl.dice.accumulator(axis=(1, 2, 3))
    acc.update(y[:4], p[:4], weights=np.arange(1.0, 5.0))
    acc.update(y[4:], p[4:], weights=np.arange(5.0, 9.0))
    assert acc.state().shape == (STATE_WORDS,)
    _same_bits(acc.result(), fl.dice(y, p, axis=(1, 2, 3), weights=np.arange(1.0, 9.0)))


def test_one_shot_matches_reference_with_weights_and_grad():
    """The one-shot call of spanning regions (exact block sums) with weights
    over the kept axes, every reduction, value and gradient."""
    rng = np.random.default_rng(31)
    y, p = _masks(rng, (6, 4, 700))
    w = rng.uniform(0.5, 2.0, 4)
    for reduction in ("mean", "sum", "none"):
        v, g = fl.jaccard.value_and_grad(y, p, axis=(0, 2), weights=w, reduction=reduction)
        rv, rg = reference.value_and_grad("jaccard", y, p, axis=(0, 2), weights=w,
                                              reduction=reduction)
        np.testing.assert_allclose(v, rv, rtol=1e-12)
        np.testing.assert_allclose(g, rg, rtol=1e-10, atol=1e-15)
