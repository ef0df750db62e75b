"""Per-segment losses in one call: offsets= and segment_ids= / num_segments=.

Each segment's value is the loss's own call on that segment's items
(elements for elementwise losses, rows for the others), bit for bit; the
gradient is that of the sum of the segment values; empty segments give 0
("sum") or NaN ("mean"); bad offsets and ids are ValueErrors naming the
argument and write nothing.
"""

import subprocess
import sys

import numpy as np
import pytest

import fastloss as fl
from checks import FUZZ_SEGMENT_KEYWORDS
from fastloss import reference


def _bits(a):
    return np.asarray(a, dtype=np.float64).tobytes()


def _offsets(rng, n, s, empty=True):
    cuts = np.sort(rng.integers(0, n + 1, s - 1))
    if empty and s > 3:
        cuts[1] = cuts[0]  # an empty segment
    return np.concatenate([[0], cuts, [n]]).astype(np.int64)


ELEMENTWISE = [("mse", {}), ("huber", {"delta": 0.7}), ("log_cosh", {}),
               ("binary_cross_entropy", {"from_logits": True}), ("quantile", {"q": 0.2})]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("name,opts", ELEMENTWISE, ids=[c[0] for c in ELEMENTWISE])
def test_elementwise_segments_equal_per_segment_calls(name, opts, reduction, dtype):
    rng = np.random.default_rng(1)
    n, s = 5000, 37
    y = rng.normal(size=n)
    if name == "binary_cross_entropy":
        y = (rng.random(n) < 0.5).astype(np.float64)
    y = y.astype(dtype)
    p = rng.normal(size=n).astype(dtype)
    w = rng.uniform(0.1, 2.0, n).astype(dtype)
    off = _offsets(rng, n, s)
    loss = getattr(fl, name)
    for weights in (None, w):
        v, g = loss.value_and_grad(y, p, offsets=off, reduction=reduction, weights=weights, **opts)
        assert v.shape == (s,) and v.dtype == dtype and g.shape == p.shape and g.dtype == dtype
        expect_g = np.zeros_like(p)
        for k in range(s):
            sl = slice(off[k], off[k + 1])
            wk = None if weights is None else weights[sl]
            ek, gk = loss.value_and_grad(y[sl], p[sl], reduction=reduction, weights=wk, **opts)
            assert _bits(v[k]) == _bits(ek), (k, v[k], ek)
            expect_g[sl] = gk
        np.testing.assert_array_equal(g, expect_g)
        # value-only and grad-only entry points agree
        assert _bits(loss(y, p, offsets=off, reduction=reduction, weights=weights, **opts)) == _bits(v)
        np.testing.assert_array_equal(
            loss.grad(y, p, offsets=off, reduction=reduction, weights=weights, **opts), g)
        # against the float64 reference, segment by segment
        for k in range(s):
            sl = slice(off[k], off[k + 1])
            if off[k] == off[k + 1]:
                assert (np.isnan(v[k]) if reduction == "mean" else v[k] == 0)
                continue
            ref, _ = reference.value_and_grad(name, y[sl], p[sl], reduction=reduction,
                                              weights=None if weights is None else weights[sl],
                                              **opts)
            np.testing.assert_allclose(v[k], ref, rtol=2e-5 if dtype == np.float32 else 1e-11,
                                       atol=1e-30)


def test_gradient_is_that_of_the_sum_of_segment_values():
    rng = np.random.default_rng(2)
    y, p = rng.normal(size=300), rng.normal(size=300)
    off = np.array([0, 10, 10, 150, 300])
    g = fl.huber.grad(y, p, offsets=off, delta=0.5)
    eps = 1e-6
    for i in rng.choice(300, 12, replace=False):
        d = np.zeros(300)
        d[i] = eps
        # the empty segment's NaN mean has no gradient: sum the others
        fd = (np.nansum(fl.huber(y, p + d, offsets=off, delta=0.5))
              - np.nansum(fl.huber(y, p - d, offsets=off, delta=0.5))) / (2 * eps)
        np.testing.assert_allclose(g[i], fd, rtol=1e-5, atol=1e-9)


