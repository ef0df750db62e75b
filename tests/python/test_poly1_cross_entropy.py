"""poly1_cross_entropy (optax's poly_loss_cross_entropy), added through the
registry alone: its softmax term, its options struct and row, its NumPy
reference. The reference, dtypes, shapes, strides, targets and finite
differences run through test_rowwise / test_classification (ROW_CONFIGS);
here: optax's formula written out, and optax itself where it installs."""

import numpy as np
import pytest

import fastloss as fl


def _softmax(x):
    z = np.exp(x - x.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


def _optax_formula(logits, labels, epsilon):
    # optax.poly_loss_cross_entropy: softmax_cross_entropy + epsilon * one_minus_pt
    q = _softmax(logits)
    ce = -np.sum(labels * np.log(q), axis=-1)
    return ce + epsilon * np.sum(labels * (1.0 - q), axis=-1)


@pytest.mark.parametrize("epsilon", [2.0, -1.0, 0.0, 5.5])
@pytest.mark.parametrize("soft", [False, True])
def test_matches_optax_formula(epsilon, soft):
    rng = np.random.default_rng(3)
    x = rng.normal(0, 2, (64, 7))
    if soft:
        y = rng.dirichlet(np.ones(7), 64)
    else:
        y = np.eye(7)[rng.integers(0, 7, 64)]
    want = _optax_formula(x, y, epsilon)
    np.testing.assert_allclose(fl.poly1_cross_entropy(y, x, epsilon=epsilon, reduction="none"), want,
                               rtol=1e-12)
    assert fl.poly1_cross_entropy(y, x, epsilon=epsilon) == pytest.approx(want.mean(), rel=1e-12)
    # epsilon = 0 is cross-entropy from logits
    if epsilon == 0.0:
        assert fl.poly1_cross_entropy(y, x, epsilon=0.0) == pytest.approx(
            fl.cce(y, x, from_logits=True), rel=1e-13)


def test_gradient_by_finite_differences():
    rng = np.random.default_rng(4)
    x = rng.normal(0, 1.5, (5, 4))
    y = rng.dirichlet(np.ones(4), 5)
    g = fl.poly1_cross_entropy.grad(y, x, reduction="sum")
    h = 1e-6
    fd = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        a, b = x.copy(), x.copy()
        a[i] += h
        b[i] -= h
        fd[i] = (_optax_formula(a, y, 2.0).sum() - _optax_formula(b, y, 2.0).sum()) / (2 * h)
    np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-8)


def test_options_and_defaults():
    opts = fl.poly1_cross_entropy.options
    assert opts["epsilon"] == 2.0
    assert opts["from_logits"] is True
    with pytest.raises(ValueError, match="epsilon"):
        fl.poly1_cross_entropy(np.eye(3), np.zeros((3, 3)), epsilon=float("inf"))


def test_matches_optax():
    optax = pytest.importorskip("optax")
    rng = np.random.default_rng(5)
    x = rng.normal(0, 2, (16, 5)).astype(np.float32)
    y = rng.dirichlet(np.ones(5), 16).astype(np.float32)
    poly = getattr(optax, "losses", optax).poly_loss_cross_entropy  # optax.losses since 0.2.3
    want = np.asarray(poly(x, y, epsilon=2.0))
    np.testing.assert_allclose(fl.poly1_cross_entropy(y, x, reduction="none"), want, rtol=2e-5)
