"""fastloss.jax: every loss of fastloss.LOSSES but the metrics as a
differentiable JAX function (an XLA FFI call into the same kernels as the
NumPy call). Values and gradients in float32/float64 are the NumPy call's
bits; jit, vmap, value_and_grad work; options are checked at trace time, the
data at run time; half and bfloat16 compute in float32."""

import ast
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

jax = pytest.importorskip("jax")

import jax.numpy as jnp  # noqa: E402

import fastloss as fl  # noqa: E402
import fastloss.jax as flj  # noqa: E402
from fastloss._layout import _layout  # noqa: E402
from fastloss.__main__ import _OPTIONS, _data  # noqa: E402  (the self-check's data)

NAMES = sorted(n for n in flj.LOSSES if n in fl.LOSSES)  # the single-input losses
REDUCTIONS = ("mean", "sum", "none")
JaxRuntimeError = jax.errors.JaxRuntimeError


def x64(on=True):
    """float64 inside the block only (JAX's config context manager)."""
    return jax.enable_x64(on)


def case(name, n=64, dtype=np.float64, seed=0):
    y, p = _data(name, n, dtype, np.random.default_rng(seed))
    return y, p, dict(_OPTIONS.get(name, {}))


def bits(x):
    a = np.asarray(x)
    return a.dtype.str, a.shape, a.tobytes()


def whole(name, opts, nd):
    """The axes of y_pred one loss value spans (a row's classes, ...)."""
    return _layout(fl._core.loss_info(name), opts, nd, strict=False).whole


def expand(c, axes):
    return np.expand_dims(c, axes) if axes else c


def assert_matches_numpy(name, p, y, reduction="mean", weights=None, jit=False, **opts):
    """The JAX call's value, and its gradient through jax.value_and_grad
    (mean, sum) or through sum(c * losses) (none), eager or under jax.jit
    (half the compile time), are the NumPy call's bits."""
    f, ref = flj.LOSSES[name], getattr(fl, name)
    transform = jax.jit if jit else (lambda fn: fn)
    want_v, want_g = ref.value_and_grad(y, p, reduction=reduction, weights=weights, **opts)
    kw = dict(reduction=reduction, weights=weights, **opts)
    assert bits(f(p, y, **kw)) == bits(ref(y, p, **kw)) == bits(want_v)
    if reduction == "none":
        c = np.asarray(np.random.default_rng(1).random(np.shape(want_v)), p.dtype)
        g = transform(jax.grad(lambda q: jnp.sum(c * f(q, y, **kw))))(p)
        # each item's gradient times its cotangent, broadcast over its axes
        assert bits(g) == bits(want_g * expand(c, whole(name, opts, p.ndim)))
    else:
        v, g = transform(jax.value_and_grad(lambda q: f(q, y, **kw)))(p)
        assert bits(v) == bits(want_v) and bits(g) == bits(want_g)


# ---------------------------------------------------------------------------


def test_every_loss_is_exposed():
    want = {n for n in fl.LOSSES if not fl._core.loss_info(n)["metric"]}
    assert len(want) >= 30 and set(NAMES) == want
    assert set(flj.LOSSES) - want <= set(fl.OTHER_LOSSES)
    assert set(flj.__all__) >= want | {"LOSSES"}
    n_aliases = 0
    for name in NAMES:
        f = flj.LOSSES[name]
        assert getattr(flj, name) is f and f.__name__ == name
        for alias in fl._core.loss_info(name)["aliases"]:
            assert getattr(flj, alias) is f and alias in flj.__all__
            n_aliases += 1
        assert f"fastloss.{name}" in f.__doc__ and "y_pred" in f.__doc__
    assert n_aliases >= 4 and flj.bce is flj.binary_cross_entropy
    assert flj.__doc__ and "custom_vjp" in flj.__doc__


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("name", NAMES)
def test_value_and_gradient_are_the_numpy_calls(name, dtype):
    y, p, opts = case(name, dtype=dtype)
    with x64(dtype == np.float64):
        for reduction in REDUCTIONS:
            # eager in float64, under jit in float32 (test_jit_is_eager: the same bits)
            assert_matches_numpy(name, p, y, reduction, jit=dtype == np.float32, **opts)


