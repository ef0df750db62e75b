"""hinge_embedding (PyTorch's HingeEmbeddingLoss), added through the registry
alone: its functor, its registry row and its NumPy reference. Checked against
the reference and PyTorch's formula, by finite differences, for every
reduction, weights, dtypes, strides, out= and the fused call."""

import numpy as np
import pytest

import fastloss as fl
import elementwise_checks as checks

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
    checks.against_reference(name, opts, y, p, rng.uniform(0, 2, size=(37, 1)), reduction)


@pytest.mark.parametrize("name,opts", CASES)
def test_finite_differences(name, opts):
    y, p = _data(name, opts, np.random.default_rng(5), (40,), np.float64)
    margin = opts.get("margin", 1.0)  # stay away from the hinge's corner
    p = np.where(np.abs(margin - p) < 1e-3, p + 0.01, p)
    checks.finite_differences(name, opts, y, p)


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
    y, p = _data(name, opts, np.random.default_rng(7), (30, 8), np.float32)
    checks.strided_inputs_and_out(name, opts, y, p)


@pytest.mark.parametrize("name,opts", FUSED)
def test_fused_combination(name, opts):
    y, p = _data(name, opts, np.random.default_rng(8), (50,), np.float64)
    checks.fused_combination(name, opts, y, p)


def test_nan_propagates():
    y = np.array([1.0, -1.0, 1.0])
    x = np.array([np.nan, np.nan, 0.5])
    v = fl.hinge_embedding(y, x, reduction="none")
    g = fl.hinge_embedding.grad(y, x, reduction="none")
    assert np.isnan(v[:2]).all() and np.isnan(g[:2]).all() and v[2] == 0.5 and g[2] == 1.0
