"""gaussian_nll (PyTorch's GaussianNLLLoss), added through the registry alone:
its functor, its registry row (a loss of several inputs, kind Elements) and
its NumPy reference. Checked against the reference (every reduction,
weights, dtypes, strides, every SIMD target), by finite differences, against
PyTorch's autograd where torch is installed, and for its errors. The
structured family's generic tests (test_structured.py) run it too."""

import math

import numpy as np
import pytest

import fastloss as fl
import fastloss.testing
from fastloss import reference
from structured_checks import check, make_inputs

CONFIGS = [{}, {"full": True}, {"eps": 0.05}, {"eps": 1e-3, "full": True}]


def data(shape, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    x, t = rng.normal(size=shape), rng.normal(size=shape)
    var = rng.uniform(0.05, 3.0, shape)
    if var.size > 3:
        var.flat[1] = 1e-9  # below eps: clamped, gradient passed through
        var.flat[2] = 0.0
    return [a.astype(dtype) for a in (x, t, var)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("opts", CONFIGS)
def test_against_reference(opts, reduction, dtype):
    inputs = data((37, 5), 1, dtype)
    check("gaussian_nll", inputs, opts, reduction=reduction, what="plain")
    w = np.random.default_rng(2).uniform(0.0, 2.0, (37, 1)).astype(dtype)
    check("gaussian_nll", inputs, opts, reduction=reduction, weights=w, what="weights")
    strided = [np.asfortranarray(a)[::-1] for a in inputs]
    check("gaussian_nll", strided, opts, reduction=reduction, what="strided")


@pytest.mark.parametrize("target", fastloss.testing.simd_targets())
def test_every_simd_target_and_tail(target):
    with fastloss.testing.force_target(target):
        for dtype in (np.float32, np.float64):
            for n in list(range(1, 41)) + [1000, 4097]:
                check("gaussian_nll", data((n,), n, dtype), {"full": n % 2 == 0}, reduction="none",
                      what=f"{target} n={n}")
                check("gaussian_nll", data((n,), n, dtype), {}, reduction="mean", what=f"{target} n={n}")


@pytest.mark.parametrize("opts", CONFIGS)
def test_finite_differences(opts):
    x, t, var = make_inputs("gaussian_nll", opts, (30,), 3, fd=True)
    w = np.random.default_rng(4).uniform(0.5, 2.0, 30)
    gx, gv = fl.gaussian_nll.grad(x, t, var, weights=w, **opts)
    h = 1e-6
    for k in range(0, 30, 7):
        for arr, g in ((x, gx), (var, gv)):
            up, down = arr.copy(), arr.copy()
            up[k] += h
            down[k] -= h
            args_up = [up if a is arr else a for a in (x, t, var)]
            args_down = [down if a is arr else a for a in (x, t, var)]
            fd = (fl.gaussian_nll(*args_up, weights=w, **opts) - fl.gaussian_nll(*args_down, weights=w, **opts)) / (2 * h)
            assert g[k] == pytest.approx(fd, rel=1e-6, abs=1e-9)


def test_formula_at_points():
    # l = (log v + r^2 / v) / 2 (+ log(2 pi) / 2), r = input - target, v = max(var, eps)
    x = np.array([1.0, 0.0, 2.0, -1.0])
    t = np.array([0.0, 0.0, 0.5, 1.0])
    var = np.array([2.0, 1.0, 1e-9, 0.0])
    v = np.maximum(var, 1e-6)
    r = x - t
    l = 0.5 * (np.log(v) + r * r / v)
    got = fl.gaussian_nll(x, t, var, reduction="none")
    np.testing.assert_allclose(got, l, rtol=1e-15)
    full = fl.gaussian_nll(x, t, var, reduction="none", full=True)
    np.testing.assert_allclose(full, l + 0.5 * math.log(2 * math.pi), rtol=1e-15)
    gx, gv = fl.gaussian_nll.grad(x, t, var, reduction="sum")
    np.testing.assert_allclose(gx, r / v, rtol=1e-15)
    np.testing.assert_allclose(gv, 0.5 * (1 / v - r * r / v**2), rtol=1e-15)


@pytest.mark.parametrize("full", [False, True])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_matches_torch(full, reduction):
    torch = pytest.importorskip("torch")
    x, t, var = data((64, 3), 7)
    var[0, 0] = 0.0
    xt = torch.tensor(x, requires_grad=True)
    vt = torch.tensor(var, requires_grad=True)
    loss = torch.nn.functional.gaussian_nll_loss(xt, torch.tensor(t), vt, full=full, eps=1e-6, reduction=reduction)
    loss.sum().backward()
    v, (gx, gv) = fl.gaussian_nll.value_and_grad(x, t, var, full=full, reduction=reduction)
    np.testing.assert_allclose(v, loss.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(gx, xt.grad.numpy(), rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(gv, vt.grad.numpy(), rtol=1e-12, atol=1e-300)


def test_reference_is_the_registry_entry():
    x, t, var = data((9,), 5)
    v, (gx, gv) = reference.value_and_grad("gaussian_nll", x, t, var, reduction="sum", full=True)
    got_v, (got_gx, got_gv) = fl.gaussian_nll.value_and_grad(x, t, var, reduction="sum", full=True)
    assert got_v == pytest.approx(v, rel=1e-14)
    np.testing.assert_allclose(got_gx, gx, rtol=1e-14)
    np.testing.assert_allclose(got_gv, gv, rtol=1e-14)
    assert fl.gaussian_nll.options == fl.gaussian_nll.options  # described by the registry
    names = [o["name"] for o in fl._core.loss_info("gaussian_nll")["options"]]
    assert names == ["full", "eps"]
    assert fl._core.loss_info("gaussian_nll")["args"] == ("input", "target", "var")


@pytest.mark.parametrize("n", [5, 100_000])
def test_negative_variance_is_a_value_error_naming_var(n):
    x, t, var = data((n,), 3, np.float32)
    var[n // 2] = -0.5
    with pytest.raises(ValueError, match=rf"^gaussian_nll: var must be >= 0, got a value outside at position \({n // 2},\)$"):
        fl.gaussian_nll(x, t, var)
    with pytest.raises(ValueError, match="var must be >= 0"):
        fl.gaussian_nll.grad(x, t, var)
    var[n // 2] = np.nan  # NaN passes, as in PyTorch
    v, (gx, gv) = fl.gaussian_nll.value_and_grad(x, t, var)
    assert np.isnan(v) and np.isnan(gx[n // 2]) and np.isnan(gv[n // 2])


@pytest.mark.parametrize("k", [0, 1, 2])
def test_shapes_must_match_no_broadcast(k):
    args = data((4, 3), 1)
    args[k] = args[k][:, :1]  # PyTorch's per-sample variance would broadcast; here every shape is one
    name = ("input", "target", "var")[k]
    with pytest.raises(ValueError, match=name):
        fl.gaussian_nll(*args)


def test_option_errors():
    x, t, var = data((4,), 1)
    with pytest.raises(ValueError, match="eps"):
        fl.gaussian_nll(x, t, var, eps=0.0)
    with pytest.raises(ValueError, match="eps"):
        fl.gaussian_nll(x, t, var, eps=-1.0)
    with pytest.raises(TypeError, match="delta"):
        fl.gaussian_nll(x, t, var, delta=1.0)
    with pytest.raises(TypeError):
        fl.gaussian_nll(x, t)
