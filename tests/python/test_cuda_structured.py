"""Part 2 of the GPU losses (skipped without a GPU): the region losses and
box_iou (cuda/src/groups.cu), the array pos_weight, the adversarial losses
of score arrays and the elementwise losses of two inputs, against the CPU result on the same data: axes, weights,
strides, out=, dtypes, streams, bit-identical runs, errors as on the CPU. The
tolerances are explained in cuda_checks.py.
"""

import re

import numpy as np
import pytest

import fastloss as fl
from cuda_checks import (
    BCE, DTYPES, LIBS, REDUCTIONS, SENTINEL, assert_gpu_close, check_kinds, config_id, cpu_results, device_of,
    dtype_name, lib_module, make_data, make_part2_data, make_scores, needs_gpu, on_device, streams, to_device,
    to_host,
)

# --------------------------------------------------------------------------
# Part 2 on the GPU: region losses, box_iou, array pos_weight, score losses.
# --------------------------------------------------------------------------

REGION_SHAPE = (3, 4, 33, 65)  # (N, C, H, W): several blocks per score, odd sizes
REGION_CONFIGS = [
    ("dice", {}), ("dice", {"from_logits": True, "axis": (2, 3)}), ("dice", {"squared": True, "smooth": 1.0}),
    ("jaccard", {}), ("jaccard", {"from_logits": True, "axis": (2, 3)}),
    ("tversky", {"alpha": 0.3, "beta": 0.7}), ("tversky", {"from_logits": True, "axis": (1, 2, 3)}),
    ("focal_tversky", {}), ("focal_tversky", {"gamma": 1.5, "from_logits": True, "axis": (2, 3), "squared": True}),
]
DICE_AXES = [None, 1, -1, (2, 3), (1, 2, 3), (0, 2, 3), [3, 0], ()]
BOX_SHAPE = (4, 257, 4)
BOX_KINDS = ["iou", "giou", "diou", "ciou"]


def gpu_against_cpu(fn, lib, dtype, reduction, yd, pd, yh, ph, what, weights=None, host_weights=None, **opts):
    """value, grad and value_and_grad of ``fn`` on device arrays against the
    CPU on the same (rounded) host data."""
    kw = dict(reduction=reduction, **opts)
    if weights is not None:
        kw["weights"] = weights
    v = fn(yd, pd, **kw)
    g = fn.grad(yd, pd, **kw)
    v2, g2 = fn.value_and_grad(yd, pd, **kw)
    cpu_kw = dict(opts, reduction=reduction)
    (cv32, cg32), (cv64, cg64) = cpu_results(fn, yh, ph, weights=host_weights, **cpu_kw)
    dev = device_of(pd)
    check_kinds(lib, v, g, reduction, dtype, tuple(pd.shape), dev, what, losses_shape=cv64.shape)
    check_kinds(lib, v2, g2, reduction, dtype, tuple(pd.shape), dev, what + " value_and_grad",
                losses_shape=cv64.shape)
    stored = reduction == "none"
    assert_gpu_close(to_host(v), cv32, cv64, dtype, what + " value", stored=stored)
    assert_gpu_close(to_host(g), cg32, cg64, dtype, what + " grad")
    assert_gpu_close(to_host(v2), cv32, cv64, dtype, what + " value_and_grad value", stored=stored)
    assert_gpu_close(to_host(g2), cg32, cg64, dtype, what + " value_and_grad grad")


@needs_gpu
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("lib", LIBS)
@pytest.mark.parametrize("config", REGION_CONFIGS, ids=config_id)
def test_regions_against_cpu(config, lib, dtype, reduction):
    name, opts = config
    y, p = make_part2_data(name, opts, REGION_SHAPE)
    (yd, pd), (yh, ph) = on_device(lib, dtype, y, p)
    gpu_against_cpu(getattr(fl, name), lib, dtype, reduction, yd, pd, yh, ph,
                    f"{name}{opts} {lib} {dtype} {reduction}", **opts)


