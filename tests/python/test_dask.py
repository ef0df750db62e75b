"""Losses of Dask arrays (fastloss.dask): lazy graphs whose values are the
same bits on the synchronous, threaded and distributed schedulers and, for
chunks on 1024-item block boundaries, the same bits as the NumPy call."""

import threading

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")
import dask.callbacks  # noqa: E402
distributed = pytest.importorskip("distributed")

import fastloss as fl  # noqa: E402
import fastloss.dask as fd  # noqa: E402
from dask_checks import bits, local_client, on_all  # noqa: E402

N = 100_000
DTYPES = [np.float32, np.float64]


@pytest.fixture(scope="module")
def client():
    with local_client() as c:
        yield c


def assert_same_bits(results, expected):
    for got in results:
        assert type(got) is type(expected), (type(got), type(expected))
        assert bits(got) == bits(expected), (got, expected)


def data(name, n, dtype, seed=0):
    rng = np.random.default_rng(seed)
    p = rng.standard_normal(n).astype(dtype)
    if name == "bce":
        y = rng.integers(0, 2, n).astype(dtype)
    else:
        y = (rng.standard_normal(n) * 2).astype(dtype)
    return y, p


CASES = [("mse", {}), ("huber", {"delta": 2.0}), ("bce", {"from_logits": True})]


