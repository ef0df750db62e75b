"""generalized_cross_entropy (Keras' CategoricalGeneralizedCrossEntropy),
added through the registry alone: its target term, its options struct and
row, its NumPy reference. The reference, dtypes, shapes, strides, labels and
finite differences run through test_rowwise / test_classification
(ROW_CONFIGS); here: Keras' formula written out, and Keras where it installs."""

import numpy as np
import pytest

import fastloss as fl


def _keras_formula(labels, probs, q):
    # keras.losses.categorical_generalized_cross_entropy:
    # p_true = sum(y_pred * one_hot(y_true)); (1 - p_true**q) / q
    p_true = np.take_along_axis(probs, labels[:, None], axis=-1)[:, 0]
    return (1.0 - p_true**q) / q


@pytest.mark.parametrize("q", [0.5, 0.1, 0.9])
def test_matches_keras_formula(q):
    rng = np.random.default_rng(6)
    p = rng.dirichlet(np.ones(6), 50)
    t = rng.integers(0, 6, 50)
    want = _keras_formula(t, p, q)
    np.testing.assert_allclose(fl.generalized_cross_entropy(t, p, q=q, reduction="none"), want, rtol=1e-13)
    assert fl.generalized_cross_entropy(t, p, q=q) == pytest.approx(want.mean(), rel=1e-13)
    g = fl.generalized_cross_entropy.grad(t, p, q=q, reduction="sum")
    want_g = np.zeros_like(p)
    want_g[np.arange(50), t] = -(p[np.arange(50), t] ** (q - 1.0))
    np.testing.assert_allclose(g, want_g, rtol=1e-13)


def test_ignore_index_and_edges():
    p = np.array([[0.2, 0.8], [0.0, 1.0], [0.5, 0.5]])
    t = np.array([1, 0, -100])
    v = fl.generalized_cross_entropy(t, p, ignore_index=-100, reduction="none")
    np.testing.assert_allclose(v, [(1 - 0.8**0.5) / 0.5, 2.0, 0.0], rtol=1e-15)
    g = fl.generalized_cross_entropy.grad(t, p, ignore_index=-100, reduction="sum")
    assert g[1, 0] == -np.inf and g[2].tolist() == [0.0, 0.0]
    # the mean divides by the rows kept
    assert fl.generalized_cross_entropy(t, p, ignore_index=-100) == pytest.approx(v[:2].mean(), rel=1e-15)


def test_options_and_errors():
    assert fl.generalized_cross_entropy.options["q"] == 0.5
    p = np.full((2, 3), 1 / 3)
    for q in (0.0, 1.0, -0.5, float("nan")):
        with pytest.raises(ValueError, match="q"):
            fl.generalized_cross_entropy(np.array([0, 1]), p, q=q)
    with pytest.raises(ValueError, match="y_true"):
        fl.generalized_cross_entropy(np.array([0, 3]), p)
    with pytest.raises(TypeError, match="class_weights"):
        fl.generalized_cross_entropy(np.array([0, 1]), p, class_weights=np.ones(3))


def test_matches_keras():
    keras = pytest.importorskip("keras")
    loss = getattr(keras.losses, "CategoricalGeneralizedCrossEntropy", None)
    if loss is None:
        pytest.skip("this Keras has no CategoricalGeneralizedCrossEntropy")
    rng = np.random.default_rng(7)
    p = rng.dirichlet(np.ones(4), 20).astype(np.float32)
    t = rng.integers(0, 4, 20)
    want = float(loss(q=0.5)(t, p))
    assert float(fl.generalized_cross_entropy(t, p, q=0.5)) == pytest.approx(want, rel=1e-5)
