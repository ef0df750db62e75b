"""multilabel_soft_margin (PyTorch's MultiLabelSoftMarginLoss), added through
the registry alone: its element functor on the element-sum row kernels, its
options struct and row, its NumPy reference. The reference, dtypes, shapes,
strides, class weights and finite differences run through test_rowwise /
test_classification (ROW_CONFIGS); here: PyTorch's formula written out, and
PyTorch where it installs."""

import numpy as np
import pytest

import fastloss as fl


def _log_sigmoid(x):
    return -np.logaddexp(0.0, -x)


def _torch_formula(x, y, weight=None):
    # torch.nn.functional.multilabel_soft_margin_loss (reduction="none"):
    # -(y * logsigmoid(x) + (1 - y) * logsigmoid(-x)) * weight, mean over classes
    loss = -(y * _log_sigmoid(x) + (1 - y) * _log_sigmoid(-x))
    if weight is not None:
        loss = loss * weight
    return loss.mean(axis=-1)


@pytest.mark.parametrize("weighted", [False, True])
def test_matches_pytorch_formula(weighted):
    rng = np.random.default_rng(8)
    x = rng.normal(0, 3, (40, 9))
    y = (rng.random((40, 9)) < 0.3) * 1.0
    w = rng.uniform(0.2, 2.0, 9) if weighted else None
    kw = {"class_weights": w} if weighted else {}
    want = _torch_formula(x, y, w)
    np.testing.assert_allclose(fl.multilabel_soft_margin(y, x, reduction="none", **kw), want, rtol=1e-13)
    assert fl.multilabel_soft_margin(y, x, **kw) == pytest.approx(want.mean(), rel=1e-13)
    sig = 1 / (1 + np.exp(-x))
    want_g = (sig - y) * (1 if w is None else w) / 9 / 40
    np.testing.assert_allclose(fl.multilabel_soft_margin.grad(y, x, **kw), want_g, rtol=1e-12, atol=1e-17)


def test_extreme_logits_are_exact():
    x = np.array([[1e4, -1e4, 0.0]])
    y = np.array([[1.0, 0.0, 1.0]])
    assert fl.multilabel_soft_margin(y, x) == pytest.approx(np.log(2) / 3, rel=1e-15)


def test_errors():
    x = np.zeros((2, 3))
    with pytest.raises(ValueError, match="class_weights"):
        fl.multilabel_soft_margin(x, x, class_weights=np.ones(4))
    with pytest.raises(TypeError, match="class_weights"):
        fl.categorical_cross_entropy(x, x, class_weights=np.ones(3))


def test_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(9)
    x = rng.normal(0, 2, (12, 5))
    y = (rng.random((12, 5)) < 0.5) * 1.0
    w = rng.uniform(0.5, 1.5, 5)
    want = torch.nn.functional.multilabel_soft_margin_loss(torch.tensor(x), torch.tensor(y), weight=torch.tensor(w))
    assert fl.multilabel_soft_margin(y, x, class_weights=w) == pytest.approx(float(want), rel=1e-12)