def test_segment_ids_equal_offsets_and_empty_segments():
    rng = np.random.default_rng(3)
    n = 2000
    ids = np.sort(rng.integers(0, 50, n))
    ids[ids == 7] = 8  # segment 7 empty
    y, p = rng.normal(size=n), rng.normal(size=n)
    off = np.searchsorted(ids, np.arange(51)).astype(np.int64)
    a = fl.mse(y, p, segment_ids=ids, num_segments=50)
    b = fl.mse(y, p, offsets=off)
    assert _bits(a) == _bits(b)
    assert np.isnan(a[7])
    s = fl.mse(y, p, segment_ids=ids, num_segments=52, reduction="sum")
    assert s.shape == (52,) and s[7] == 0 and s[50] == 0 and s[51] == 0
    # numpy formulation of the sums
    np.testing.assert_allclose(s[:50], np.bincount(ids, (p - y) ** 2, minlength=50), rtol=1e-12)


UNSORTED_CASES = ["mse", "huber_weighted", "bce_pos_weight", "sparse_ce", "cce", "dice", "box_iou"]


def _unsorted_case(name, rng, n):
    """(loss, y_true, y_pred, kwargs) of n items for the unsorted-ids tests."""
    if name == "mse":
        return fl.mse, rng.normal(size=(n, 3)), rng.normal(size=(n, 3)), {}
    if name == "huber_weighted":
        return (fl.huber, rng.normal(size=(n, 3)).astype(np.float32),
                rng.normal(size=(n, 3)).astype(np.float32),
                dict(delta=0.5, weights=rng.uniform(0.5, 2, (1, 3)).astype(np.float32)))
    if name == "bce_pos_weight":
        return (fl.bce, (rng.random((n, 2)) < 0.5).astype(np.float64), rng.normal(size=(n, 2)),
                dict(from_logits=True, pos_weight=np.array([0.5, 3.0])))
    if name == "sparse_ce":
        lab = rng.integers(0, 4, n)
        lab[::5] = -100
        return (fl.sparse_categorical_cross_entropy, lab, rng.normal(size=(n, 4)).astype(np.float32),
                dict(from_logits=True, ignore_index=-100, weights=rng.uniform(0.5, 2, n).astype(np.float32),
                     class_weights=np.array([1, 2, 0.5, 1], np.float32)))
    if name == "cce":
        return (fl.cce, rng.dirichlet(np.ones(5), n), rng.normal(size=(n, 5)), dict(from_logits=True))
    if name == "dice":
        return fl.dice, rng.uniform(0, 1, (n, 6)), rng.uniform(0, 1, (n, 6)), dict(axis=1)
    lo = rng.uniform(0, 1, (n, 2))
    b = np.concatenate([lo, lo + rng.uniform(0.2, 1, (n, 2))], 1)
    return fl.box_iou, b, b + rng.uniform(-0.1, 0.1, b.shape), {}


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("name", UNSORTED_CASES)
def test_unsorted_segment_ids_are_each_segments_own_call(name, reduction):
    # ids in any order: segment s's value is the loss's own call on the items
    # with id s, in their order (bit for bit), and the gradient lands at the
    # items' places, in out= too.
    rng = np.random.default_rng(11)
    n, S = 300, 9
    loss, y, p, kw = _unsorted_case(name, rng, n)
    ids = rng.integers(0, S - 1, n)  # segment S - 1 empty
    elementwise = loss.name in ("mse", "huber", "binary_cross_entropy")
    if elementwise:
        ids = rng.integers(0, S - 1, p.size)
    out = np.full_like(p, 7.0)
    v, g = loss.value_and_grad(y, p, segment_ids=ids, num_segments=S, reduction=reduction,
                               out=out, **kw)
    assert g is out and v.shape == (S,) and v.dtype == p.dtype
    assert _bits(loss(y, p, segment_ids=ids, num_segments=S, reduction=reduction, **kw)) == _bits(v)
    expect_g = np.zeros_like(p)
    for s in range(S):
        sel = ids == s
        kws = dict(kw)
        if elementwise:
            yy, pp = y.reshape(-1)[sel], p.reshape(-1)[sel]
            for key in ("weights", "pos_weight"):
                if key in kws:
                    kws[key] = np.broadcast_to(kws[key], p.shape).reshape(-1)[sel]
        else:
            yy, pp = y[sel], p[sel]
            if "weights" in kws:
                kws["weights"] = kws["weights"][sel]
        e, ge = loss.value_and_grad(yy, pp, reduction=reduction, **kws)
        assert _bits(v[s]) == _bits(e), (s, v[s], e)
        if elementwise:
            expect_g.reshape(-1)[sel] = ge
        else:
            expect_g[sel] = ge
    np.testing.assert_array_equal(g, expect_g)
    if reduction == "sum":
        assert v[S - 1] == 0
    else:
        assert np.isnan(v[S - 1])