@needs_gpu
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("lib", LIBS)
@pytest.mark.parametrize("axis", DICE_AXES, ids=repr)
def test_dice_axis(axis, lib, dtype, reduction):
    y, p = make_part2_data("dice", {"from_logits": True}, REGION_SHAPE, seed=1)
    (yd, pd), (yh, ph) = on_device(lib, dtype, y, p)
    gpu_against_cpu(fl.dice, lib, dtype, reduction, yd, pd, yh, ph, f"dice axis={axis!r} {lib} {dtype} {reduction}",
                    axis=axis, from_logits=True)


@needs_gpu
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("lib", LIBS)
@pytest.mark.parametrize("kind", BOX_KINDS)
def test_box_iou_against_cpu(kind, lib, dtype, reduction):
    y, p = make_part2_data("box_iou", {}, BOX_SHAPE)
    (yd, pd), (yh, ph) = on_device(lib, dtype, y, p)
    gpu_against_cpu(fl.box_iou, lib, dtype, reduction, yd, pd, yh, ph, f"box_iou {kind} {lib} {dtype} {reduction}",
                    kind=kind)


PART2_WEIGHTS = [
    # (loss, options, weights shape (None: a scalar), the weights' dtype: "same" or float64 (converted))
    ("dice", {"axis": (2, 3)}, (REGION_SHAPE[0], 1), "same"),   # per sample, over (N, C) scores
    ("dice", {"axis": (2, 3)}, (REGION_SHAPE[1],), "same"),     # per class
    ("tversky", {"axis": (2, 3)}, REGION_SHAPE[:2], "float64"),
    ("focal_tversky", {"axis": (1, 2, 3)}, None, "same"),
    ("jaccard", {"axis": -1}, (REGION_SHAPE[2],), "same"),
    ("box_iou", {"kind": "giou"}, BOX_SHAPE[:-1], "same"),
    ("box_iou", {"kind": "ciou"}, (BOX_SHAPE[0], 1), "float64"),
    ("box_iou", {"kind": "diou"}, None, "same"),
]


@needs_gpu
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("lib", LIBS)
@pytest.mark.parametrize("case", PART2_WEIGHTS, ids=lambda c: f"{c[0]}-{c[2]}-{c[3]}")
def test_part2_weights(case, lib, dtype, reduction):
    name, opts, wshape, wdtype = case
    shape = BOX_SHAPE if name == "box_iou" else REGION_SHAPE
    y, p = make_part2_data(name, opts, shape, seed=5)
    (yd, pd), (yh, ph) = on_device(lib, dtype, y, p)
    if wshape is None:
        wd = wh = 2.5
    else:
        w = np.random.default_rng(6).uniform(0.5, 2.0, wshape)
        if wdtype == "float64":
            wd = to_device(lib, w, "float64")
            wh = to_host(to_device(lib, w, dtype))  # what y_pred's dtype holds
        else:
            (wd,), (wh,) = on_device(lib, dtype, w)
    gpu_against_cpu(getattr(fl, name), lib, dtype, reduction, yd, pd, yh, ph,
                    f"{name}{opts} weights {wshape} {wdtype} {lib} {dtype} {reduction}",
                    weights=wd, host_weights=wh, **opts)