def _representative():
    rng = np.random.default_rng(3)
    cw = (rng.random(10) + 0.5).astype(np.float32)
    seg_y = (rng.random((2, 3, 4, 5)) < 0.3).astype(np.float32)
    seg_p = rng.random((2, 3, 4, 5)).astype(np.float32)
    cce_y, cce_p, _ = case("categorical_cross_entropy", dtype=np.float32)
    return [
        ("mse", None, None, {}),
        ("huber", None, None, {"delta": 0.3}),
        ("log_cosh", None, None, {}),
        ("binary_cross_entropy", None, None, {"from_logits": True}),
        ("sparse_categorical_cross_entropy", None, None,
         {"from_logits": True, "ignore_index": 3, "class_weights": cw}),
        ("categorical_cross_entropy", None, None, {"from_logits": True, "label_smoothing": 0.1}),
        ("dice", seg_y, seg_p, {"axis": (1, 2, 3)}),
        ("dice", seg_y, seg_p, {"axis": None}),
        ("box_iou", None, None, {"kind": "giou"}),
        ("categorical_cross_entropy", cce_y.T.copy(), cce_p.T.copy(),
         {"axis": 0, "from_logits": True}),
    ]


JIT_IDS = ["mse", "huber", "log_cosh", "bce_logits", "sparse_cce_options", "cce_smoothing",
           "dice_axes123", "dice_all", "giou", "cce_axis0"]


@pytest.mark.parametrize("i", range(len(JIT_IDS)), ids=JIT_IDS)
def test_jit_is_eager(i):
    name, y, p, opts = _representative()[i]
    if y is None:
        y, p, _ = case(name, dtype=np.float32)
    f = flj.LOSSES[name]
    vg = jax.value_and_grad(lambda q, t: f(q, t, **opts))
    ev, eg = vg(p, y)
    jv, jg = jax.jit(vg)(p, y)
    assert bits(jv) == bits(ev) and bits(jg) == bits(eg)
    want_v, want_g = getattr(fl, name).value_and_grad(y, p, **opts)
    assert bits(jv) == bits(want_v) and bits(jg) == bits(want_g)
    # the primal alone (no gradient pass), and per-item losses, under jit
    assert bits(jax.jit(lambda q, t: f(q, t, **opts))(p, y)) == bits(want_v)
    none = jax.jit(lambda q, t: f(q, t, reduction="none", **opts))(p, y)
    assert bits(none) == bits(getattr(fl, name)(y, p, reduction="none", **opts))


def test_jit_traced_array_options():
    """class_weights / pos_weight / weights passed as jit arguments."""
    rng = np.random.default_rng(4)
    p = rng.standard_normal((12, 6)).astype(np.float32)
    labels = rng.integers(-1, 6, 12)
    cw = (rng.random(6) + 0.5).astype(np.float32)
    f = jax.jit(jax.value_and_grad(lambda q, t, c: flj.sparse_categorical_cross_entropy(
        q, t, from_logits=True, ignore_index=-1, class_weights=c)))
    want = fl.sparse_categorical_cross_entropy.value_and_grad(
        labels, p, from_logits=True, ignore_index=-1, class_weights=cw)
    assert list(map(bits, f(p, labels, cw))) == list(map(bits, want))
    y = (rng.random((12, 6)) < 0.5).astype(np.float32)
    pw, w = (rng.random(6) + 0.5).astype(np.float32), rng.random((12, 1)).astype(np.float32)
    g = jax.jit(jax.value_and_grad(lambda q, t, a, b: flj.binary_cross_entropy(
        q, t, from_logits=True, pos_weight=a, weights=b)))
    want = fl.binary_cross_entropy.value_and_grad(y, p, from_logits=True, pos_weight=pw,
                                                  weights=w)
    assert list(map(bits, g(p, y, pw, w))) == list(map(bits, want))


