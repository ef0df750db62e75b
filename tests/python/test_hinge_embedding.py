"""hinge_embedding (PyTorch's HingeEmbeddingLoss), added through the registry
alone: its functor, its registry row and its NumPy reference. Checked against
the reference and PyTorch's formula, by finite differences, for every
reduction, weights, dtypes, strides, out= and the fused call."""

import numpy as np
import pytest

import fastloss as fl
from fastloss import reference as ref

RTOL = {np.float32: 2e-5, np.float64: 1e-12}
SEEDS = [0, 1, 2]


def _hinge_data(rng, shape, dtype):
    y = rng.choice([-1.0, 1.0], size=shape)
    x = rng.uniform(-2, 3, size=shape)
    return y.astype(dtype), x.astype(dtype)


CASES = [("hinge_embedding", {}), ("hinge_embedding", {"margin": 0.5}),
         ("hinge_embedding", {"margin": -1.0})]
FUSED = [("hinge_embedding", {"margin": 0.5})]


def _data(name, opts, rng, shape, dtype):
    return _hinge_data(rng, shape, dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name,opts", CASES)
def test_against_reference(name, opts, seed, reduction, dtype):
    rng = np.random.default_rng(seed)
    y, p = _data(name, opts, rng, (37, 5), dtype)
    w = rng.uniform(0, 2, size=(37, 1))
    for weights in (None, w):
        v, g = fl.LOSSES[name].value_and_grad(y, p, reduction=reduction, weights=weights, **opts)
        rv, rg = ref.value_and_grad(name, y, p, reduction=reduction, weights=weights, **opts)
        assert np.asarray(v).dtype == dtype and g.dtype == dtype and g.shape == p.shape
        scale = np.max(np.abs(rv)) if np.ndim(rv) else abs(rv)
        np.testing.assert_allclose(v, rv, rtol=RTOL[dtype], atol=RTOL[dtype] * (1 + scale))
        gscale = np.max(np.abs(rg)) + 1e-300
        np.testing.assert_allclose(g, rg, rtol=RTOL[dtype], atol=RTOL[dtype] * gscale)
        assert np.array_equal(fl.LOSSES[name](y, p, reduction=reduction, weights=weights, **opts), v)
        assert np.array_equal(fl.LOSSES[name].grad(y, p, reduction=reduction, weights=weights, **opts), g)


@pytest.mark.parametrize("name,opts", CASES)
def test_finite_differences(name, opts):
    rng = np.random.default_rng(5)
    y, p = _data(name, opts, rng, (40,), np.float64)
    margin = opts.get("margin", 1.0)  # stay away from the hinge's corner
    p = np.where(np.abs(margin - p) < 1e-3, p + 0.01, p)
    g = fl.LOSSES[name].grad(y, p, reduction="sum", **opts)
    h = 1e-6
    for i in range(0, 40, 7):
        e = np.zeros_like(p)
        e[i] = h
        num = (fl.LOSSES[name](y, p + e, reduction="sum", **opts)
               - fl.LOSSES[name](y, p - e, reduction="sum", **opts)) / (2 * h)
        assert num == pytest.approx(g[i], rel=1e-5, abs=1e-7), (i, y[i], p[i])


def test_hinge_embedding_matches_pytorch_formula():
    # torch.nn.functional.hinge_embedding_loss, written out as PyTorch does:
    # where(y != 1, clamp_min(margin - x, 0), 0) + where(y != -1, x, 0),
    # labels outside {1, -1} included.
    y = np.array([1.0, -1.0, -1.0, 0.0, 2.0, 1.0])
    x = np.array([0.3, 0.2, 1.5, 0.4, -0.7, -2.0])
    margin = 1.0
    expected = np.where(y != 1, np.maximum(margin - x, 0), 0) + np.where(y != -1, x, 0)
    np.testing.assert_allclose(fl.hinge_embedding(y, x, reduction="none"), expected, rtol=1e-15)
    assert fl.hinge_embedding(y, x) == pytest.approx(expected.mean(), rel=1e-15)


def test_hinge_embedding_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    y, x = _hinge_data(rng, (64,), np.float64)
    xt = torch.tensor(x, requires_grad=True)
    loss = torch.nn.functional.hinge_embedding_loss(xt, torch.tensor(y), margin=0.7)
    loss.backward()
    v, g = fl.hinge_embedding.value_and_grad(y, x, margin=0.7)
    assert v == pytest.approx(loss.item(), rel=1e-12)
    np.testing.assert_allclose(g, xt.grad.numpy(), rtol=1e-12, atol=1e-15)


def test_hinge_embedding_margin_must_be_finite():
    with pytest.raises(ValueError, match="hinge_embedding: margin must be a finite number"):
        fl.hinge_embedding(np.ones(3), np.ones(3), margin=float("inf"))


@pytest.mark.parametrize("name,opts", FUSED)
def test_strided_inputs_and_out(name, opts):
    rng = np.random.default_rng(7)
    y, p = _data(name, opts, rng, (30, 8), np.float32)
    ys, ps = y[::3, ::2], p[::3, ::2]
    v, g = fl.LOSSES[name].value_and_grad(ys, ps, **opts)
    v2, g2 = fl.LOSSES[name].value_and_grad(np.ascontiguousarray(ys), np.ascontiguousarray(ps), **opts)
    assert v == v2 and np.array_equal(g, g2)
    buf = np.full((ps.shape[0] + 2, ps.shape[1]), 7.0, np.float32)
    out = buf[1:-1]
    fl.LOSSES[name].grad(ys, ps, out=out, **opts)
    assert np.array_equal(out, g2) and (buf[0] == 7).all() and (buf[-1] == 7).all()


@pytest.mark.parametrize("name,opts", FUSED)
def test_fused_combination(name, opts):
    rng = np.random.default_rng(8)
    y, p = _data(name, opts, rng, (50,), np.float64)
    loss = 0.25 * fl.mse + 2.0 * fl.LOSSES[name].with_options(**opts)
    v, g = loss.value_and_grad(y, p)
    v1, g1 = fl.mse.value_and_grad(y, p)
    v2, g2 = fl.LOSSES[name].value_and_grad(y, p, **opts)
    assert v == pytest.approx(0.25 * v1 + 2.0 * v2, rel=1e-13)
    np.testing.assert_allclose(g, 0.25 * g1 + 2.0 * g2, rtol=1e-13, atol=1e-16)


def test_nan_propagates():
    y = np.array([1.0, -1.0, 1.0])
    x = np.array([np.nan, np.nan, 0.5])
    v = fl.hinge_embedding(y, x, reduction="none")
    g = fl.hinge_embedding.grad(y, x, reduction="none")
    assert np.isnan(v[:2]).all() and np.isnan(g[:2]).all() and v[2] == 0.5 and g[2] == 1.0