def part2_layouts(lib, dtype, name, shape, seed):
    """(name, y_true view, y_pred view, y_true host, y_pred host): strided
    device views (every other element of the last axis, or every other box;
    transposed; boxes as the columns of a (4, n) array; a broadcast y_true)."""
    mod = lib_module(lib)
    out = []
    if name == "box_iou":
        y, p = make_part2_data(name, {}, (2 * shape[0],) + shape[1:], seed=seed)
        (yd, pd), _ = on_device(lib, dtype, y, p)
        out.append(("every_other_box", yd[::2], pd[::2]))
        (yc, pc), _ = on_device(lib, dtype, np.ascontiguousarray(y[: shape[0]].T), np.ascontiguousarray(p[: shape[0]].T))
        out.append(("columns", yc.T, pc.T))
        if lib == "cupy":
            out.append(("reversed", yd[::-1], pd[::-1]))
    else:
        y, p = make_part2_data(name, {"from_logits": True}, shape[:-1] + (2 * shape[-1],), seed=seed)
        (yd, pd), _ = on_device(lib, dtype, y, p)
        out.append(("last_axis_step_2", yd[..., ::2], pd[..., 1::2]))
        rev = tuple(range(yd.ndim))[::-1]
        if lib == "torch":
            out.append(("transposed", yd.permute(*rev), pd.permute(*rev)))
        else:
            out.append(("transposed", yd.transpose(rev), pd.transpose(rev)))
        if lib == "cupy":
            out.append(("broadcast", mod.broadcast_to(yd[:1], yd.shape), pd))
        else:
            out.append(("broadcast", yd[:1].expand(*yd.shape), pd))
    return [(n, a, b, to_host(a), to_host(b)) for n, a, b in out]


@needs_gpu
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("lib", LIBS)
@pytest.mark.parametrize("config", [("dice", {"axis": (2, 3), "from_logits": True}), ("dice", {"axis": None}),
                                    ("tversky", {"axis": 1, "alpha": 0.7, "beta": 0.3}),
                                    ("box_iou", {"kind": "giou"}), ("box_iou", {"kind": "ciou"})], ids=config_id)
def test_part2_strided_inputs(config, lib, dtype):
    name, opts = config
    fn = getattr(fl, name)
    shape = (64, 4) if name == "box_iou" else (3, 4, 17, 33)
    for layout, yd, pd, yh, ph in part2_layouts(lib, dtype, name, shape, seed=13):
        for reduction in REDUCTIONS:
            gpu_against_cpu(fn, lib, dtype, reduction, yd, pd, yh, ph, f"{name}{opts} {lib} {dtype} {layout} {reduction}",
                            **opts)
    # out=: every other column of a wider buffer; the rest is not touched
    y, p = make_part2_data(name, opts, shape, seed=14)
    (yd, pd), (yh, ph) = on_device(lib, dtype, y, p)
    (buf,), (before,) = on_device(lib, dtype, np.full(shape[:-1] + (2 * shape[-1],), SENTINEL))
    view = buf[..., ::2]
    v, g = fn.value_and_grad(yd, pd, out=view, **opts)
    assert g is view
    (cv32, cg32), (cv64, cg64) = cpu_results(fn, yh, ph, **opts)
    assert_gpu_close(to_host(v), cv32, cv64, dtype, f"{name} {lib} {dtype} out value", stored=False)
    assert_gpu_close(to_host(view), cg32, cg64, dtype, f"{name} {lib} {dtype} out")
    assert np.array_equal(to_host(buf[..., 1::2]), before[..., 1::2])


POS_WEIGHT_KINDS = ["per_class", "per_class_float64", "per_sample", "full", "zero_d", "strided"]