@pytest.mark.parametrize("name,opts,shape", [
    ("huber", {"delta": 0.5}, (3, 7, 5)),
    ("sparse_categorical_cross_entropy", {"from_logits": True}, (3, 7, 5)),
    ("dice", {}, (3, 4, 6)),
    ("box_iou", {"kind": "diou"}, (3, 5, 4)),
])
def test_vmap_is_a_loop(name, opts, shape):
    rng = np.random.default_rng(5)
    p = rng.random(shape).astype(np.float32)
    if name == "sparse_categorical_cross_entropy":
        y = rng.integers(0, shape[-1], shape[:-1])
    elif name == "box_iou":
        p = np.concatenate([p[..., :2], p[..., :2] + p[..., 2:] + 0.5], -1)
        y = p + rng.standard_normal(shape).astype(np.float32) * 0.2
    else:
        y = (rng.random(shape) < 0.4).astype(np.float32)
    f = flj.LOSSES[name]
    for reduction in ("mean", "none"):
        loss = lambda q, t: f(q, t, reduction=reduction, **opts)  # noqa: E731
        scalar = lambda q, t: jnp.sum(loss(q, t) * 1.5)  # noqa: E731
        v = jax.vmap(loss)(p, y)
        g = jax.vmap(jax.grad(scalar))(p, y)
        loop_v = np.stack([loss(p[i], y[i]) for i in range(len(p))])
        loop_g = np.stack([jax.grad(scalar)(p[i], y[i]) for i in range(len(p))])
        assert bits(v) == bits(loop_v) and bits(g) == bits(loop_g)
        want = np.stack([getattr(fl, name)(y[i], p[i], reduction=reduction, **opts)
                         for i in range(len(p))])
        assert bits(v) == bits(want)
        if reduction == "mean":
            assert v.shape == (len(p),)
    # y_true shared by the batch (not mapped), weights mapped
    w_shape = {"huber": (3, 7, 1), "dice": (3,)}.get(name, shape[:-1])
    w = rng.random(w_shape).astype(np.float32)
    v = jax.vmap(lambda q, ww: f(q, y[0], weights=ww, **opts))(p, w)
    assert bits(v) == bits(np.stack([getattr(fl, name)(y[0], p[i], weights=w[i], **opts)
                                     for i in range(len(p))]))


def test_weights_and_array_options():
    rng = np.random.default_rng(2)
    y = (rng.random((50, 8)) < 0.5).astype(np.float32)
    p = rng.standard_normal((50, 8)).astype(np.float32)
    pw = (rng.random(8) + 0.5).astype(np.float32)
    for w in (rng.random((50, 8)), rng.random((50, 1)), rng.random(8), np.float64(0.7)):
        w = np.asarray(w, np.float32)
        for reduction in REDUCTIONS:
            assert_matches_numpy("mse", p, y, reduction, weights=w)
            assert_matches_numpy("binary_cross_entropy", p, y, reduction, weights=w,
                                 pos_weight=pw, from_logits=True)
    labels = rng.integers(-1, 8, 50)
    cw = (rng.random(8) + 0.5).astype(np.float32)
    row_w = rng.random(50).astype(np.float32)
    for reduction in REDUCTIONS:
        assert_matches_numpy("sparse_categorical_cross_entropy", p, labels, reduction,
                             weights=row_w, from_logits=True, ignore_index=-1, class_weights=cw)
        assert_matches_numpy("nll", p, labels, reduction, ignore_index=-1, class_weights=cw)
        assert_matches_numpy("categorical_cross_entropy", p, y, reduction, weights=row_w,
                             from_logits=True)
        assert_matches_numpy("multilabel_soft_margin", p, y, reduction, class_weights=cw)
    # per-region weights over a tuple of axes, float64
    with x64():
        yr = (rng.random((4, 3, 8, 8)) < 0.4).astype(np.float64)
        pr = rng.random((4, 3, 8, 8))
        for reduction in REDUCTIONS:
            assert_matches_numpy("dice", pr, yr, reduction, weights=np.array([1.0, 2, 3]),
                                 axis=(0, 2, 3))
    # a 0-d array pos_weight is the scalar's value
    assert bits(flj.bce(p, y, pos_weight=jnp.asarray(2.0), from_logits=True)) == bits(
        fl.bce(y, p, pos_weight=2.0, from_logits=True))
    assert bits(flj.binary_focal(p, y, alpha=None, from_logits=True)) == bits(
        fl.binary_focal(y, p, alpha=None, from_logits=True))


