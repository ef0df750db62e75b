"""Accumulators: exact, order-free streaming state (fl.NAME.accumulator).

The contract under test: an accumulator fed the batches of an array gives the
one-shot call's value bit for bit when every batch is a whole number of
reduction blocks (1024 elements; rows, regions or boxes for the losses of
those), for any merge order or tree, any thread count and through state words
added as integers; the value agrees with the NumPy float64 reference; and bad
input is an error that adds nothing.
"""

import copy
import pickle
import subprocess
import sys
import threading

import numpy as np
import pytest

import fastloss as fl
from fastloss import reference

B = 1024  # kReductionBlock


def _bits(x):
    return np.float64(x).tobytes()


def _same_bits(a, b):
    assert _bits(a) == _bits(b), (a, b)


# --- data: (positional args, keyword arrays) of n items ----------------------


def _elementwise(name, n, rng, dtype, opts):
    y = rng.normal(size=n)
    p = y + rng.normal(size=n)
    if name in ("binary_cross_entropy", "binary_focal"):
        y = (rng.random(n) < 0.4).astype(np.float64)
    if name == "poisson_nll":
        y = rng.poisson(2.0, n).astype(np.float64)
    return (y.astype(dtype), p.astype(dtype)), {}


def _dense_rows(n, rng, dtype, c=7):
    logits = rng.normal(size=(n, c))
    t = rng.random((n, c))
    t /= t.sum(1, keepdims=True)
    return (t.astype(dtype), logits.astype(dtype)), {}


def _label_rows(n, rng, dtype, c=9):
    logits = rng.normal(size=(n, c))
    lab = rng.integers(0, c, n)
    lab[rng.random(n) < 0.1] = -100
    return (lab, logits.astype(dtype)), {}


# (loss, options, maker(n, rng, dtype), items per block, weights shape(n))
CASES = [
    ("mse", {}, lambda n, r, d: _elementwise("mse", n, r, d, {}), B),
    ("huber", {"delta": 2.0}, lambda n, r, d: _elementwise("huber", n, r, d, {}), B),
    ("log_cosh", {}, lambda n, r, d: _elementwise("log_cosh", n, r, d, {}), B),
    ("binary_cross_entropy", {"from_logits": True},
     lambda n, r, d: _elementwise("binary_cross_entropy", n, r, d, {}), B),
    ("poisson_nll", {}, lambda n, r, d: _elementwise("poisson_nll", n, r, d, {}), B),
    ("categorical_cross_entropy", {"from_logits": True}, lambda n, r, d: _dense_rows(n, r, d), B),
    ("sparse_categorical_cross_entropy", {"from_logits": True, "ignore_index": -100},
     lambda n, r, d: _label_rows(n, r, d), B),
]
CASE_IDS = [c[0] for c in CASES]