def test_unsorted_segment_ids_in_accumulators_and_errors():
    rng = np.random.default_rng(12)
    y, p = rng.normal(size=5000), rng.normal(size=5000)
    ids = rng.integers(0, 7, 5000)
    acc = fl.mse.accumulator(num_segments=7)
    acc.update(y[:2048], p[:2048], segment_ids=ids[:2048])
    acc.update(y[2048:], p[2048:], segment_ids=ids[2048:])
    one = fl.mse(y, p, segment_ids=ids, num_segments=7)
    np.testing.assert_allclose(acc.result(), one, rtol=1e-15)
    for s in range(7):
        np.testing.assert_allclose(one[s], fl.mse(y[ids == s], p[ids == s]), rtol=1e-15)
    out = np.full(5000, 7.0)
    bad = ids.copy()
    bad[3] = 9  # out of range: nothing is written
    with pytest.raises(ValueError, match="segment_ids"):
        fl.mse.grad(y, p, segment_ids=bad, num_segments=7, out=out)
    with pytest.raises(ValueError, match="segment_ids"):
        fl.mse.grad(y, p, segment_ids=ids[:-1], num_segments=7, out=out)
    with pytest.raises(ValueError, match="none"):
        fl.mse(y, p, segment_ids=ids, num_segments=7, reduction="none")
    assert (out == 7.0).all()
    # fused combinations still take sorted ids only, and say so
    with pytest.raises(ValueError, match="sorted"):
        (fl.mse + fl.mae)(y, p, segment_ids=ids, num_segments=7)


def test_rows_segments_sparse_ce_with_ignore_and_class_weights():
    rng = np.random.default_rng(4)
    n, c = 700, 6
    x = rng.normal(size=(n, c)).astype(np.float32)
    lab = rng.integers(0, c, n)
    lab[::9] = -100
    cw = rng.uniform(0.5, 2.0, c).astype(np.float32)
    w = rng.uniform(0.5, 1.5, n).astype(np.float32)
    off = _offsets(rng, n, 20)
    opts = dict(from_logits=True, ignore_index=-100)
    v, g = fl.sparse_categorical_cross_entropy.value_and_grad(
        lab, x, offsets=off, class_weights=cw, weights=w, **opts)
    for k in range(20):
        sl = slice(off[k], off[k + 1])
        e, ge = fl.sparse_categorical_cross_entropy.value_and_grad(
            lab[sl], x[sl], class_weights=cw, weights=w[sl], **opts)
        assert _bits(v[k]) == _bits(e)
        np.testing.assert_array_equal(g[sl], ge)


def test_dense_rows_and_regions_segment_rows():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(300, 4))
    t = rng.dirichlet(np.ones(4), 300)
    off = np.array([0, 100, 250, 300])
    v = fl.categorical_cross_entropy(t, x, offsets=off, from_logits=True)
    for k in range(3):
        sl = slice(off[k], off[k + 1])
        assert _bits(v[k]) == _bits(fl.categorical_cross_entropy(t[sl], x[sl], from_logits=True))
    y = (rng.random((40, 5, 5)) < 0.5).astype(np.float64)
    p = rng.uniform(0.05, 0.95, (40, 5, 5))
    off = np.array([0, 13, 40])
    v = fl.dice(y, p, offsets=off, axis=(1, 2))
    assert _bits(v[1]) == _bits(fl.dice(y[13:], p[13:], axis=(1, 2)))