# ---------------------------------------------------------------------------
# dtypes


def _half_types():
    ml_dtypes = pytest.importorskip("ml_dtypes")
    return [np.float16, ml_dtypes.bfloat16]


@pytest.mark.parametrize("name", ["log_cosh", "huber", "binary_cross_entropy",
                                  "sparse_categorical_cross_entropy", "categorical_focal",
                                  "dice", "box_iou"])
def test_half_and_bfloat16_compute_in_float32(name):
    y, p32, opts = case(name, dtype=np.float32)
    ref = getattr(fl, name)
    for half in _half_types():
        ph = p32.astype(half)
        yh = y.astype(half) if y.dtype.kind == "f" else y  # labels stay integers
        y32 = yh.astype(np.float32) if y.dtype.kind == "f" else y
        for reduction in ("mean", "none"):
            v = flj.LOSSES[name](ph, yh, reduction=reduction, **opts)
            want_v = ref(y32, ph.astype(np.float32), reduction=reduction, **opts)
            # the float32 results rounded once, as the NumPy call on half gives
            assert v.dtype == np.dtype(half)
            assert bits(v) == bits(np.asarray(want_v).astype(half))
            assert bits(v) == bits(ref(yh, ph, reduction=reduction, **opts))
        g = jax.grad(lambda q: flj.LOSSES[name](q, yh, **opts))(ph)
        want_g = ref.grad(y32, ph.astype(np.float32), **opts)
        assert g.dtype == np.dtype(half) and bits(g) == bits(want_g.astype(half))


def test_integer_predictions_and_label_dtypes():
    rng = np.random.default_rng(6)
    pi = rng.integers(-3, 4, (6, 5))
    yf = rng.standard_normal((6, 5))
    for on, dt in ((False, np.float32), (True, np.float64)):
        with x64(on):
            for pred in (pi, pi.astype(np.int8), pi > 0):
                v = flj.huber(pred, yf.astype(dt), delta=0.5)
                assert bits(v) == bits(fl.huber(yf.astype(dt), pred.astype(dt), delta=0.5))
                assert v.dtype == jnp.result_type(float) == dt
    y, p, opts = case("sparse_categorical_cross_entropy", dtype=np.float32)
    opts.update(ignore_index=3)
    want = fl.sparse_categorical_cross_entropy.value_and_grad(y, p, **opts)
    for on, dtypes in ((False, [np.int8, np.int16, np.int32, np.uint8, np.uint16, np.uint32,
                                np.int64]),
                       (True, [np.int64, np.uint64, np.int8, np.uint32])):
        with x64(on):
            for dt in dtypes:
                got = jax.value_and_grad(lambda q, t: flj.sparse_cce(q, t, **opts))(
                    p, y.astype(dt))
                assert list(map(bits, got)) == list(map(bits, want)), dt
    with x64():
        bad = y.astype(np.uint64)
        bad[2] = 2**63 + 1  # past int64: an invalid label, never a class
        with pytest.raises(JaxRuntimeError, match=r"outside \[0, 10\)"):
            flj.sparse_cce(p, bad, **opts).block_until_ready()
    with pytest.raises(TypeError, match="real"):
        flj.mse(p.astype(np.complex64), p)
    with pytest.raises(TypeError, match="integer"):
        flj.sparse_cce(p, y.astype(np.float32))
    with pytest.raises(TypeError, match="integer"):
        flj.nll(p, y > 0)


# ---------------------------------------------------------------------------
# errors