def _split(n, rng, block):
    """Random batch boundaries on multiples of `block` (and the end)."""
    blocks = -(-n // block)
    cuts = sorted(set(rng.choice(np.arange(1, blocks), size=min(4, blocks - 1), replace=False)))
    edges = [0] + [int(c) * block for c in cuts] + [n]
    return list(zip(edges[:-1], edges[1:]))


def _take(args, lo, hi):
    return tuple(a[lo:hi] for a in args)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_batches_equal_one_shot_bit_for_bit(case, reduction, weighted, dtype):
    name, opts, make, block = case
    rng = np.random.default_rng(abs(hash((name, reduction, weighted))) % 2**32)
    n = 6 * block + 317
    args, _ = make(n, rng, dtype)
    w = rng.uniform(0.0, 3.0, n).astype(dtype) if weighted else None
    loss = getattr(fl, name)
    expect = loss(*args, reduction=reduction, weights=w, **opts)
    for trial in range(3):
        acc = loss.accumulator(reduction, **opts)
        for lo, hi in _split(n, rng, block):
            acc.update(*_take(args, lo, hi), weights=None if w is None else w[lo:hi])
        _same_bits(acc.result(), expect)
        assert acc.count == n
    # against the float64 reference (the same math, summed by NumPy)
    want, _ = reference.value_and_grad(name, *args, reduction=reduction, weights=w, **opts)
    rtol = 1e-5 if dtype == np.float32 else 1e-11
    np.testing.assert_allclose(acc.result(), want, rtol=rtol)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_merge_order_tree_and_words(case):
    name, opts, make, block = case
    rng = np.random.default_rng(7)
    n = 9 * block
    args, _ = make(n, rng, np.float32)
    loss = getattr(fl, name)
    expect = loss(*args, **opts)
    parts = []
    for k in range(9):
        a = loss.accumulator(**opts)
        a.update(*_take(args, k * block, (k + 1) * block))
        parts.append(a)
    # linear merges in several orders
    for perm in (range(9), reversed(range(9)), rng.permutation(9)):
        acc = loss.accumulator(**opts)
        acc.merge([parts[i] for i in perm])
        _same_bits(acc.result(), expect)
    # a tree of pairwise merges of copies
    level = [p.copy() for p in parts]
    while len(level) > 1:
        nxt = []
        for i in range(0, len(level), 2):
            nxt.append(level[i].merge(level[i + 1:i + 2]))
        level = nxt
    _same_bits(level[0].result(), expect)
    # state words add as integers (in any order) and rebuild the accumulator
    words = np.sum(np.stack([p.state() for p in rng.permutation(parts)]), axis=0)
    assert words.dtype == np.int64 and words.shape == (fl.Accumulator(name).state().shape[0],)
    back = loss.accumulator.from_state(words, dtype="float32", **opts)
    _same_bits(back.result(), expect)
    assert back.count == n
    assert np.array_equal(back.state(), level[0].state())


def test_concurrent_updates_from_threads_same_bits():
    rng = np.random.default_rng(3)
    n = 64 * B
    y = rng.normal(size=n).astype(np.float32)
    p = rng.normal(size=n).astype(np.float32)
    expect = fl.huber(y, p, delta=0.5)
    acc = fl.huber.accumulator(delta=0.5)
    order = rng.permutation(64)

    def work(ks):
        for k in ks:
            acc.update(y[k * B:(k + 1) * B], p[k * B:(k + 1) * B])

    threads = [threading.Thread(target=work, args=(order[i::4],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    _same_bits(acc.result(), expect)


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_one_shot_same_bits_for_any_thread_count(threads):
    rng = np.random.default_rng(11)
    y = rng.normal(size=3_000_000).astype(np.float32)
    p = rng.normal(size=3_000_000).astype(np.float32)
    old = fl.get_num_threads()
    try:
        fl.set_num_threads(1)
        expect = fl.log_cosh(y, p)
        fl.set_num_threads(threads)
        _same_bits(fl.log_cosh(y, p), expect)
        acc = fl.log_cosh.accumulator()
        for lo in range(0, len(y), 40 * B):
            acc.update(y[lo:lo + 40 * B], p[lo:lo + 40 * B])
        _same_bits(acc.result(), expect)
    finally:
        fl.set_num_threads(old)


def test_exact_sum_is_exact_where_float64_is_not():
    # 1e16 + 1 - 1e16 in blocks: a float64 running sum loses the 1
    big = np.zeros(3 * B)
    big[0], big[B], big[2 * B] = 1e8, 1.0, -1e8  # squared: 1e16, 1, 1e16
    zero = np.zeros(3 * B)
    acc = fl.mse.accumulator("sum")
    acc.update(zero[:B], big[:B])
    acc.update(zero[B:2 * B], big[B:2 * B])
    acc2 = fl.mse.accumulator("sum")
    acc2.update(zero[2 * B:], -big[2 * B:] * 0 + 0.0)
    assert acc.result() == 1e16 + 1.0
    # signed cancellation through merges: sum reduction of l = p**2 >= 0
    assert fl.mse(zero, big, reduction="sum") == 2e16 + 1.0


def test_weighted_mean_and_denominator():
    rng = np.random.default_rng(5)
    y = rng.normal(size=(3 * B, 4))
    p = rng.normal(size=(3 * B, 4))
    w = rng.uniform(0.5, 2.0, (3 * B, 1))  # broadcast per sample
    acc = fl.mse.accumulator()
    for k in range(3):
        acc.update(y[k * B:(k + 1) * B], p[k * B:(k + 1) * B], weights=w[k * B:(k + 1) * B])
    _same_bits(acc.result(), fl.mse(y, p, weights=w))
    np.testing.assert_allclose(acc.denominator, 4 * w.sum(), rtol=1e-14)
    np.testing.assert_allclose(acc.numerator, (w * (p - y) ** 2).sum(), rtol=1e-13)
    assert acc.count == y.size


def test_sparse_ce_class_weights_denominator():
    rng = np.random.default_rng(8)
    c = 5
    x = rng.normal(size=(2 * B, c))
    lab = rng.integers(0, c, 2 * B)
    lab[::7] = -1
    cw = rng.uniform(0.2, 2.0, c)
    opts = {"from_logits": True, "ignore_index": -1}
    acc = fl.sparse_categorical_cross_entropy.accumulator(**opts)
    acc.update(lab[:B], x[:B], class_weights=cw)
    acc.update(lab[B:], x[B:], class_weights=cw)
    expect = fl.sparse_categorical_cross_entropy(lab, x, class_weights=cw, **opts)
    _same_bits(acc.result(), expect)
    kept = lab != -1
    np.testing.assert_allclose(acc.denominator, cw[lab[kept]].sum(), rtol=1e-14)


def test_multi_input_and_structured_losses():
    rng = np.random.default_rng(9)
    # margin_ranking (Elements), triplet_margin (rows), dice (regions), pairwise ranking (pairs)
    n = 4 * B
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    t = np.where(rng.random(n) < 0.5, -1.0, 1.0)
    acc = fl.margin_ranking.accumulator(margin=0.2)
    for k in range(4):
        s = slice(k * B, (k + 1) * B)
        acc.update(x1[s], x2[s], t[s])
    _same_bits(acc.result(), fl.margin_ranking(x1, x2, t, margin=0.2))

    a, pos, neg = (rng.normal(size=(2 * B, 6)) for _ in range(3))
    acc = fl.triplet_margin.accumulator()
    acc.update(a[:B], pos[:B], neg[:B])
    acc.update(a[B:], pos[B:], neg[B:])
    _same_bits(acc.result(), fl.triplet_margin(a, pos, neg))

    y = (rng.random((2 * B, 3, 4)) < 0.5).astype(np.float64)
    p = rng.uniform(0.05, 0.95, (2 * B, 3, 4))
    acc = fl.dice.accumulator(axis=(1, 2))
    acc.update(y[:B], p[:B])
    acc.update(y[B:], p[B:])
    _same_bits(acc.result(), fl.dice(y, p, axis=(1, 2)))
    assert acc.count == 2 * B  # regions

    rel = rng.integers(0, 3, 600).astype(np.float64)
    s = rng.normal(size=600)
    g = np.repeat(np.arange(60), 10)
    acc = fl.pairwise_ranking.accumulator("sum")
    acc.update(rel[:300], s[:300], groups=g[:300])
    acc.update(rel[300:], s[300:], groups=g[300:])
    _same_bits(acc.result(), fl.pairwise_ranking(rel, s, groups=g, reduction="sum"))
    acc = fl.pairwise_ranking.accumulator()
    acc.update(rel[:300], s[:300], groups=g[:300])
    acc.update(rel[300:], s[300:], groups=g[300:])
    _same_bits(acc.result(), fl.pairwise_ranking(rel, s, groups=g))


def test_configured_loss_and_options():
    loss = fl.huber.with_options(delta=3.0)
    acc = loss.accumulator()
    assert acc.options == {"delta": 3.0}
    y = np.linspace(-5, 5, B)
    acc.update(y, y * 0.3)
    _same_bits(acc.result(), fl.huber(y, y * 0.3, delta=3.0))
    assert fl.huber.accumulator(delta=3.0).options == {"delta": 3.0}


def test_empty_and_nan():
    acc = fl.mse.accumulator()
    assert np.isnan(acc.result()) and acc.count == 0
    assert fl.mse.accumulator("sum").result() == 0.0
    acc.update(np.zeros(0), np.zeros(0))
    assert np.isnan(acc.result())
    acc.update(np.array([1.0, np.nan]), np.array([0.0, 0.0]))
    assert np.isnan(acc.result())
    inf = fl.mse.accumulator("sum")
    inf.update(np.array([0.0]), np.array([1e300]))
    assert inf.result() == np.inf
    nan = fl.mse.accumulator("sum")
    nan.update(np.array([0.0]), np.array([np.nan]))
    merged = inf.copy().merge(nan)
    assert np.isnan(merged.result())
    back = fl.mse.accumulator.from_state(merged.state(), "sum")
    assert np.isnan(back.result())


def test_pickle_copy_repr():
    acc = fl.huber.accumulator("sum", delta=0.5)
    acc.update(np.arange(10.0), np.zeros(10))
    for other in (pickle.loads(pickle.dumps(acc)), copy.copy(acc), copy.deepcopy(acc)):
        assert other is not acc
        assert other.options == {"delta": 0.5} and other.reduction == "sum"
        _same_bits(other.result(), acc.result())
        assert np.array_equal(other.state(), acc.state())
    assert "huber" in repr(acc) and "count=10" in repr(acc)
    acc.reset()
    assert acc.count == 0 and acc.result() == 0.0


def test_errors_name_the_argument_and_add_nothing():
    acc = fl.mse.accumulator()
    y = np.zeros(8)
    acc.update(y, y + 1.0)
    before = acc.state()
    with pytest.raises(ValueError, match="y_true"):
        acc.update(np.zeros(7), y)
    with pytest.raises(TypeError, match="reduction"):
        acc.update(y, y, reduction="sum")
    with pytest.raises(TypeError, match="out"):
        acc.update(y, y, out=np.empty(8))
    assert np.array_equal(acc.state(), before)
    with pytest.raises(ValueError, match="reduction"):
        fl.mse.accumulator("none")
    with pytest.raises(ValueError, match="delta"):
        fl.huber.accumulator(delta=-1.0)
    with pytest.raises(TypeError, match="unexpected keyword argument 'bogus'"):
        fl.huber.accumulator(bogus=1)
    with pytest.raises(TypeError, match="delta"):
        fl.huber.accumulator(delta=1.0).update(y, y, delta=2.0)
    with pytest.raises(ValueError, match="merge"):
        fl.huber.accumulator(delta=1.0).merge(fl.huber.accumulator(delta=2.0))
    with pytest.raises(ValueError, match="merge"):
        fl.huber.accumulator().merge(fl.mse.accumulator())
    with pytest.raises(ValueError, match="itself"):
        acc.merge(acc)
    with pytest.raises(TypeError, match="Accumulator"):
        acc.merge([1])
    with pytest.raises(ValueError, match="state"):
        fl.mse.accumulator.from_state(np.zeros(5, np.int64))
    bad = acc.state()
    bad[3] = -5  # a limb below 0: no sum of states
    with pytest.raises(ValueError, match="state"):
        fl.mse.accumulator.from_state(bad)
    with pytest.raises(TypeError, match="integers"):
        fl.mse.accumulator.from_state(acc.state().astype(np.float64))
    with pytest.raises(TypeError, match="accumulator"):
        fl.gan_discriminator.accumulator().update(np.zeros(3), np.zeros(3))
    with pytest.raises(ValueError, match="unknown loss"):
        fl.Accumulator("no_such_loss")
    # a bad label in a later batch: nothing of that batch is added
    sce = fl.sparse_categorical_cross_entropy.accumulator(from_logits=True)
    sce.update(np.array([0, 1]), np.zeros((2, 3)))
    words = sce.state()
    with pytest.raises(ValueError, match="label"):
        sce.update(np.array([0, 5]), np.zeros((2, 3)))
    assert np.array_equal(sce.state(), words)


def test_fuzz_updates_never_crash():
    """Random bad arguments to update: errors only, in a subprocess that
    would report a crash."""
    code = r"""
import numpy as np, fastloss as fl
rng = np.random.default_rng(0)
vals = [None, 1, 1.5, "x", np.zeros(0), np.zeros(3), np.zeros((3, 2)), np.zeros(4, np.int64),
        np.zeros(3, np.float16), np.zeros((2, 0)), np.arange(6.0)[::2], object()]
n = 0
for name in ["mse", "huber", "sparse_categorical_cross_entropy", "dice", "triplet_margin",
             "margin_ranking", "box_iou", "pairwise_ranking"]:
    loss = getattr(fl, name)
    acc = loss.accumulator()
    for _ in range(300):
        k = int(rng.integers(0, 4))
        args = [vals[int(rng.integers(len(vals)))] for _ in range(k)]
        kw = {}
        if rng.random() < 0.3:
            kw["weights"] = vals[int(rng.integers(len(vals)))]
        try:
            acc.update(*args, **kw)
        except (ValueError, TypeError):
            n += 1
print("ok", n)
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.startswith("ok")


def test_merge_compares_options_with_defaults_filled_in():
    y = np.linspace(-2, 2, 16)
    a = fl.huber.accumulator(delta=1.0)
    b = fl.huber.accumulator()  # delta's default is 1.0
    a.update(y, y * 0.5)
    b.update(y, y * 0.25)
    a.merge(b)
    assert a.count == 32
    pw = np.array([2.0, 3.0])
    y2 = np.array([[0.0, 1.0]] * 4)
    c = fl.bce.accumulator(pos_weight=pw, from_logits=True)
    d = fl.bce.accumulator(pos_weight=pw.copy(), from_logits=True)
    c.update(y2, y2 * 0.3)
    d.update(y2, y2 * 0.1)
    c.merge(d)
    np.testing.assert_allclose(  # batches of 8 elements: not whole blocks, so close, not bits
        c.result(), fl.bce(np.vstack([y2, y2]), np.vstack([y2 * 0.3, y2 * 0.1]),
                           pos_weight=pw, from_logits=True), rtol=1e-15)
    with pytest.raises(ValueError, match="merge"):
        c.merge(fl.bce.accumulator(pos_weight=pw * 2, from_logits=True))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_per_segment_accumulator_equals_one_shot_per_segment(dtype):
    """num_segments=S: one exact state per segment; batches of whole blocks of
    each segment's items give each segment's one-shot value bit for bit."""
    rng = np.random.default_rng(21)
    S, per = 5, 3 * B
    ids = np.repeat(np.arange(S), per)  # sorted within each batch below
    y = rng.normal(size=S * per).astype(dtype)
    p = rng.normal(size=S * per).astype(dtype)
    w = rng.uniform(0.5, 2.0, S * per).astype(dtype)
    acc = fl.huber.accumulator(num_segments=S, delta=0.5)
    # batch k holds block k of every segment (ids sorted inside the batch)
    for k in range(3):
        idx = np.concatenate([np.arange(s * per + k * B, s * per + (k + 1) * B) for s in range(S)])
        acc.update(y[idx], p[idx], weights=w[idx], segment_ids=ids[idx])
    res = acc.result()
    assert res.shape == (S,) and res.dtype == dtype
    for s in range(S):
        sl = slice(s * per, (s + 1) * per)
        assert _bits(res[s]) == _bits(fl.huber(y[sl], p[sl], weights=w[sl], delta=0.5))
    assert acc.count == S * per and list(acc.counts) == [per] * S and acc.num_segments == S
    words = acc.state()
    assert words.shape == (S, fl._accumulate.STATE_WORDS)
    back = fl.huber.accumulator.from_state(words, dtype=acc.dtype, delta=0.5)
    assert back.num_segments == S
    assert _bits(back.result()) == _bits(res)
    # offsets= updates, merges, pickling
    other = fl.huber.accumulator(num_segments=S, delta=0.5)
    other.update(y[:per], p[:per], offsets=np.array([0, per, per, per, per, per]))
    merged = back.copy().merge(other)
    assert merged.counts[0] == 2 * per
    assert _bits(pickle.loads(pickle.dumps(merged)).result()) == _bits(merged.result())


def test_per_segment_accumulator_errors():
    y = np.zeros(4)
    acc = fl.mse.accumulator(num_segments=3)
    with pytest.raises(TypeError, match="segment_ids"):
        acc.update(y, y)
    with pytest.raises(TypeError, match="num_segments"):
        acc.update(y, y, segment_ids=np.zeros(4, np.int64), num_segments=3)
    with pytest.raises(ValueError, match="offsets"):
        acc.update(y, y, offsets=np.array([0, 4]))
    with pytest.raises(ValueError, match="segment_ids"):
        acc.update(y, y, segment_ids=np.array([0, 1, 3, 3]))
    with pytest.raises(TypeError, match="num_segments"):
        fl.mse.accumulator().update(y, y, segment_ids=np.zeros(4, np.int64))
    with pytest.raises(ValueError, match="merge"):
        acc.merge(fl.mse.accumulator(num_segments=4))
    with pytest.raises(ValueError, match="num_segments"):
        fl.mse.accumulator(num_segments=-2)
    with pytest.raises(TypeError, match="num_segments"):
        fl.mse.accumulator(num_segments=2.5)
    with pytest.raises(TypeError, match="num_segments"):
        fl.pairwise_ranking.accumulator(num_segments=2)  # a sum over pairs: no segments
    assert fl.triplet_margin.accumulator(num_segments=2).num_segments == 2  # rows: segments
    assert acc.count == 0


def test_combined_accumulator_equals_fused_call():
    rng = np.random.default_rng(31)
    n = 6 * B
    y = rng.normal(size=n).astype(np.float32)
    p = rng.normal(size=n).astype(np.float32)
    w = rng.uniform(0.5, 2.0, n).astype(np.float32)
    loss = 0.5 * fl.mse + 0.3 * fl.mae + 0.2 * fl.huber.with_options(delta=2.0)
    acc = loss.accumulator()
    for k in range(3):
        s = slice(2 * k * B, 2 * (k + 1) * B)
        acc.update(y[s], p[s], weights=w[s])
    _same_bits(acc.result(), loss(y, p, weights=w))
    back = loss.accumulator.from_state(acc.state(), dtype="float32")
    _same_bits(back.result(), acc.result())
    _same_bits(pickle.loads(pickle.dumps(acc)).result(), acc.result())
    with pytest.raises(ValueError, match="merge"):
        acc.merge((0.5 * fl.mse + 0.5 * fl.mae).accumulator())
    with pytest.raises(TypeError, match="does not fuse"):
        (fl.mse + fl.categorical_cross_entropy).accumulator
    with pytest.raises(TypeError, match="positional"):
        acc.update(y)


def test_segment_numerators_and_denominators():
    """Per segment: the exact sums, rounded once (float64); None without
    segments. The denominator is sum(w), or the kept rows' weighted count."""
    rng = np.random.default_rng(11)
    n, S = 5000, 6
    y, p, w = rng.standard_normal(n), rng.standard_normal(n), rng.random(n)
    ids = np.sort(rng.integers(0, S - 1, n))  # the last segment stays empty
    acc = fl.huber.accumulator(num_segments=S, delta=0.5)
    acc.update(y, p, weights=w, segment_ids=ids)
    from fastloss.reference.regression import huber

    ref = huber(y, p, delta=0.5)[0] * w
    want_num = np.array([ref[ids == s].sum() for s in range(S)])
    want_den = np.array([w[ids == s].sum() for s in range(S)])
    assert acc.numerators.dtype == np.float64 and acc.numerators.shape == (S,)
    np.testing.assert_allclose(acc.numerators, want_num, rtol=1e-13)
    np.testing.assert_allclose(acc.denominators, want_den, rtol=1e-13)
    assert acc.denominators[-1] == 0.0 and acc.numerators[-1] == 0.0
    with np.errstate(invalid="ignore"):  # the empty segment: 0 / 0, NaN
        np.testing.assert_array_equal(acc.result(), acc.numerators / acc.denominators)
    assert acc.numerator == pytest.approx(want_num.sum(), rel=1e-13)
    labels = rng.integers(-1, 4, 300)
    rows = fl.sparse_categorical_cross_entropy.accumulator(num_segments=2, ignore_index=-1)
    rows.update(labels, rng.standard_normal((300, 4)), offsets=[0, 100, 300])
    np.testing.assert_array_equal(rows.denominators,
                                  [(labels[:100] >= 0).sum(), (labels[100:] >= 0).sum()])
    plain = fl.huber.accumulator()
    plain.update(y, p)
    assert plain.numerators is None and plain.denominators is None
