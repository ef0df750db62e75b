"""fastloss.jax: the losses of several inputs as FFI calls. Values and every
input's gradient are the NumPy call's bits; reduction="none" backward scales
each item's gradient by its cotangent; elementwise inputs broadcast."""

import numpy as np
import pytest

jax = pytest.importorskip("jax")

import jax.numpy as jnp  # noqa: E402

import fastloss as fl  # noqa: E402
import fastloss.jax as flj  # noqa: E402
from adapter_checks import multi_case  # noqa: E402

MULTI = sorted(n for n in flj.LOSSES if n in fl.OTHER_LOSSES)


def bits(x):
    a = np.asarray(x)
    return a.dtype.str, a.shape, a.tobytes()


def slots(name):
    """The differentiable inputs' positions among the arguments."""
    info = fl._core.loss_info(name)
    return [info["args"].index(a) for a in info["inputs"]]


def value_and_grads(name, arrays, **kw):
    where = slots(name)

    def f(*xs):
        args = list(arrays)
        for i, x in zip(where, xs):
            args[i] = x
        return flj.LOSSES[name](*args, **kw)

    return jax.value_and_grad(f, argnums=tuple(range(len(where))))(
        *[arrays[i] for i in where])


def test_multi_losses_are_functions():
    assert set(MULTI) == set(fl.OTHER_LOSSES) - {"pairwise_ranking", "l2_penalty"}
    for name in MULTI:
        assert getattr(flj, name) is flj.LOSSES[name]
        assert fl._core.loss_info(name)["args"][0] in flj.LOSSES[name].__doc__


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("name", MULTI)
def test_value_and_gradients_are_the_numpy_calls(name, reduction):
    arrays = multi_case(name, np.random.default_rng(5), np.float32)
    v, gs = value_and_grads(name, arrays, reduction=reduction)
    ev, eg = getattr(fl, name).value_and_grad(*arrays, reduction=reduction)
    eg = eg if isinstance(eg, tuple) else (eg,)
    assert bits(v) == bits(ev)
    assert [bits(g) for g in gs] == [bits(g) for g in eg]
    # under jit: the same bits
    jv, jgs = jax.jit(lambda *a: value_and_grads(name, list(a), reduction=reduction))(*arrays)
    assert bits(jv) == bits(ev)
    assert [bits(g) for g in jgs] == [bits(g) for g in eg]
    # without differentiation: the value-only call
    assert bits(flj.LOSSES[name](*arrays, reduction=reduction)) == bits(ev)


@pytest.mark.parametrize("name", MULTI)
def test_reduction_none(name):
    arrays = multi_case(name, np.random.default_rng(6), np.float32)
    loss = getattr(fl, name)
    if fl._core.loss_kind(name) == "score_pair":
        with pytest.raises(ValueError, match="none"):
            flj.LOSSES[name](*arrays, reduction="none")
        return
    losses = flj.LOSSES[name](*arrays, reduction="none")
    assert bits(losses) == bits(loss(*arrays, reduction="none"))
    c = np.random.default_rng(7).random(losses.shape).astype(np.float32)
    where = slots(name)

    def f(*xs):
        args = list(arrays)
        for i, x in zip(where, xs):
            args[i] = x
        return jnp.sum(c * flj.LOSSES[name](*args, reduction="none"))

    gs = jax.grad(f, argnums=tuple(range(len(where))))(*[arrays[i] for i in where])
    _, eg = loss.value_and_grad(*arrays, reduction="none")
    eg = eg if isinstance(eg, tuple) else (eg,)
    for g, e in zip(gs, eg):
        s = c.reshape(c.shape + (1,) * (e.ndim - c.ndim))
        np.testing.assert_array_equal(np.asarray(g), e * s)