def test_option_errors_at_trace_time():
    rng = np.random.default_rng(7)
    p = rng.standard_normal((10, 4)).astype(np.float32)
    t = rng.standard_normal((10, 4)).astype(np.float32)
    for call, exc, msg in [
        (lambda q: flj.huber(q, t, bogus=1.0), TypeError, "bogus"),
        (lambda q: flj.huber(q, t, delta=-1.0), ValueError, "delta"),
        (lambda q: flj.huber(q, t, reduction="avg"), ValueError, "reduction"),
        (lambda q: flj.dice(q, t, axis=5), ValueError, "axis"),
        (lambda q: flj.categorical_cross_entropy(q, t, label_smoothing=2.0), ValueError,
         "label_smoothing"),
        (lambda q: flj.box_iou(q, t, kind="nope"), ValueError, "kind"),
    ]:
        with pytest.raises(exc, match=msg):
            call(p)
        # under jit: raised while tracing, before anything is compiled or runs
        with pytest.raises(exc, match=msg):
            jax.jit(call).trace(p)
        with pytest.raises(exc, match=msg):
            jax.jit(jax.grad(call))(p)


def test_data_errors_at_run_time():
    rng = np.random.default_rng(8)
    p = rng.standard_normal((10, 4)).astype(np.float32)
    labels = rng.integers(0, 4, 10)
    labels[6] = 4
    for call, msg in [
        (lambda q: flj.sparse_cce(q, labels), r"label 4 at position \(6,\), outside \[0, 4\)"),
        (lambda q: flj.mse(q, p[:9]), "must have the same shape"),
        (lambda q: flj.mse(q, p, weights=np.ones(3)), "cannot be broadcast"),
        (lambda q: flj.sparse_cce(q, labels[:9]), "y_true"),
        (lambda q: flj.sparse_cce(q, labels, class_weights=np.ones(3)), "class_weights"),
    ]:
        for fn in (call, jax.jit(call), jax.grad(call)):
            with pytest.raises(JaxRuntimeError, match=msg):
                jax.block_until_ready(fn(p))
    # the NumPy call's message, word for word
    with pytest.raises(ValueError) as np_err:
        fl.sparse_cce(labels, p)
    with pytest.raises(JaxRuntimeError) as jax_err:
        flj.sparse_cce(p, labels).block_until_ready()
    assert str(np_err.value) in str(jax_err.value)


def test_gradient_to_y_pred_only():
    rng = np.random.default_rng(9)
    p = rng.standard_normal((8, 5)).astype(np.float32)
    t = rng.standard_normal((8, 5)).astype(np.float32)
    w = rng.random(5).astype(np.float32)
    labels = rng.integers(0, 5, 8)
    for fn, arg in [
        (lambda a: flj.huber(p, a), t),
        (lambda a: flj.huber(p, t, weights=a), w),
        (lambda a: flj.bce(p, t > 0, pos_weight=a, from_logits=True), w),
        (lambda a: flj.sparse_cce(p, labels, class_weights=a), w),
    ]:
        with pytest.raises(NotImplementedError, match="stop_gradient"):
            jax.grad(fn)(arg)
    gp, gt = jax.grad(lambda q, a: flj.huber(q, jax.lax.stop_gradient(a), delta=0.5),
                      argnums=(0, 1))(p, t)
    assert bits(gp) == bits(fl.huber.grad(t, p, delta=0.5)) and not np.any(gt)
    gp, gw = jax.grad(lambda q, a: flj.huber(q, t, weights=jax.lax.stop_gradient(a)),
                      argnums=(0, 1))(p, w)
    assert bits(gp) == bits(fl.huber.grad(t, p, weights=w)) and not np.any(gw)
    # no second derivatives, nor forward mode
    f = lambda q: flj.huber(q, t)  # noqa: E731
    for second in (lambda: jax.hessian(f)(p),
                   lambda: jax.grad(lambda q: jnp.sum(jax.grad(f)(q)))(p),
                   lambda: jax.jvp(f, (p,), (p,))):
        with pytest.raises(Exception):  # noqa: B017
            jax.block_until_ready(second())