@needs_gpu
@pytest.mark.parametrize("kind", POS_WEIGHT_KINDS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("lib", LIBS)
@pytest.mark.parametrize("from_logits", [True, False], ids=["logits", "probs"])
def test_bce_pos_weight_array(from_logits, lib, dtype, reduction, kind):
    # PyTorch's pos_weight: one per class, broadcast against (N, C).
    n, c = 257, 13
    y, p = make_data(BCE, {"from_logits": from_logits}, (n, c), seed=17)
    (yd, pd), (yh, ph) = on_device(lib, dtype, y, p)
    rng = np.random.default_rng(18)
    shape = {"per_class": (c,), "per_class_float64": (c,), "per_sample": (n, 1), "full": (n, c), "zero_d": (),
             "strided": (2 * c,)}[kind]
    pw = rng.uniform(0.25, 4.0, shape)
    if kind == "per_class_float64":  # converted to y_pred's dtype on the device
        pwd = to_device(lib, pw, "float64")
        pwh = to_host(to_device(lib, pw, dtype))
    else:
        (pwd,), (pwh,) = on_device(lib, dtype, pw)
        if kind == "strided":
            pwd, pwh = pwd[::2], pwh[::2]
    opts = {"from_logits": from_logits, "label_smoothing": 0.05}
    what = f"bce pos_weight {kind} {from_logits} {lib} {dtype} {reduction}"
    kw = dict(opts, reduction=reduction)
    v = fl.bce(yd, pd, pos_weight=pwd, **kw)
    g = fl.bce.grad(yd, pd, pos_weight=pwd, **kw)
    v2, g2 = fl.bce.value_and_grad(yd, pd, pos_weight=pwd, weights=2.0, **kw)
    check_kinds(lib, v, g, reduction, dtype, (n, c), device_of(pd), what)
    check_kinds(lib, v2, g2, reduction, dtype, (n, c), device_of(pd), what + " value_and_grad")
    (cv32, cg32), (cv64, cg64) = cpu_results(fl.bce, yh, ph, pos_weight=pwh, **kw)
    stored = reduction == "none"
    assert_gpu_close(to_host(v), cv32, cv64, dtype, what + " value", stored=stored)
    assert_gpu_close(to_host(g), cg32, cg64, dtype, what + " grad")
    (cv32, cg32), (cv64, cg64) = cpu_results(fl.bce, yh, ph, pos_weight=pwh, weights=2.0, **kw)
    assert_gpu_close(to_host(v2), cv32, cv64, dtype, what + " weighted value", stored=stored)
    assert_gpu_close(to_host(g2), cg32, cg64, dtype, what + " weighted grad")


def cpu_multi_results(fn, arrays, weights=None, **kw):
    """The CPU's float32 and float64 results of a score loss: (values,
    grads), each a list with one array per input ('none': one loss array per
    input; else one value)."""
    out = {}
    for dt in (np.float32, np.float64):
        def conv(w, dt=dt):
            return None if w is None else (w if np.isscalar(w) else np.asarray(w, dt))

        w = None if weights is None else (tuple(map(conv, weights)) if isinstance(weights, tuple) else conv(weights))
        v, g = fn.value_and_grad(*[np.asarray(a, dt) for a in arrays], weights=w, **kw)
        vs = list(v) if isinstance(v, tuple) else [v]
        gs = list(g) if isinstance(g, tuple) else [g]
        out[dt] = ([np.asarray(x, np.float64) for x in vs], [np.asarray(x, np.float64) for x in gs])
    return out[np.float32], out[np.float64]


SCORE_CONFIGS = [("gan_discriminator", {}), ("gan_generator", {}), ("gan_generator", {"saturating": True}),
                 ("wasserstein_critic", {}), ("wasserstein_generator", {})]
SCORE_WEIGHTS = ["none", "arrays", "scalar", "one_of_two"]


@needs_gpu
@pytest.mark.parametrize("wkind", SCORE_WEIGHTS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("lib", LIBS)
@pytest.mark.parametrize("config", SCORE_CONFIGS, ids=config_id)
def test_scores_against_cpu(config, lib, dtype, reduction, wkind):
    name, opts = config
    fn = getattr(fl, name)
    two = len(fn._inputs) == 2
    shapes = [(129, 65), (1001,)] if two else [(257, 3)]  # real and fake of different shapes
    hosts = [make_scores(s, seed=k) for k, s in enumerate(shapes)]
    devs, hs = on_device(lib, dtype, *hosts)
    rng = np.random.default_rng(19)
    if wkind == "none":
        wd = wh = None
    elif wkind == "scalar":
        wd = wh = (2.5, 0.5) if two else 2.5
    else:
        arrays = [rng.uniform(0.5, 2.0, (shapes[0][0], 1)), rng.uniform(0.5, 2.0, shapes[-1])]
        wds, whs = on_device(lib, dtype, *arrays)
        if two:
            wd, wh = (tuple(wds), tuple(whs)) if wkind == "arrays" else ((None, wds[1]), (None, whs[1]))
        else:
            wd, wh = wds[0], whs[0]
    what = f"{name}{opts} {lib} {dtype} {reduction} weights={wkind}"
    kw = dict(opts, reduction=reduction)
    v = fn(*devs, weights=wd, **kw)
    g = fn.grad(*devs, weights=wd, **kw)
    v2, g2 = fn.value_and_grad(*devs, weights=wd, **kw)
    (cv32, cg32), (cv64, cg64) = cpu_multi_results(fn, hs, weights=wh, **kw)
    dev = device_of(devs[0])
    stored = reduction == "none"
    for value, grads, label in ((v, g, ""), (v2, g2, " value_and_grad")):
        if two:
            assert isinstance(grads, tuple) and len(grads) == 2, what
            if reduction == "none":
                assert isinstance(value, tuple) and len(value) == 2, what
        values = list(value) if reduction == "none" and two else [value]
        grads = list(grads) if two else [grads]
        for k, (gk, d) in enumerate(zip(grads, devs)):
            check_kinds(lib, values[k] if reduction == "none" else None, gk, reduction, dtype, tuple(d.shape), dev,
                        f"{what}{label} [{k}]")
            assert_gpu_close(to_host(gk), cg32[k], cg64[k], dtype, f"{what}{label} grad[{k}]")
        if reduction != "none":
            check_kinds(lib, values[0], None, reduction, dtype, (), dev, what + label)
        for k, vk in enumerate(values):
            assert_gpu_close(to_host(vk), cv32[k], cv64[k], dtype, f"{what}{label} value[{k}]", stored=stored)


@needs_gpu
@pytest.mark.parametrize("lib", LIBS)
def test_scores_out_strides_and_dtypes(lib):
    x = make_scores((64, 130), seed=3)
    # out= for the one-input losses (a strided view), strided inputs
    (xd, buf), (xh, before) = on_device(lib, "float32", x, np.full((64, 130), SENTINEL))
    view, xs = buf[:, ::2], xd[:, 1::2]
    for name in ("gan_generator", "wasserstein_generator"):
        fn = getattr(fl, name)
        v, g = fn.value_and_grad(xs, out=view)
        assert g is view
        (cv32, cg32), (cv64, cg64) = cpu_multi_results(fn, [xh[:, 1::2]])
        assert_gpu_close(to_host(v), cv32[0], cv64[0], "float32", f"{name} {lib} out value", stored=False)
        assert_gpu_close(to_host(view), cg32[0], cg64[0], "float32", f"{name} {lib} out")
        assert np.array_equal(to_host(buf[:, 1::2]), before[:, 1::2])
    # the first array decides the dtype; the second is converted to it
    (real,), (rh,) = on_device(lib, "float32", make_scores((100,), seed=4))
    (fake,), (fh,) = on_device(lib, "float64", make_scores((33, 3), seed=5))
    for name in ("gan_discriminator", "wasserstein_critic"):
        fn = getattr(fl, name)
        v, (gr, gf) = fn.value_and_grad(real, fake.T)
        assert dtype_name(v) == dtype_name(gr) == dtype_name(gf) == "float32"
        assert tuple(gf.shape) == (3, 33)
        (cv32, cg32), (cv64, cg64) = cpu_multi_results(fn, [rh, fh.T])
        assert_gpu_close(to_host(v), cv32[0], cv64[0], "float32", f"{name} {lib} mixed value", stored=False)
        assert_gpu_close(to_host(gr), cg32[0], cg64[0], "float32", f"{name} {lib} mixed grad real")
        assert_gpu_close(to_host(gf), cg32[1], cg64[1], "float32", f"{name} {lib} mixed grad fake")
    # errors of the extension: worded as on the CPU
    (w,), _ = on_device(lib, "float32", np.ones(7))
    with pytest.raises(ValueError) as cpu:
        fl.gan_discriminator(rh.astype(np.float32), fh, weights=(np.ones(7), None))
    with pytest.raises(ValueError, match="^" + re.escape(str(cpu.value))):
        fl.gan_discriminator(real, fake, weights=(w, None))


@needs_gpu
def test_scores_torch_tensors_that_require_grad():
    torch = lib_module("torch")
    (real, fake), (rh, fh) = on_device("torch", "float32", make_scores((50,), 1), make_scores((60,), 2))
    real.requires_grad_(True)  # refuses __cuda_array_interface__: routed by __dlpack_device__
    v, (gr, gf) = fl.gan_discriminator.value_and_grad(real, fake)
    assert isinstance(v, torch.Tensor) and v.is_cuda and not gr.requires_grad
    (cv32, cg32), (cv64, cg64) = cpu_multi_results(fl.gan_discriminator, [rh, fh])
    assert_gpu_close(to_host(v), cv32[0], cv64[0], "float32", "requires_grad value", stored=False)
    assert_gpu_close(to_host(gr), cg32[0], cg64[0], "float32", "requires_grad grad real")


@needs_gpu
@pytest.mark.parametrize("lib", LIBS)
def test_part2_stream_argument(lib):
    s1, _, _, sync = streams(lib)
    y, p = make_part2_data("dice", {}, (8, 3, 64, 64), seed=2)
    (yd, pd), (yh, ph) = on_device(lib, "float32", y, p)
    x = make_scores((10_000,), seed=3)
    (xd,), (xh,) = on_device(lib, "float32", x)
    sync()
    v = fl.dice(yd, pd, axis=(2, 3), stream=s1)
    vs, gs = fl.gan_generator.value_and_grad(xd, stream=s1)
    sync()
    (cv32, _), (cv64, _) = cpu_results(fl.dice, yh, ph, axis=(2, 3))
    assert_gpu_close(to_host(v), cv32, cv64, "float32", f"dice {lib} stream=", stored=False)
    (sv32, sg32), (sv64, sg64) = cpu_multi_results(fl.gan_generator, [xh])
    assert_gpu_close(to_host(vs), sv32[0], sv64[0], "float32", f"gan_generator {lib} stream=", stored=False)
    assert_gpu_close(to_host(gs), sg32[0], sg64[0], "float32", f"gan_generator {lib} stream= grad")


@needs_gpu
@pytest.mark.parametrize("lib", LIBS)
def test_part2_bit_identical_runs(lib):
    y, p = make_part2_data("dice", {"from_logits": True}, (4, 3, 257, 259), seed=21)
    b, bp = make_part2_data("box_iou", {}, (500_003, 4), seed=22)
    x, z = make_scores((1_000_003,), seed=23), make_scores((999, 17), seed=24)
    (yd, pd, bd, bpd, xd, zd), _ = on_device(lib, "float32", y, p, b, bp, x, z)
    calls = [lambda: fl.dice.value_and_grad(yd, pd, from_logits=True),
             lambda: fl.dice.value_and_grad(yd, pd, from_logits=True, axis=(2, 3), reduction="none"),
             lambda: fl.box_iou.value_and_grad(bd, bpd, kind="ciou"),
             lambda: fl.gan_discriminator.value_and_grad(xd, zd)]
    for f in calls:
        def flat(r):
            return [to_host(a).tobytes() for a in (r[0] if isinstance(r[0], tuple) else (r[0],))] + \
                   [to_host(a).tobytes() for a in (r[1] if isinstance(r[1], tuple) else (r[1],))]
        first = flat(f())
        for _ in range(3):
            assert flat(f()) == first


@needs_gpu
def test_part2_calls_do_not_synchronise():
    """As test_torch_call_does_not_synchronise, for the two-pass region
    losses (sums, then the gradient), box_iou and the score losses."""
    torch = lib_module("torch")
    y, p = make_part2_data("dice", {}, (4, 3, 64, 64))
    b, bp = make_part2_data("box_iou", {}, (10_000, 4))
    (yd, pd, bd, bpd), _ = on_device("torch", "float32", y, p, b, bp)
    pw = torch.full((64,), 2.0, device="cuda")
    stream = torch.cuda.current_stream()
    torch.cuda.synchronize()
    torch.cuda._sleep(2_000_000_000)  # ~1 s of device time at 2 GHz
    r = [fl.dice.value_and_grad(yd, pd, axis=(2, 3), weights=2.0),
         fl.tversky(yd, pd, axis=1, reduction="none"),
         fl.box_iou.value_and_grad(bd, bpd, kind="giou"),
         fl.bce.value_and_grad(yd, pd, pos_weight=pw),
         fl.gan_discriminator.value_and_grad(pd, yd, weights=(2.0, None)),
         fl.wasserstein_generator(pd, reduction="none")]
    assert not stream.query(), "a loss call waited for the device"
    torch.cuda.synchronize()
    assert all(np.isfinite(to_host(a)).all() for a in (r[0][0], r[1], r[2][0], r[3][0], r[4][0], r[5]))


@needs_gpu
@pytest.mark.parametrize("lib", LIBS)
def test_part2_gpu_errors_as_on_the_cpu(lib):
    """The extension's checks (shapes, axes, options) say what the CPU says."""
    y, p = make_part2_data("dice", {}, (2, 3, 4), seed=1)
    b, bp = make_part2_data("box_iou", {}, (5, 4), seed=2)
    (yd, pd, bd, bpd), (yh, ph, bh, bph) = on_device(lib, "float32", y, p, b, bp)
    (short, w3), (short_h, w3h) = on_device(lib, "float32", y[:, :2], np.ones(3))
    (b3,), (b3h,) = on_device(lib, "float32", b[:, :3])
    cases = [
        (fl.dice, (short, pd), (short_h, ph), {}),
        (fl.dice, (yd, pd), (yh, ph), {"axis": (5,)}),
        (fl.dice, (yd, pd), (yh, ph), {"axis": (0, -3)}),
        (fl.dice, (yd, pd), (yh, ph), {"smooth": -1.0}),
        (fl.tversky, (yd, pd), (yh, ph), {"alpha": -0.5}),
        (fl.focal_tversky, (yd, pd), (yh, ph), {"gamma": 0.0}),
        (fl.jaccard, (yd, pd), (yh, ph), {"axis": (1,), "weights": w3}),
        (fl.box_iou, (b3, b3), (b3h, b3h), {}),
        (fl.box_iou, (bd, bpd), (bh, bph), {"eps": -1.0}),
        (fl.box_iou, (bd, bpd), (bh, bph), {"weights": w3}),
        (fl.bce, (yd, pd), (yh, ph), {"pos_weight": w3[:2]}),
    ]
    for fn, dev_args, host_args, kw in cases:
        host_kw = {k: (w3h if v is w3 else w3h[:2] if k == "pos_weight" else v) for k, v in kw.items()}
        with pytest.raises(ValueError) as cpu:
            fn(*host_args, **host_kw)
        with pytest.raises(ValueError, match="^" + re.escape(str(cpu.value))):
            fn(*dev_args, **kw)


# --------------------------------------------------------------------------
# The elementwise losses of two inputs and a target (cuda/src/elementwise.cu,
# the Elements rows): both gradients, weights, reductions, dtypes.
# --------------------------------------------------------------------------

ELEMENTS_CONFIGS = [("margin_ranking", {}), ("margin_ranking", {"margin": 0.3}), ("gaussian_nll", {}),
                    ("gaussian_nll", {"full": True, "eps": 0.01})]


def elements_data(name, shape, seed=0):
    """Host float64 arrays in ``fl.NAME``'s argument order."""
    rng = np.random.default_rng(seed)
    info = fl._core.loss_info(name)
    data = {a: rng.normal(size=shape) for a in info["args"]}
    if name == "margin_ranking":
        data["y"] = rng.choice([-1.0, 1.0], shape)
    if name == "gaussian_nll":
        data["var"] = rng.uniform(0.05, 3.0, shape)
        data["var"].flat[::17] = 1e-9  # below eps: clamped
    return [data[a] for a in info["args"]]


@needs_gpu
@pytest.mark.parametrize("wkind", ["none", "array", "scalar"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("lib", LIBS)
@pytest.mark.parametrize("config", ELEMENTS_CONFIGS, ids=config_id)
def test_elements_against_cpu(config, lib, dtype, reduction, wkind):
    name, opts = config
    fn = getattr(fl, name)
    shape = (257, 129)
    devs, hs = on_device(lib, dtype, *elements_data(name, shape))
    if wkind == "none":
        wd = wh = None
    elif wkind == "scalar":
        wd = wh = 2.5
    else:
        (wd,), (wh,) = on_device(lib, dtype, np.random.default_rng(3).uniform(0.5, 2.0, (shape[0], 1)))
    what = f"{name}{opts} {lib} {dtype} {reduction} weights={wkind}"
    kw = dict(opts, reduction=reduction)
    v = fn(*devs, weights=wd, **kw)
    g = fn.grad(*devs, weights=wd, **kw)
    v2, g2 = fn.value_and_grad(*devs, weights=wd, **kw)
    out = {}
    for dt in (np.float32, np.float64):
        w = wh if wh is None or np.isscalar(wh) else np.asarray(wh, dt)
        cv, cg = fn.value_and_grad(*[np.asarray(a, dt) for a in hs], weights=w, **kw)
        out[dt] = (np.asarray(cv, np.float64), [np.asarray(x, np.float64) for x in cg])
    (cv32, cg32), (cv64, cg64) = out[np.float32], out[np.float64]
    dev = device_of(devs[0])
    for value, grads, label in ((v, g, ""), (v2, g2, " value_and_grad")):
        assert isinstance(grads, tuple) and len(grads) == 2, what
        for k in range(2):
            check_kinds(lib, value if k == 0 else None, grads[k], reduction, dtype, shape, dev, f"{what}{label} [{k}]")
            assert_gpu_close(to_host(grads[k]), cg32[k], cg64[k], dtype, f"{what}{label} grad[{k}]")
        assert_gpu_close(to_host(value), cv32, cv64, dtype, f"{what}{label} value", stored=reduction == "none")


@needs_gpu
@pytest.mark.parametrize("lib", LIBS)
@pytest.mark.parametrize("name", sorted({c[0] for c in ELEMENTS_CONFIGS}))
def test_elements_gpu_errors_as_on_the_cpu(lib, name):
    fn = getattr(fl, name)
    a, b, c = elements_data(name, (6,))
    (da, db, dc), _ = on_device(lib, "float32", a, b, c)
    (short,), _ = on_device(lib, "float32", a[:5])
    info = fl._core.loss_info(name)
    for k in range(3):  # any of the three of another shape: the CPU's message
        args_h = [np.float32(x) for x in (a, b, c)]
        args_d = [da, db, dc]
        args_h[k], args_d[k] = np.float32(a[:5]), short
        with pytest.raises(ValueError) as cpu:
            fn(*args_h)
        with pytest.raises(ValueError) as gpu:
            fn(*args_d)
        assert str(gpu.value) == str(cpu.value), info["args"][k]