def test_weights():
    rng = np.random.default_rng(8)
    a, p, n = multi_case("triplet_margin", rng, np.float32)
    w = rng.random(12).astype(np.float32)
    v, gs = value_and_grads("triplet_margin", [a, p, n], weights=w)
    ev, eg = fl.triplet_margin.value_and_grad(a, p, n, weights=w)
    assert bits(v) == bits(ev) and [bits(g) for g in gs] == [bits(g) for g in eg]
    r, f = multi_case("wasserstein_critic", rng, np.float32)
    ws = (rng.random(12).astype(np.float32), rng.random(9).astype(np.float32))
    v, gs = value_and_grads("wasserstein_critic", [r, f], weights=ws)
    ev, eg = fl.wasserstein_critic.value_and_grad(r, f, weights=ws)
    assert bits(v) == bits(ev) and [bits(g) for g in gs] == [bits(g) for g in eg]
    with pytest.raises(ValueError, match="pair"):
        flj.wasserstein_critic(r, f, weights=ws[0])
    with pytest.raises(ValueError, match="pair"):
        flj.wasserstein_critic(r, f, weights=(ws[0], None))
    # a weights shape the core refuses: its message, from the run
    with pytest.raises(Exception, match="weights"):
        flj.triplet_margin(a, p, n, weights=np.ones(5, np.float32)).block_until_ready()


def test_gaussian_nll_broadcasts_var_as_pytorch():
    rng = np.random.default_rng(9)
    x, t = (rng.standard_normal((10, 4)).astype(np.float32) for _ in range(2))
    var = (rng.random((10, 1)) + 0.1).astype(np.float32)
    v, (gx, gvar) = jax.value_and_grad(lambda x, var: flj.gaussian_nll(x, t, var),
                                       argnums=(0, 1))(x, var)
    full = np.broadcast_to(var, x.shape).copy()
    ev, (ex, evar) = fl.gaussian_nll.value_and_grad(x, t, full)
    assert bits(v) == bits(ev) and bits(gx) == bits(ex)
    assert gvar.shape == (10, 1)
    np.testing.assert_allclose(np.asarray(gvar), evar.sum(axis=1, keepdims=True), rtol=1e-6)


def test_vmap_is_one_call_per_member():
    rng = np.random.default_rng(10)
    a, p, n = (rng.standard_normal((3, 6, 4)).astype(np.float32) for _ in range(3))
    got = jax.vmap(lambda a, p, n: flj.triplet_margin(a, p, n, margin=0.5))(a, p, n)
    want = [fl.triplet_margin(a[k], p[k], n[k], margin=0.5) for k in range(3)]
    assert [bits(got[k]) for k in range(3)] == [bits(w) for w in want]
    g = jax.vmap(jax.grad(lambda a, p, n: flj.triplet_margin(a, p, n)))(a, p, n)
    for k in range(3):
        assert bits(g[k]) == bits(fl.triplet_margin.grad(a[k], p[k], n[k])[0])


def test_errors():
    rng = np.random.default_rng(11)
    x1, x2, y = multi_case("cosine_embedding", rng, np.float32)
    with pytest.raises(TypeError, match="takes 3 arrays"):
        flj.cosine_embedding(x1, x2)
    with pytest.raises(TypeError, match="unexpected keyword argument 'foo'"):
        flj.cosine_embedding(x1, x2, y, foo=1.0)
    with pytest.raises(ValueError, match="reduction"):
        flj.cosine_embedding(x1, x2, y, reduction="avg")
    with pytest.raises(ValueError, match="margin"):
        jax.jit(lambda a: flj.triplet_margin(a, a, a, margin=float("nan")))(x1)
    # the target is not differentiated: an error, not a silent zero
    with pytest.raises(NotImplementedError, match="stop_gradient"):
        jax.grad(lambda y: flj.cosine_embedding(x1, x2, y))(y)
    g = jax.grad(lambda y: flj.cosine_embedding(x1, x2, jax.lax.stop_gradient(y)))(y)
    assert not np.any(np.asarray(g))
    with pytest.raises(TypeError, match="real array"):
        flj.triplet_margin(x1.astype(np.complex64), x1, x1)
    # float16 inputs: computed in float32, returned in float16
    h = [a.astype(np.float16) for a in (x1, x2)]
    v = flj.cosine_embedding(h[0], h[1], y)
    assert v.dtype == jnp.float16
    assert float(v) == float(np.float16(fl.cosine_embedding(*(a.astype(np.float32) for a in h),
                                                            y)))