def test_empty_losses_are_checked():
    """XLA runs no call whose results are all empty: such calls are checked
    at trace time by the NumPy call on zeros of their shapes."""
    z2, z3 = np.zeros((0, 2), np.float32), np.zeros((0, 3), np.float32)
    cases = [
        ("box_iou", (z2, z2), {}),  # boxes of 2 coordinates
        ("mse", (np.zeros((2, 0), np.float32), np.zeros(0, np.float32)), {}),
        ("mse", (z2, z2), {"weights": np.ones(3, np.float32)}),
        ("sparse_cce", (np.zeros((0, 4), np.float32), np.zeros(0, np.int64)),
         {"class_weights": np.ones(3, np.float32)}),
        ("triplet_margin", (z3, z3, z2), {}),
    ]
    for name, arrays, kw in cases:
        numpy_args = arrays if name == "triplet_margin" else arrays[::-1]
        with pytest.raises(ValueError) as want:
            getattr(fl, name)(*numpy_args, reduction="none", **kw)
        with pytest.raises(ValueError) as got:
            jax.jit(lambda *a: getattr(flj, name)(*a, reduction="none", **kw)).trace(*arrays)
        assert str(got.value) == str(want.value)
    # empty and consistent: an empty result, as NumPy's
    v = flj.mse(z2, z2, reduction="none")
    assert v.shape == (0, 2) and v.dtype == jnp.float32


# ---------------------------------------------------------------------------
# fuzz: never a crash, always the NumPy call's answer or its kind of error

FUZZ = textwrap.dedent(r'''
    import sys, traceback
    import numpy as np, jax, jax.numpy as jnp
    import fastloss as fl, fastloss.jax as flj
    from jax.errors import JaxRuntimeError

    rng = np.random.default_rng(int(sys.argv[1]))
    N = int(sys.argv[2])
    LOSSES = {"mse": {}, "huber": {"delta": 0.7}, "quantile": {"q": 0.3},
              "binary_cross_entropy": {"from_logits": True, "pos_weight": 1.5},
              "categorical_cross_entropy": {"from_logits": True}, "cosine_similarity": {},
              "sparse_categorical_cross_entropy": {"from_logits": True}, "nll": {},
              "multi_margin": {"margin": 0.5}, "dice": {}, "tversky": {"alpha": 0.3},
              "box_iou": {"kind": "diou"}}
    DTYPES = [np.float32, np.float64, np.float16]
    try:
        import ml_dtypes
        DTYPES.append(ml_dtypes.bfloat16)
    except ImportError:
        pass

    def shape(rank=None):
        rank = int(rng.integers(0, 5)) if rank is None else rank
        return tuple(int(d) for d in rng.integers(0, 4, rank))

    def make(name):
        driver = fl._core.loss_info(name)["driver"]
        dt = DTYPES[rng.integers(len(DTYPES))]
        s = shape()
        if driver == "boxes" and rng.random() < 0.8:
            s = s[:-1] + (4,) if s else (4,)
        p = (rng.standard_normal(s) * 2).astype(dt)
        opts = dict(LOSSES[name])
        if driver == "label_rows":
            y = rng.integers(-1 if rng.random() < 0.2 else 0, 4, s[:-1])
            if rng.random() < 0.3:
                opts["ignore_index"] = -1
        else:
            y = (rng.random(s) < 0.5).astype(dt) if driver != "boxes" else p + 0.1
        if driver in ("dense_rows", "label_rows") and rng.random() < 0.3:
            opts["axis"] = int(rng.integers(-3, 3))
        if driver == "regions":
            opts["axis"] = [None, 0, -1, (0, 1), (1, 0, 2)][rng.integers(5)]
        if rng.random() < 0.15:  # mismatched shapes
            y = y.reshape(-1)[:max(y.size - 1, 0)] if rng.random() < 0.5 else \
                rng.integers(0, 2, shape()).astype(y.dtype)
        w = None
        if rng.random() < 0.25:
            w = rng.random(shape(len(s)) if rng.random() < 0.3 else
                           tuple(d if rng.random() < 0.5 else 1 for d in s)).astype(dt)
        return p, np.asarray(y), w, opts

    def bits(x):
        a = np.asarray(x)
        return a.dtype.str, a.shape, a.tobytes()

    fails, counts = [], {"ok": 0, "trace": 0, "run": 0}
    for i in range(N):
        name = list(LOSSES)[i % len(LOSSES)]
        p, y, w, opts = make(name)
        r = ["mean", "sum", "none"][rng.integers(3)]
        desc = (name, r, p.dtype.name, p.shape, y.dtype.name, y.shape,
                None if w is None else w.shape, opts)
        try:
            want = getattr(fl, name).value_and_grad(y, p, reduction=r, weights=w, **opts)
        except (ValueError, TypeError) as e:
            want = e
        f = flj.LOSSES[name]
        call = lambda q: f(q, y, reduction=r, weights=w, **opts)
        try:
            v = jax.block_until_ready(call(p))
            if r == "none":
                g = jax.grad(lambda q: jnp.sum(call(q)))(p)
            else:
                v2, g = jax.value_and_grad(call)(p)
                assert bits(v2) == bits(v), "value_and_grad value"
            got = (v, jax.block_until_ready(g))
            kind = "ok"
        except JaxRuntimeError as e:
            got, kind = e, "run"
        except (ValueError, TypeError) as e:
            got, kind = e, "trace"
        except Exception as e:
            fails.append((desc, "unexpected " + "".join(traceback.format_exception(e))[-800:]))
            continue
        counts[kind] += 1
        if isinstance(want, Exception):
            if kind == "ok":
                fails.append((desc, f"JAX accepted what NumPy refused: {want}"))
            elif kind == "trace" and type(got) is not type(want):
                fails.append((desc, f"NumPy {want!r} JAX {got!r}"))
            elif kind == "run" and str(want) not in str(got):
                fails.append((desc, f"NumPy {want!r} JAX {got!r}"))
        elif kind != "ok":
            fails.append((desc, f"NumPy accepted, JAX {got!r}"))
        elif [bits(x) for x in got] != [bits(x) for x in want]:
            fails.append((desc, f"different bits {got} {want}"))
    print("COUNTS", counts)
    for desc, why in fails:
        print("FAIL", desc, why)
    sys.exit(1 if fails else 0)
''')