def test_multidimensional_elementwise_segments_flat_order():
    rng = np.random.default_rng(6)
    y, p = rng.normal(size=(30, 7)), rng.normal(size=(30, 7))
    off = np.array([0, 50, 51, 210])
    v = fl.mae(y, p, offsets=off)
    assert _bits(v[0]) == _bits(fl.mae(y.ravel()[:50], p.ravel()[:50]))
    with pytest.raises(ValueError, match="C-contiguous"):
        fl.mae(y.T, p.T, offsets=off)


def test_bad_segments_name_the_argument_and_write_nothing():
    y, p = np.zeros(10), np.ones(10)
    out = np.full(10, 7.0)
    cases = [
        (dict(offsets=np.array([0, 5, 3, 10])), ValueError, "non-decreasing"),
        (dict(offsets=np.array([0, 5, 11])), ValueError, "offsets"),
        (dict(offsets=np.array([1, 10])), ValueError, "offsets"),
        (dict(offsets=np.array([[0, 10]])), ValueError, "offsets"),
        (dict(offsets=np.array([0.0, 10.0])), TypeError, "offsets"),
        (dict(segment_ids=np.array([0] * 5 + [1] * 4), num_segments=2), ValueError, "segment_ids"),
        (dict(segment_ids=np.array([1] * 5 + [0] * 4 + [2]), num_segments=2), ValueError,
         "segment_ids"),
        (dict(segment_ids=np.array([0] * 9 + [3]), num_segments=3), ValueError, "segment_ids"),
        (dict(segment_ids=np.array([0] * 9 + [-1]), num_segments=3), ValueError, "segment_ids"),
        (dict(segment_ids=np.zeros(10, np.int64)), TypeError, "num_segments"),
        (dict(segment_ids=np.zeros(10, np.int64), num_segments=-1), ValueError, "num_segments"),
        (dict(offsets=np.array([0, 10]), segment_ids=np.zeros(10, np.int64), num_segments=1),
         TypeError, "not both"),
        (dict(offsets=np.array([0, 10]), reduction="none"), ValueError, "none"),
        (dict(offsets=np.array([0, 10]), weights=np.ones(3)), ValueError, "weights"),
    ]
    for kw, exc, msg in cases:
        with pytest.raises(exc, match=msg):
            fl.mse.value_and_grad(y, p, out=out, **kw)
        assert (out == 7.0).all(), kw


