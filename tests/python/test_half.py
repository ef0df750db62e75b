"""float16 and bfloat16 (ml_dtypes) y_pred on the CPU: computed in float32 by
the same drivers (the inputs converted once), the value, per-item losses and
gradient returned in the input's dtype; out= of that dtype receives the
gradient; accumulators add the float32 sums."""

import numpy as np
import pytest

import fastloss as fl
from fastloss.__main__ import _OPTIONS, _data

HALF = [np.float16]
try:
    import ml_dtypes

    HALF.append(ml_dtypes.bfloat16)
except ImportError:  # pragma: no cover - ml_dtypes is a test dependency
    pass

NAMES = sorted(fl.LOSSES)


def halves(name, half, n=400):
    y, p = _data(name, n, np.float32, np.random.default_rng(0))
    ph = p.astype(half)
    yh = y.astype(half) if y.dtype.kind == "f" else y  # labels stay integers
    return yh, ph, dict(_OPTIONS.get(name, {}))


def f32(a):
    return a.astype(np.float32) if a.dtype.kind in "fV" else a


@pytest.mark.parametrize("half", HALF, ids=lambda t: np.dtype(t).name)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("name", NAMES)
def test_every_loss_in_float32_returned_in_half(name, reduction, half):
    y, p, opts = halves(name, half)
    want_v, want_g = getattr(fl, name).value_and_grad(f32(y), f32(p), reduction=reduction,
                                                       **opts)
    v, g = getattr(fl, name).value_and_grad(y, p, reduction=reduction, **opts)
    assert np.asarray(v).dtype == np.dtype(half) and g.dtype == np.dtype(half)
    assert g.shape == p.shape
    # exactly the float32 results, rounded once to the input's dtype
    np.testing.assert_array_equal(np.asarray(v), np.asarray(want_v).astype(half))
    np.testing.assert_array_equal(g, want_g.astype(half))
    if reduction != "none":
        assert type(getattr(fl, name)(y, p, reduction=reduction, **opts)) is np.dtype(half).type


@pytest.mark.parametrize("half", HALF, ids=lambda t: np.dtype(t).name)
def test_out_weights_and_accumulators(half):
    rng = np.random.default_rng(1)
    p = rng.standard_normal((30, 7)).astype(half)
    y = rng.standard_normal((30, 7)).astype(half)
    w = rng.random(7).astype(half)
    buf = np.full(30 * 7 + 2, 9.0, half)
    out = buf[1:-1].reshape(30, 7)
    g = fl.huber.grad(y, p, weights=w, out=out, delta=0.5)
    assert g is out and buf[0] == 9.0 and buf[-1] == 9.0
    want = fl.huber.grad(f32(y), f32(p), weights=f32(w), delta=0.5)
    np.testing.assert_array_equal(out, want.astype(half))
    acc = fl.huber.accumulator(delta=0.5)
    acc.update(y[:10], p[:10])
    acc.update(y[10:], p[10:])
    assert acc.result() == fl.huber(f32(y), f32(p), delta=0.5)
    # bad out: checked before anything runs, nothing written
    keep = out.copy()
    with pytest.raises(TypeError, match="out"):
        fl.huber.grad(y, p, out=np.empty((30, 7), np.float32))
    with pytest.raises(ValueError, match="out"):
        fl.huber.grad(y, p, out=np.empty((7, 30), half))
    ro = np.empty((30, 7), half)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        fl.huber.grad(y, p, out=ro)
    np.testing.assert_array_equal(out, keep)
    # errors of the call itself keep their names
    with pytest.raises(ValueError, match="delta"):
        fl.huber(y, p, delta=-1.0)
    with pytest.raises(ValueError, match="y_true"):
        fl.huber(y[:5], p)