def test_vmap_batches_in_one_call():
    """vmap hands the FFI call the whole batch (unbatched operands with size-1
    batch dimensions, nested vmaps with several): each member's value and
    gradient are its own call's bits, and the jitted graph has one custom call."""
    rng = np.random.default_rng(12)
    p = rng.standard_normal((3, 4, 5, 6)).astype(np.float32)
    t = rng.standard_normal((5, 6)).astype(np.float32)  # shared by every member
    w = rng.random((3, 1, 6)).astype(np.float32)  # batched along the outer vmap only
    f = jax.vmap(jax.vmap(lambda p, w: flj.huber(p, t, delta=0.4, weights=w), in_axes=(0, None)))
    v = f(p, w)
    assert v.shape == (3, 4)
    for i in range(3):
        for j in range(4):
            assert bits(v[i, j]) == bits(fl.huber(t, p[i, j], delta=0.4, weights=w[i]))
    g = jax.vmap(jax.vmap(jax.grad(lambda p: flj.huber(p, t, delta=0.4, reduction="sum"))))(p)
    for i in range(3):
        for j in range(4):
            assert bits(g[i, j]) == bits(fl.huber.grad(t, p[i, j], delta=0.4, reduction="sum"))
    hlo = jax.jit(jax.vmap(lambda p: flj.huber(p, t))).lower(p[0]).as_text()
    assert hlo.count("fastloss_huber") == 1 and "while" not in hlo
    # rows: per-member class axis, labels batched, "none"
    x = rng.standard_normal((3, 7, 5)).astype(np.float32)
    lab = rng.integers(0, 5, (3, 7))
    r = jax.vmap(lambda x, y: flj.sparse_categorical_cross_entropy(
        x, y, from_logits=True, reduction="none"))(x, lab)
    for i in range(3):
        assert bits(r[i]) == bits(fl.sparse_categorical_cross_entropy(
            lab[i], x[i], from_logits=True, reduction="none"))
    # several inputs, an unbatched one
    a, q = rng.standard_normal((2, 3, 6, 4)).astype(np.float32), \
        rng.standard_normal((6, 4)).astype(np.float32)
    v = jax.vmap(jax.vmap(lambda a: flj.triplet_margin(a, q, -q)))(a)
    assert bits(v[1, 2]) == bits(fl.triplet_margin(a[1, 2], q, -q))


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_vmap_of_elementwise_losses_is_one_segmented_pass(reduction):
    """Every operand batched (weights of the members' full shape too): one
    pass with a segment per member, each member its own call's bits."""
    rng = np.random.default_rng(13)
    p, t = (rng.standard_normal((37, 5, 9)).astype(np.float32) for _ in range(2))
    w = rng.random((37, 5, 9)).astype(np.float32)
    for name, opts in (("huber", {"delta": 0.3}), ("log_cosh", {}), ("quantile", {"q": 0.2})):
        f = jax.vmap(jax.value_and_grad(
            lambda p, t, w: flj.LOSSES[name](p, t, weights=w, reduction=reduction, **opts)))
        v, g = f(p, t, w)
        for i in (0, 17, 36):
            ev, eg = getattr(fl, name).value_and_grad(t[i], p[i], weights=w[i],
                                                      reduction=reduction, **opts)
            assert bits(v[i]) == bits(ev) and bits(g[i]) == bits(eg), (name, i)
    # members of no element: NaN means, zero sums, as their own calls
    e = np.zeros((4, 0), np.float32)
    v = jax.vmap(lambda p: flj.mse(p, p, reduction=reduction))(e)
    assert bits(v) == bits(np.full(4, fl.mse(e[0], e[0], reduction=reduction), np.float32))