def test_fuzz_segment_arguments_never_crash_or_write_on_error():
    """Random offsets / segment_ids / num_segments (wrong values, dtypes,
    shapes, huge numbers), in a subprocess that would report a crash; an
    error leaves out= as it was."""
    code = FUZZ_SEGMENT_KEYWORDS + r"""
import numpy as np, fastloss as fl
rng = np.random.default_rng(0)
bad = 0
for trial in range(3000):
    name = ["mse", "huber", "sparse_categorical_cross_entropy", "dice", "box_iou"][trial % 5]
    n = int(rng.integers(0, 40))
    if name == "sparse_categorical_cross_entropy":
        y, p = rng.integers(0, 3, n), rng.normal(size=(n, 3))
    elif name == "box_iou":
        lo = rng.uniform(0, 1, (n, 2)); y = np.concatenate([lo, lo + 1], 1); p = y + 0.1
    elif name == "dice":
        y, p = rng.uniform(0, 1, (n, 4)), rng.uniform(0, 1, (n, 4))
    else:
        y, p = rng.normal(size=n), rng.normal(size=n)
    kw = fuzz_segment_keywords(rng, n)
    out = np.full(p.shape, 7.0)
    try:
        getattr(fl, name).value_and_grad(y, p, out=out, **kw)
    except (ValueError, TypeError, OverflowError):
        bad += 1
        assert (out == 7.0).all(), (name, kw)
print("ok", bad)
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.startswith("ok")


def test_combined_losses_take_segments():
    rng = np.random.default_rng(8)
    y, p = rng.normal(size=3000).astype(np.float32), rng.normal(size=3000).astype(np.float32)
    off = np.array([0, 700, 700, 2048, 3000])
    fused = 0.5 * fl.mse + 0.5 * fl.huber.with_options(delta=0.5)
    v, g = fused.value_and_grad(y, p, offsets=off)
    assert v.shape == (4,) and v.dtype == np.float32 and np.isnan(v[1])
    for k in (0, 2, 3):
        sl = slice(off[k], off[k + 1])
        ek, gk = fused.value_and_grad(y[sl], p[sl])
        assert _bits(v[k]) == _bits(ek)
        np.testing.assert_array_equal(g[sl], gk)
    ids = np.repeat(np.arange(4), np.diff(off))
    assert _bits(fused(y, p, segment_ids=ids, num_segments=4)) == _bits(v)
    # a combination with a row-wise term: elements and rows disagree
    mixed = fl.categorical_cross_entropy.with_options(from_logits=True) + 0.1 * fl.mse
    with pytest.raises(TypeError, match="fuse"):
        mixed(rng.dirichlet(np.ones(5), 30), rng.normal(size=(30, 5)), offsets=np.array([0, 30]))


@pytest.mark.parametrize("g", [3, 700, 50_000])  # 50_000: staged out every 16 KiB
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_large_segmented_gradients_stream_the_same_values(g, dtype):
    """Gradients too large for the cache are streamed out (non-temporal
    stores, staged where segment starts are not 64-byte aligned): the values
    are each segment's own call's, the bytes around the output untouched."""
    rng = np.random.default_rng(41)
    n = (9 << 20) // np.dtype(dtype).itemsize + 37  # > 8 MiB of gradient
    y = rng.normal(size=n).astype(dtype)
    p = (y + rng.normal(size=n)).astype(dtype)
    w = rng.uniform(0.5, 2.0, n).astype(dtype)
    cuts = np.sort(rng.choice(np.arange(1, n), g - 1, replace=False))
    off = np.concatenate([[0], cuts, [n]]).astype(np.int64)
    buf = np.full(n + 2, 7.0, dtype)
    out = buf[1:-1]  # 1 element in: not aligned for the kernels' streaming
    v, grad = fl.huber.value_and_grad(y, p, weights=w, offsets=off, out=out, delta=0.5)
    assert grad is out and buf[0] == 7.0 and buf[-1] == 7.0
    for s in range(g):
        a, b = off[s], off[s + 1]
        vs, gs = fl.huber.value_and_grad(y[a:b], p[a:b], weights=w[a:b], delta=0.5)
        assert np.float64(v[s]).tobytes() == np.float64(vs).tobytes()
        np.testing.assert_array_equal(grad[a:b], gs)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_large_misaligned_output_streams_the_same_values(dtype):
    rng = np.random.default_rng(43)
    n = (9 << 20) // np.dtype(dtype).itemsize + 5
    y = rng.normal(size=n).astype(dtype)
    p = (y + rng.normal(size=n)).astype(dtype)
    v, g = fl.log_cosh.value_and_grad(y, p)
    for shift in (1, 3):
        buf = np.full(n + shift + 1, 5.0, dtype)
        out = buf[shift:shift + n]
        v2, g2 = fl.log_cosh.value_and_grad(y, p, out=out)
        assert np.float64(v2).tobytes() == np.float64(v).tobytes()
        np.testing.assert_array_equal(g2, g)
        assert np.all(buf[:shift] == 5.0) and buf[-1] == 5.0
    # in place over a misaligned y_pred
    q = np.empty(n + 1, dtype)[1:]
    q[:] = p
    v3, g3 = fl.log_cosh.value_and_grad(y, q, out=q)
    assert np.float64(v3).tobytes() == np.float64(v).tobytes()
    np.testing.assert_array_equal(g3, g)