def test_fuzz_in_a_subprocess():
    root = os.path.dirname(os.path.dirname(fl.__file__))
    env = dict(os.environ, JAX_ENABLE_X64="1", JAX_PLATFORMS="cpu",
               PYTHONPATH=os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]))
    res = subprocess.run([sys.executable, "-W", "error", "-c", FUZZ, "11", "96"], env=env,
                         capture_output=True, text=True, timeout=600)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-6000:]
    counts = ast.literal_eval(out.split("COUNTS", 1)[1].splitlines()[0].strip())
    assert counts["ok"] >= 30 and counts["trace"] + counts["run"] >= 10, counts


# ---------------------------------------------------------------------------


def test_training_loop():
    optax = pytest.importorskip("optax")
    rng = np.random.default_rng(10)
    x = rng.standard_normal((64, 5)).astype(np.float32)
    target = (x @ rng.standard_normal((5, 3)) + 0.1 * rng.standard_normal((64, 3))).astype(
        np.float32)
    target[::16] += 5.0  # outliers: the linear part of huber
    opt = optax.sgd(0.3)

    def fit(loss):
        def objective(params):
            return loss(x @ params["w"] + params["b"], target)

        @jax.jit
        def step(params, state):
            value, grads = jax.value_and_grad(objective)(params)
            updates, state = opt.update(grads, state)
            return optax.apply_updates(params, updates), state, value

        params = {"w": jnp.zeros((5, 3)), "b": jnp.zeros(3)}
        state, values = opt.init(params), []
        for _ in range(50):
            params, state, value = step(params, state)
            values.append(float(value))
        return params, np.array(values)

    params, values = fit(lambda q, t: flj.huber(q, t, delta=1.0))
    ref_params, ref_values = fit(
        lambda q, t: jnp.mean(optax.losses.huber_loss(q, t, delta=1.0)))
    assert values[-1] < values[0] / 3
    np.testing.assert_allclose(values, ref_values, rtol=1e-5)
    for k in params:
        np.testing.assert_allclose(params[k], ref_params[k], rtol=1e-5, atol=1e-6)