def test_segments_in_half():
    rng = np.random.default_rng(2)
    p = rng.standard_normal(1000).astype(np.float16)
    y = rng.standard_normal(1000).astype(np.float16)
    off = np.array([0, 300, 300, 1000])
    v = fl.mse(y, p, offsets=off)
    assert v.dtype == np.float16
    with np.errstate(invalid="ignore"):
        np.testing.assert_array_equal(v, fl.mse(f32(y), f32(p), offsets=off).astype(np.float16))


@pytest.mark.parametrize("half", HALF, ids=lambda t: np.dtype(t).name)
def test_dask_half(half):
    da = pytest.importorskip("dask.array")
    rng = np.random.default_rng(3)
    p = rng.standard_normal(8192).astype(half)
    y = rng.standard_normal(8192).astype(half)
    P = da.from_array(p, chunks=2048)
    v, g = fl.huber.value_and_grad(y, P, delta=0.5)
    ev, eg = fl.huber.value_and_grad(y, p, delta=0.5)
    v, g = v.compute(scheduler="sync"), g.compute(scheduler="sync")
    assert v.dtype == np.dtype(half) and g.dtype == np.dtype(half)
    assert np.float32(v) == np.float32(ev)
    np.testing.assert_array_equal(g, eg)
    seg = fl.mse(y, P, offsets=np.array([0, 2048, 8192])).compute(scheduler="sync")
    np.testing.assert_array_equal(seg, fl.mse(y, p, offsets=np.array([0, 2048, 8192])))


MULTI = ["gaussian_nll", "cosine_embedding", "triplet_margin", "contrastive_pairs",
         "margin_ranking", "pairwise_ranking", "gan_discriminator", "gan_generator",
         "wasserstein_critic", "wasserstein_generator", "gradient_penalty"]


def multi_arrays(name, rng):
    r = lambda *s: rng.standard_normal(s).astype(np.float32)  # noqa: E731
    return {
        "gaussian_nll": lambda: [r(12, 3), r(12, 3), (rng.random((12, 3)) + 0.2).astype(np.float32)],
        "cosine_embedding": lambda: [r(12, 5), r(12, 5), rng.choice([-1.0, 1.0], 12)],
        "triplet_margin": lambda: [r(12, 5), r(12, 5), r(12, 5)],
        "contrastive_pairs": lambda: [rng.integers(0, 2, 12).astype(np.float32), r(12, 5),
                                      r(12, 5)],
        "margin_ranking": lambda: [r(12), r(12), rng.choice([-1.0, 1.0], 12)],
        "pairwise_ranking": lambda: [rng.integers(0, 3, 12).astype(np.float32), r(12)],
        "gan_discriminator": lambda: [r(12), r(9)],
        "gan_generator": lambda: [r(12)],
        "wasserstein_critic": lambda: [r(12), r(9)],
        "wasserstein_generator": lambda: [r(12)],
        "gradient_penalty": lambda: [r(12, 4)],
    }[name]()


@pytest.mark.parametrize("half", HALF, ids=lambda t: np.dtype(t).name)
@pytest.mark.parametrize("name", MULTI)
def test_losses_of_several_inputs(name, half):
    loss = getattr(fl, name)
    arrays = multi_arrays(name, np.random.default_rng(4))
    slots = [loss._args.index(a) for a in loss._inputs]
    halves = [a.astype(half) if k in slots else a for k, a in enumerate(arrays)]
    f32s = [a.astype(np.float32) if k in slots else a for k, a in enumerate(halves)]
    v, g = loss.value_and_grad(*halves)
    wv, wg = loss.value_and_grad(*f32s)
    g, wg = (g if isinstance(g, tuple) else (g,)), (wg if isinstance(wg, tuple) else (wg,))
    assert np.asarray(v).dtype == np.dtype(half)
    np.testing.assert_array_equal(np.asarray(v), np.asarray(wv).astype(half))
    for a, b in zip(g, wg):
        assert a.dtype == np.dtype(half)
        np.testing.assert_array_equal(a, b.astype(half))
    if loss._out:
        with pytest.raises(TypeError, match="out"):
            loss.grad(*halves, out=np.empty_like(halves[slots[0]]))