# ---------------------------------------------------------------------------
# Values: the same bits everywhere


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("name,opts", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_value_bits_1d(client, name, opts, dtype, weighted):
    y, p = data(name, N, dtype)
    w = np.random.default_rng(1).random(N).astype(dtype) if weighted else None
    loss = getattr(fl, name)
    Y = da.from_array(y, chunks=8192)
    P = da.from_array(p, chunks=4096)
    W = None if w is None else da.from_array(w, chunks=16384)
    values = [loss(Y, P, reduction=r, weights=W, **opts) for r in ("mean", "sum")]
    for v in values:
        assert isinstance(v, da.Array) and v.shape == () and v.dtype == dtype
    results = on_all(client, *values)
    for i, reduction in enumerate(("mean", "sum")):
        expected = loss(y, p, reduction=reduction, weights=w, **opts)
        assert_same_bits([r[i] for r in results], expected)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_value_bits_2d_broadcast_weights(client, dtype):
    """(12500, 8) in row chunks of 512 rows (4096 elements); weights (N, 1),
    per sample, a Dask array of other chunks and a NumPy array."""
    rng = np.random.default_rng(2)
    y = rng.standard_normal((12500, 8)).astype(dtype)
    p = rng.standard_normal((12500, 8)).astype(dtype)
    w = rng.random((12500, 1)).astype(dtype)
    P = da.from_array(p, chunks=(512, 8))
    Y = da.from_array(y, chunks=(1000, 4))
    cases = [(W, r) for W in (da.from_array(w, chunks=(3000, 1)), w) for r in ("mean", "sum")]
    results = on_all(client, *(fl.huber(Y, P, reduction=r, weights=W, delta=2.0)
                               for W, r in cases))
    for i, (_, reduction) in enumerate(cases):
        expected = fl.huber(y, p, reduction=reduction, weights=w, delta=2.0)
        assert_same_bits([r[i] for r in results], expected)


@pytest.mark.parametrize("split_every", [2, 3, 16])
def test_split_every(client, split_every):
    """Any tree: the dask config's split_every and _run's own give the same
    bits, with different graphs."""
    y, p = data("mse", N, np.float64)
    Y, P = da.from_array(y, chunks=4096), da.from_array(p, chunks=4096)
    expected = fl.mse(y, p)
    with dask.config.set(split_every=split_every):
        v = fl.mse(Y, P)
    v2 = fd._run("mse", 0, Y, P, "mean", None, {}, split_every=split_every)
    assert_same_bits([r[0] for r in on_all(client, v)] + [v2.compute()], expected)
    graphs = {len(fd._run("mse", 0, Y, P, "mean", None, {}, split_every=s).__dask_graph__())
              for s in (2, 16)}
    assert len(graphs) == 2


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_value_bits_rowwise(client, dtype):
    """Row-wise losses: rows in chunks of 2048 (the class axis, split in the
    input, is made one chunk); integer labels and dense targets."""
    rng = np.random.default_rng(3)
    n, c = 10_000, 8
    logits = rng.standard_normal((n, c)).astype(dtype)
    labels = rng.integers(0, c, n)
    probs = rng.dirichlet(np.ones(c), n).astype(dtype)
    w = rng.random(n).astype(dtype)
    L = da.from_array(logits, chunks=(2048, 3))
    Lab = da.from_array(labels, chunks=4096)
    for reduction in ("mean", "sum"):
        for weights in (None, da.from_array(w, chunks=1024)):
            wn = None if weights is None else w
            v1 = fl.sparse_categorical_cross_entropy(Lab, L, reduction=reduction, weights=weights,
                                                     from_logits=True)
            e1 = fl.sparse_categorical_cross_entropy(labels, logits, reduction=reduction,
                                                     weights=wn, from_logits=True)
            v2 = fl.categorical_cross_entropy(probs, L, reduction=reduction, weights=weights,
                                              from_logits=True)
            e2 = fl.categorical_cross_entropy(probs, logits, reduction=reduction, weights=wn,
                                              from_logits=True)
            results = on_all(client, v1, v2)
            assert_same_bits([r[0] for r in results], e1)
            assert_same_bits([r[1] for r in results], e2)


def test_value_rowwise_class_axis_first(client):
    rng = np.random.default_rng(4)
    logits = rng.standard_normal((5, 4096))
    labels = rng.integers(0, 5, 4096)
    v = fl.sparse_categorical_cross_entropy(da.from_array(labels, chunks=1024),
                                            da.from_array(logits, chunks=(2, 1024)), axis=0,
                                            from_logits=True, class_weights=np.arange(1.0, 6.0))
    expected = fl.sparse_categorical_cross_entropy(labels, logits, axis=0, from_logits=True,
                                                   class_weights=np.arange(1.0, 6.0))
    assert_same_bits([r[0] for r in on_all(client, v)], expected)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_value_unequal_chunks(client, dtype):
    """Chunks off the block boundaries: within rounding of the NumPy call,
    and still the same bits on every scheduler."""
    y, p = data("huber", N, dtype)
    w = np.random.default_rng(5).random(N).astype(dtype)
    chunks = (1000, 3333, 12345, 777, 40000, N - 1000 - 3333 - 12345 - 777 - 40000)
    Y, P = da.from_array(y, chunks=chunks), da.from_array(p, chunks=(5000,) * 20)
    W = da.from_array(w, chunks=7001)
    rtol = 1e-12 if dtype == np.float64 else 1e-6
    everywhere = on_all(client, *(fl.huber(Y, P, reduction=r, weights=W, delta=2.0)
                                  for r in ("mean", "sum")))
    for i, reduction in enumerate(("mean", "sum")):
        results = [r[i] for r in everywhere]
        assert len({bits(r) for r in results}) == 1
        expected = fl.huber(y, p, reduction=reduction, weights=w, delta=2.0)
        np.testing.assert_allclose(results[0], expected, rtol=rtol)
        assert type(results[0]) is type(expected)


def test_mixed_numpy_and_dask(client):
    y, p = data("mse", N, np.float64)
    w = np.random.default_rng(6).random(N)
    expected = fl.mse(y, p, weights=w)
    Y, P, W = (da.from_array(a, chunks=4096) for a in (y, p, w))
    values = [fl.mse(a[0], a[1], weights=a[2])
              for a in ((y, P, w), (Y, p, w), (y, p, W), (Y, p, W), (y, P, W))]
    assert all(isinstance(v, da.Array) for v in values)
    for results in zip(*on_all(client, *values)):
        assert_same_bits(results, expected)


def test_none_reduction(client):
    rng = np.random.default_rng(7)
    y = rng.standard_normal((3000, 6))
    p = rng.standard_normal((3000, 6))
    w = rng.random((3000, 1))
    P = da.from_array(p, chunks=(700, 6))
    v = fl.huber(y, P, reduction="none", weights=w, delta=2.0)
    assert isinstance(v, da.Array) and v.chunks == P.chunks
    results = on_all(client, v)
    expected = fl.huber(y, p, reduction="none", weights=w, delta=2.0)
    for r in results:
        np.testing.assert_array_equal(r[0], expected)
    labels = rng.integers(0, 6, 3000)
    v = fl.sparse_categorical_cross_entropy(labels, P, reduction="none", from_logits=True)
    assert v.chunks == (P.chunks[0],)
    # Rows off a chunk's end may take the kernels' other path (the last ulp).
    np.testing.assert_allclose(
        v.compute(), fl.sparse_categorical_cross_entropy(labels, p, reduction="none",
                                                         from_logits=True), rtol=1e-14)


def test_regions_and_boxes(client):
    """Region losses keep each score's reduced axes in one chunk (axis=None:
    one chunk); boxes keep their 4 coordinates together."""
    rng = np.random.default_rng(12)
    y = (rng.random((6, 1, 16, 16)) > 0.5).astype(np.float64)
    p = rng.random((6, 1, 16, 16))
    w = rng.random(6)
    P = da.from_array(p, chunks=(2, 1, 8, 16))
    b = rng.random((3000, 4))
    b[:, 2:] += b[:, :2]
    bt = b + 0.1 * rng.random((3000, 4))
    B = da.from_array(b, chunks=(1000, 2))
    lazy = [*fl.dice.value_and_grad(y, P, axis=(1, 2, 3), weights=w, smooth=1.0),
            *fl.dice.value_and_grad(y, P, smooth=1.0),
            fl.dice(y, P, axis=(2, 3), reduction="none"),
            *fl.box_iou.value_and_grad(bt, B, kind="ciou")]
    expected = [*fl.dice.value_and_grad(y, p, axis=(1, 2, 3), weights=w, smooth=1.0),
                *fl.dice.value_and_grad(y, p, smooth=1.0),
                fl.dice(y, p, axis=(2, 3), reduction="none"),
                *fl.box_iou.value_and_grad(bt, b, kind="ciou")]
    assert lazy[1].chunks == ((2, 2, 2), (1,), (16,), (16,)) and lazy[3].chunks[0] == (6,)
    assert lazy[6].chunks == ((1000,) * 3, (4,))
    for results in on_all(client, *lazy):
        for r, e in zip(results, expected):
            np.testing.assert_allclose(r, e, rtol=1e-12, atol=1e-300)


def test_regions_spanning_axis_0(client):
    """Regions that include axis 0 span its chunks: the value (no weights)
    is the dataset's score from every chunk's exact region sums, the NumPy
    call's bits for chunks of whole 1024-element blocks, on every
    scheduler; weights, "none" and gradients run on one chunk."""
    rng = np.random.default_rng(14)
    y = (rng.random((16, 3, 32, 32)) > 0.6).astype(np.float32)
    p = rng.random((16, 3, 32, 32)).astype(np.float32)
    P = da.from_array(p, chunks=(4, 1, 32, 16))
    Y = da.from_array(y, chunks=(2, 3, 32, 32))
    w = rng.random(3).astype(np.float32)
    lazy = [fl.dice(Y, P), fl.jaccard(y, P, axis=(0, 2, 3), reduction="sum"),
            fl.tversky(Y, P, axis=(0, 2, 3), alpha=0.2, beta=0.8)]
    expected = [fl.dice(y, p), fl.jaccard(y, p, axis=(0, 2, 3), reduction="sum"),
                fl.tversky(y, p, axis=(0, 2, 3), alpha=0.2, beta=0.8)]
    # the state path keeps axis 0's chunks: no rechunk to one chunk
    assert len(lazy[0].dask) > 4
    for results in on_all(client, *lazy):
        for r, e in zip(results, expected):
            assert bits(r) == bits(np.asarray(e)), (r, e)
    lazy = [*fl.dice.value_and_grad(Y, P, axis=(0, 2, 3), weights=w),
            fl.dice(Y, P, axis=(0, 2, 3), reduction="none"),
            fl.dice.grad(Y, P)]
    expected = [*fl.dice.value_and_grad(y, p, axis=(0, 2, 3), weights=w),
                fl.dice(y, p, axis=(0, 2, 3), reduction="none"),
                fl.dice.grad(y, p)]
    for results in on_all(client, *lazy):
        for r, e in zip(results, expected):
            assert bits(r) == bits(np.asarray(e)), (r, e)


def test_array_option(client):
    """An array pos_weight broadcasts to y_pred: chunked like it (a Dask
    one too); per class, per sample or per element."""
    rng = np.random.default_rng(11)
    y = (rng.random((10_000, 4)) > 0.5).astype(np.float32)
    x = rng.standard_normal((10_000, 4)).astype(np.float32)
    Y, X = da.from_array(y, chunks=(4096, 4)), da.from_array(x, chunks=(2048, 4))
    per_element = rng.random((10_000, 4)).astype(np.float32) + 0.5
    options = [np.array([1.0, 2.0, 3.0, 4.0]), rng.random((10_000, 1)) + 0.5,
               da.from_array(per_element, chunks=(3000, 2))]
    lazy = []
    for pw in options:
        lazy += [fl.bce(Y, X, reduction="sum", from_logits=True, pos_weight=pw),
                 *fl.bce.value_and_grad(Y, X, from_logits=True, pos_weight=pw)]
    everywhere = on_all(client, *lazy)
    for i, pw in enumerate(options):
        pw = per_element if isinstance(pw, da.Array) else pw
        expected = [fl.bce(y, x, reduction="sum", from_logits=True, pos_weight=pw),
                    *fl.bce.value_and_grad(y, x, from_logits=True, pos_weight=pw)]
        for r in everywhere:
            assert bits(r[3 * i]) == bits(expected[0])
            assert bits(r[3 * i + 1]) == bits(expected[1])
            np.testing.assert_array_equal(r[3 * i + 2], expected[2])


# ---------------------------------------------------------------------------
# Gradients


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("name,opts", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_grad(client, name, opts, dtype, reduction):
    y, p = data(name, N, dtype)
    w = np.random.default_rng(8).random(N).astype(dtype)
    loss = getattr(fl, name)
    P = da.from_array(p, chunks=(30000, 30000, 40000))
    Y = da.from_array(y, chunks=4096)
    grads = [loss.grad(Y, P, reduction=reduction, weights=W, **opts)
             for W in (None, da.from_array(w, chunks=25000))]
    for g in grads:
        assert isinstance(g, da.Array) and g.chunks == P.chunks and g.dtype == dtype
    everywhere = on_all(client, *grads)
    for i, wn in enumerate((None, w)):
        expected = loss.grad(y, p, reduction=reduction, weights=wn, **opts)
        for r in everywhere:
            # w * dl of each element, times 1 / sum(w) in y_pred's dtype as
            # the kernels scale it: the same bits.
            np.testing.assert_array_equal(r[i], expected)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_value_and_grad(client, dtype):
    y, p = data("huber", N, dtype)
    w = np.random.default_rng(9).random((N,)).astype(dtype)
    Y, P, W = da.from_array(y, chunks=8192), da.from_array(p, chunks=4096), da.from_array(w, chunks=4096)
    reductions = ("mean", "sum", "none")
    lazy = [fl.huber.value_and_grad(Y, P, reduction=r, weights=W, delta=2.0) for r in reductions]
    for v, g in lazy:
        assert isinstance(v, da.Array) and isinstance(g, da.Array) and g.chunks == P.chunks
    everywhere = on_all(client, *(x for pair in lazy for x in pair))
    for i, reduction in enumerate(reductions):
        ev, eg = fl.huber.value_and_grad(y, p, reduction=reduction, weights=w, delta=2.0)
        for rv, rg in (r[2 * i : 2 * i + 2] for r in everywhere):
            if reduction == "none":
                np.testing.assert_array_equal(rv, ev)
            else:
                assert bits(rv) == bits(ev)
            np.testing.assert_allclose(rg, eg, rtol=1e-6 if dtype == np.float32 else 1e-12)


def test_grad_rowwise(client):
    rng = np.random.default_rng(10)
    n, c = 5000, 7
    logits = rng.standard_normal((n, c))
    labels = rng.integers(0, c, n)
    probs = rng.dirichlet(np.ones(c), n)
    w = rng.random(n)
    L = da.from_array(logits, chunks=(1024, 7))
    for reduction in ("mean", "sum", "none"):
        g1 = fl.sparse_categorical_cross_entropy.grad(labels, L, reduction=reduction, weights=w,
                                                      from_logits=True, label_smoothing=0.1)
        g2 = fl.categorical_cross_entropy.grad(da.from_array(probs, chunks=(2000, 7)), L,
                                               reduction=reduction, from_logits=True)
        assert g1.chunks == L.chunks and g2.chunks == L.chunks
        e1 = fl.sparse_categorical_cross_entropy.grad(labels, logits, reduction=reduction,
                                                      weights=w, from_logits=True,
                                                      label_smoothing=0.1)
        e2 = fl.categorical_cross_entropy.grad(probs, logits, reduction=reduction, from_logits=True)
        for r1, r2 in on_all(client, g1, g2):
            np.testing.assert_allclose(r1, e1, rtol=1e-12, atol=1e-300)
            np.testing.assert_allclose(r2, e2, rtol=1e-12, atol=1e-300)


# ---------------------------------------------------------------------------
# Laziness


_calls = []
_calls_lock = threading.Lock()


def _make(seed, n):
    with _calls_lock:
        _calls.append(seed)
    return np.random.default_rng(seed).standard_normal(n)


class _TaskCounter(dask.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.tasks = 0

    def _pretask(self, key, dsk, state):
        self.tasks += 1


def test_lazy():
    """Building the graph runs nothing: no input is made, no task starts."""
    n = 20_000
    Y = da.from_delayed(dask.delayed(_make)(1, n), (n,), np.float64).rechunk(4096)
    P = da.from_delayed(dask.delayed(_make)(2, n), (n,), np.float64).rechunk(4096)
    W = abs(da.from_delayed(dask.delayed(_make)(3, n), (n,), np.float64))
    del _calls[:]
    with _TaskCounter() as counter:
        results = [
            fl.mse(Y, P), fl.huber(Y, P, reduction="sum", weights=W),
            fl.mse.grad(Y, P, weights=W), *fl.huber.value_and_grad(Y, P, weights=W),
            fl.mse(Y, P, reduction="none"),
        ]
    assert counter.tasks == 0 and _calls == []
    assert all(isinstance(r, da.Array) for r in results)
    y, p, w = _make(1, n), _make(2, n), abs(_make(3, n))
    del _calls[:]
    v = results[1].compute(scheduler="sync")
    assert sorted(_calls) == [1, 2, 3]
    assert bits(v) == bits(fl.huber(y, p, reduction="sum", weights=w))


def test_value_errors_surface_at_compute():
    """Values are checked by the core when the graph runs."""
    labels = da.from_array(np.array([0, 1, 9, 2] * 256), chunks=256)
    logits = da.from_array(np.zeros((1024, 4)), chunks=(256, 4))
    v = fl.sparse_categorical_cross_entropy(labels, logits, from_logits=True)
    with pytest.raises(ValueError, match="label 9"):
        v.compute(scheduler="sync")


# ---------------------------------------------------------------------------
# Bad input: raised when the graph is built, naming the argument


def test_errors():
    P = da.zeros(10_000, chunks=4096)
    with pytest.raises(ValueError, match="y_true"):
        fl.mse(da.zeros(9_999, chunks=4096), P)
    with pytest.raises(ValueError, match="y_true"):
        fl.mse(np.zeros(9_999), P)
    with pytest.raises(ValueError, match="y_true"):
        fl.mse.grad(da.zeros((10_000, 1), chunks=4096), P)
    with pytest.raises(ValueError, match="weights"):
        fl.mse(P, P, weights=da.ones(3, chunks=3))
    with pytest.raises(ValueError, match="weights"):
        fl.mse(P, P, weights=np.ones((10_000, 1)))
    with pytest.raises(ValueError, match="pos_weight"):
        fl.bce(P, P, pos_weight=np.ones((9_999, 1)))
    with pytest.raises(ValueError, match="pos_weight"):
        fl.bce(P, P, pos_weight=da.ones(3, chunks=3))
    with pytest.raises(ValueError, match="delta"):
        fl.huber(P, P, delta=-1.0)
    with pytest.raises(TypeError):
        fl.mse(P, P, delta=1.0)
    with pytest.raises(ValueError, match="reduction"):
        fl.mse(P, P, reduction="median")
    with pytest.raises(TypeError, match="y_pred"):
        fl.mse(P, da.zeros(10_000, chunks=4096, dtype=np.complex64))
    # integer y_pred: float64, as in the NumPy call
    ints = np.arange(10_000) % 7
    v = fl.mse(P, da.from_array(ints, chunks=4096)).compute()
    assert v.dtype == np.float64 and v == fl.mse(np.zeros(10_000), ints)
    with pytest.raises(TypeError, match="y_true"):
        fl.sparse_categorical_cross_entropy(da.zeros(100, chunks=50),
                                            da.zeros((100, 3), chunks=(50, 3)))
    with pytest.raises(ValueError, match="y_true"):
        fl.sparse_categorical_cross_entropy(da.zeros(99, chunks=50, dtype=np.int64),
                                            da.zeros((100, 3), chunks=(50, 3)))
    with pytest.raises(ValueError, match="class_weights"):
        fl.sparse_categorical_cross_entropy(da.zeros(100, chunks=50, dtype=np.int64),
                                            da.zeros((100, 3), chunks=(50, 3)),
                                            class_weights=np.ones(4))
    with pytest.raises(ValueError, match="axis"):
        fl.categorical_cross_entropy(da.zeros((100, 3), chunks=(50, 3)),
                                     da.zeros((100, 3), chunks=(50, 3)), axis=2)
    unknown = da.from_array(np.zeros(10)).rechunk(5)
    unknown = unknown[unknown > 0]
    with pytest.raises(ValueError, match="unknown"):
        fl.mse(unknown, unknown)
