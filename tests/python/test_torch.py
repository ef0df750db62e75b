"""fastloss.torch: every loss of fastloss.LOSSES as a PyTorch operator. Values
and gradients are the NumPy call's bits (the same kernels, no copies);
backward scales the saved gradient by grad_output; opcheck, gradcheck and
torch.compile(fullgraph=True) pass; half and bfloat16 compute in float32."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import fastloss as fl  # noqa: E402
import fastloss.torch as flt  # noqa: E402
from adapter_checks import multi_case  # noqa: E402
from fastloss.__main__ import _OPTIONS, _data  # noqa: E402  (the self-check's data)

NAMES = sorted(n for n in flt.LOSSES if n in fl.LOSSES)


def case(name, n=600, dtype=np.float64, seed=0):
    y, p = _data(name, n, dtype, np.random.default_rng(seed))
    return y, p, dict(_OPTIONS.get(name, {}))


def bits(x):
    a = np.asarray(x.detach() if isinstance(x, torch.Tensor) else x)
    return a.dtype.str, a.shape, a.tobytes()


def test_every_loss_is_an_operator():
    assert set(NAMES) == {n for n in fl.LOSSES}
    for name in NAMES:
        assert hasattr(torch.ops.fastloss, name)
        assert getattr(flt, name) is flt.LOSSES[name]
        assert "input" in flt.LOSSES[name].__doc__


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("name", NAMES)
def test_value_and_gradient_are_the_numpy_calls(name, reduction):
    y, p, opts = case(name)
    x = torch.from_numpy(p.copy()).requires_grad_()
    t = torch.from_numpy(y)
    v = flt.LOSSES[name](x, t, reduction=reduction, **opts)
    want_v, want_g = getattr(fl, name).value_and_grad(y, p, reduction=reduction, **opts)
    assert bits(v) == bits(want_v)
    if reduction == "none":
        go = torch.from_numpy(np.random.default_rng(1).random(v.shape))
        v.backward(go)
        # the gradient of sum(go * l): each item's w * dl times its go,
        # broadcast over the axes the item reduces
        _, g1 = getattr(fl, name).value_and_grad(y, p, reduction="none", **opts)
        whole = flt._SPECS[name].whole_axes(p.ndim, opts)
        s = go.numpy()
        for a in whole:
            s = np.expand_dims(s, a)
        np.testing.assert_allclose(x.grad.numpy(), g1 * s, rtol=1e-15, atol=0)
    else:
        v.backward()  # grad_output 1: the saved gradient itself
        assert bits(x.grad) == bits(want_g)
        x.grad = None
        v = flt.LOSSES[name](x, t, reduction=reduction, **opts)
        (v * 3.0).backward()
        assert bits(x.grad) == bits(want_g * 3.0)


def test_weights_and_array_options():
    rng = np.random.default_rng(2)
    y = (rng.random((50, 8)) < 0.5).astype(np.float32)
    p = rng.standard_normal((50, 8)).astype(np.float32)
    w = rng.random(8).astype(np.float32)
    pw = (rng.random(8) + 0.5).astype(np.float32)
    x = torch.from_numpy(p.copy()).requires_grad_()
    v = flt.binary_cross_entropy(x, torch.from_numpy(y), weights=torch.from_numpy(w),
                                 pos_weight=torch.from_numpy(pw), from_logits=True)
    v.backward()
    ev, eg = fl.binary_cross_entropy.value_and_grad(y, p, weights=w, pos_weight=pw,
                                                    from_logits=True)
    assert bits(v) == bits(ev) and bits(x.grad) == bits(eg)
    labels = rng.integers(-1, 8, 50)
    cw = (rng.random(8) + 0.5).astype(np.float32)
    x.grad = None
    v = flt.sparse_categorical_cross_entropy(x, torch.from_numpy(labels), from_logits=True,
                                             ignore_index=-1, class_weights=torch.from_numpy(cw))
    v.backward()
    ev, eg = fl.sparse_categorical_cross_entropy.value_and_grad(
        labels, p, from_logits=True, ignore_index=-1, class_weights=cw)
    assert bits(v) == bits(ev) and bits(x.grad) == bits(eg)
    # regions over a tuple of axes, per-region weights
    yr = (rng.random((4, 3, 8, 8)) < 0.4).astype(np.float64)
    pr = rng.random((4, 3, 8, 8))
    xr = torch.from_numpy(pr.copy()).requires_grad_()
    v = flt.dice(xr, torch.from_numpy(yr), axis=(0, 2, 3), weights=torch.tensor([1.0, 2, 3]))
    v.backward()
    ev, eg = fl.dice.value_and_grad(yr, pr, axis=(0, 2, 3), weights=np.array([1.0, 2, 3]))
    assert bits(v) == bits(ev) and bits(xr.grad) == bits(eg)


@pytest.mark.filterwarnings("ignore:The .grad attribute of a Tensor that is not a leaf")
def test_array_options_traced():
    """class_weights / pos_weight tensors with reduction='none' under
    opcheck and torch.compile: the shape rules never read their data."""
    rng = np.random.default_rng(8)
    x = torch.from_numpy(rng.standard_normal((20, 5))).requires_grad_()
    labels = torch.from_numpy(rng.integers(0, 5, 20))
    cw = torch.from_numpy(rng.random(5) + 0.5)
    spec = flt._SPECS["sparse_categorical_cross_entropy"]
    args = (x, labels, None,
            *spec.arguments({"from_logits": True, "class_weights": cw}), "none", True)
    torch.library.opcheck(torch.ops.fastloss.sparse_categorical_cross_entropy.default, args)
    torch._dynamo.reset()
    f = torch.compile(lambda x: flt.sparse_categorical_cross_entropy(
        x, labels, from_logits=True, class_weights=cw, reduction="none").sum(),
        fullgraph=True, backend="aot_eager")
    (g,) = torch.autograd.grad(f(x), x)
    (e,) = torch.autograd.grad(flt.sparse_categorical_cross_entropy(
        x, labels, from_logits=True, class_weights=cw, reduction="none").sum(), x)
    assert torch.equal(g, e)


def test_no_gradient_pass_without_requires_grad():
    y, p, _ = case("huber")
    with torch.no_grad():
        v = flt.huber(torch.from_numpy(p).requires_grad_(), torch.from_numpy(y))
    assert v.grad_fn is None and bits(v) == bits(fl.huber(y, p))
    v = flt.huber(torch.from_numpy(p), torch.from_numpy(y))
    assert v.grad_fn is None


# (opcheck's own aot_dispatch test reads .grad of non-leaf copies; PyTorch
# 2.14 warns about it)
@pytest.mark.filterwarnings("ignore:The .grad attribute of a Tensor that is not a leaf")
@pytest.mark.parametrize("name", ["mse", "binary_cross_entropy", "categorical_cross_entropy",
                                  "sparse_categorical_cross_entropy", "dice", "box_iou"])
def test_opcheck(name):
    y, p, opts = case(name, n=80)
    x = torch.from_numpy(p.copy()).requires_grad_()
    spec = flt._SPECS[name]
    for reduction in ("mean", "none"):
        args = (x, torch.from_numpy(y), None, *spec.arguments(opts), reduction, True)
        torch.library.opcheck(getattr(torch.ops.fastloss, name).default, args)


@pytest.mark.parametrize("name,opts", [("huber", {"delta": 0.3}), ("log_cosh", {}),
                                       ("binary_focal", {"from_logits": True, "gamma": 1.5}),
                                       ("categorical_focal", {"from_logits": True}),
                                       ("tversky", {"axis": (1,)}), ("box_iou", {"kind": "diou"})])
# (not ciou: its alpha is held constant in the gradient, torchvision's convention)
def test_gradcheck(name, opts):
    y, p, _ = case(name, n=40, seed=3)
    if name == "tversky":
        y, p = y.reshape(4, 10), p.reshape(4, 10)
    x = torch.from_numpy(p.copy()).requires_grad_()
    t = torch.from_numpy(y)
    assert torch.autograd.gradcheck(lambda x: flt.LOSSES[name](x, t, **opts), (x,), eps=1e-6,
                                    atol=1e-5, rtol=1e-4)
    assert torch.autograd.gradcheck(
        lambda x: flt.LOSSES[name](x, t, reduction="none", **opts), (x,), eps=1e-6, atol=1e-5,
        rtol=1e-4)


def test_compile_fullgraph():
    torch._dynamo.reset()
    rng = np.random.default_rng(4)
    w = torch.from_numpy(rng.standard_normal((16, 10))).requires_grad_()
    xb = torch.from_numpy(rng.standard_normal((64, 16)))
    labels = torch.from_numpy(rng.integers(0, 10, 64))
    target = torch.from_numpy(rng.standard_normal((64, 10)))

    def step(w):
        logits = xb @ w
        return (flt.sparse_categorical_cross_entropy(logits, labels, from_logits=True)
                + 0.5 * flt.huber(logits, target, delta=2.0, reduction="sum"))

    compiled = torch.compile(step, fullgraph=True, backend="aot_eager")
    loss = compiled(w)
    (gw,) = torch.autograd.grad(loss, w)
    eager = step(w)
    (ew,) = torch.autograd.grad(eager, w)
    assert torch.equal(loss, eager) and torch.equal(gw, ew)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_and_bfloat16_compute_in_float32(dtype):
    y, p, _ = case("log_cosh", n=1000, dtype=np.float32)
    x = torch.from_numpy(p).to(dtype).requires_grad_()
    t = torch.from_numpy(y).to(dtype)
    v = flt.log_cosh(x, t)
    v.backward()
    assert v.dtype == dtype and x.grad.dtype == dtype
    ev, eg = fl.log_cosh.value_and_grad(t.float().numpy(), x.detach().float().numpy())
    assert v.item() == torch.tensor(float(ev)).to(dtype).item()
    assert torch.equal(x.grad, torch.from_numpy(eg).to(dtype))


def test_module():
    m = flt.Loss("huber", delta=2.0, reduction="sum")
    assert "huber" in repr(m) and "delta=2.0" in repr(m)
    y, p, _ = case("huber")
    assert bits(m(torch.from_numpy(p), torch.from_numpy(y))) == bits(
        fl.huber(y, p, delta=2.0, reduction="sum"))
    with pytest.raises(TypeError, match="bogus"):
        flt.Loss("huber", bogus=1)
    with pytest.raises(ValueError, match="unknown loss"):
        flt.Loss("nope")


def test_errors():
    x = torch.randn(10, requires_grad=True)
    t = torch.randn(10)
    with pytest.raises(TypeError, match="bogus"):
        flt.huber(x, t, bogus=1.0)
    with pytest.raises(ValueError, match="reduction"):
        flt.huber(x, t, reduction="median")
    with pytest.raises(TypeError, match="tensors"):
        flt.huber(x.detach().numpy(), t)
    with pytest.raises(ValueError, match="delta"):
        flt.huber(x, t, delta=-1.0)
    with pytest.raises(ValueError, match="y_true"):
        flt.huber(x, torch.randn(9))
    v = flt.huber(x, t)
    (g,) = torch.autograd.grad(v, x, create_graph=False)
    with pytest.raises(RuntimeError, match="second derivatives"):
        torch.autograd.grad(flt.huber(x, t), x, create_graph=True)


def test_retain_graph_and_accumulation():
    """A graph kept with retain_graph gives its gradient again (the saved
    gradient is not handed over then); gradients accumulate in .grad."""
    y, p, _ = case("log_cosh")
    x = torch.from_numpy(p.copy()).requires_grad_()
    v = flt.log_cosh(x, torch.from_numpy(y))
    v.backward(retain_graph=True)
    first = x.grad.clone()
    v.backward()
    np.testing.assert_array_equal(x.grad.numpy(), 2 * first.numpy())
    assert bits(first) == bits(fl.log_cosh.grad(y, p))


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # raised inside inductor itself
def test_compile_inductor():
    torch._dynamo.reset()
    y, p, _ = case("huber", n=256)
    x = torch.from_numpy(p.copy()).requires_grad_()
    t = torch.from_numpy(y)
    f = torch.compile(lambda x, t: flt.huber(x, t, delta=0.7) * 2.0, fullgraph=True)
    v = f(x, t)
    (g,) = torch.autograd.grad(v, x)
    ev, eg = fl.huber.value_and_grad(y, p, delta=0.7)
    assert v.item() == float(ev) * 2.0
    np.testing.assert_array_equal(g.numpy(), eg * 2.0)


# ---------------------------------------------------------------------------
# Losses of several inputs


MULTI = sorted(n for n in flt.LOSSES if n in fl.OTHER_LOSSES)


def test_multi_losses_are_operators():
    assert set(MULTI) == set(fl.OTHER_LOSSES) - {"pairwise_ranking", "l2_penalty"}


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("name", MULTI)
def test_multi_value_and_gradients(name, reduction):
    arrays = multi_case(name, np.random.default_rng(5))
    loss = getattr(fl, name)
    tensors = [torch.from_numpy(a.copy()) for a in arrays]
    slots = [flt._SPECS[name].positional.index(a) for a in loss._inputs]
    for i in slots:
        tensors[i].requires_grad_()
    v = flt.LOSSES[name](*tensors, reduction=reduction)
    ev, eg = loss.value_and_grad(*arrays, reduction=reduction)
    eg = eg if isinstance(eg, tuple) else (eg,)
    assert bits(v) == bits(ev)
    v.backward()
    for i, g in zip(slots, eg):
        assert bits(tensors[i].grad) == bits(g)


@pytest.mark.parametrize("name", MULTI)
def test_multi_gradcheck(name):
    arrays = multi_case(name, np.random.default_rng(6))
    spec = flt._SPECS[name]
    slots = [spec.positional.index(a) for a in getattr(fl, name)._inputs]
    tensors = [torch.from_numpy(a.copy()) for a in arrays]
    inputs = tuple(tensors[i].requires_grad_() for i in slots)

    def f(*xs, reduction):
        ts = list(tensors)
        for i, x in zip(slots, xs):
            ts[i] = x
        return flt.LOSSES[name](*ts, reduction=reduction, weights=None)

    assert torch.autograd.gradcheck(lambda *xs: f(*xs, reduction="mean"), inputs)
    if spec.kind != "score_pair":
        assert torch.autograd.gradcheck(lambda *xs: f(*xs, reduction="none"), inputs)
    else:
        with pytest.raises(ValueError, match="none"):
            f(*inputs, reduction="none")


@pytest.mark.filterwarnings("ignore:The .grad attribute of a Tensor that is not a leaf")
def test_multi_broadcast_var_opcheck_and_compile():
    rng = np.random.default_rng(7)
    x = torch.from_numpy(rng.standard_normal((10, 4))).requires_grad_()
    t = torch.from_numpy(rng.standard_normal((10, 4)))
    var = torch.from_numpy(rng.random((10, 1)) + 0.1).requires_grad_()
    v = flt.gaussian_nll(x, t, var)
    assert torch.allclose(v, torch.nn.functional.gaussian_nll_loss(x, t, var), rtol=1e-12)
    v.backward()
    assert var.grad.shape == (10, 1)
    spec = flt._SPECS["triplet_margin"]
    a, p, n = (torch.from_numpy(rng.standard_normal((6, 3))).requires_grad_() for _ in range(3))
    for reduction in ("mean", "none"):
        torch.library.opcheck(torch.ops.fastloss.triplet_margin.default,
                              (a, p, n, None, *spec.arguments({"margin": 0.3}), reduction, True))
    torch._dynamo.reset()
    f = torch.compile(lambda a, p, n: flt.triplet_margin(a, p, n, margin=0.3), fullgraph=True,
                      backend="aot_eager")
    got = f(a, p, n)
    ga = torch.autograd.grad(got, (a, p, n))
    want = flt.triplet_margin(a, p, n, margin=0.3)
    wa = torch.autograd.grad(want, (a, p, n))
    assert torch.equal(got, want) and all(torch.equal(u, w) for u, w in zip(ga, wa))
    assert torch.allclose(want, torch.nn.functional.triplet_margin_loss(a, p, n, margin=0.3))
    with pytest.raises(TypeError, match="tensors"):
        flt.triplet_margin(a, p)
