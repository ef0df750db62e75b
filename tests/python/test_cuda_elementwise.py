"""The elementwise losses on the GPU (cuda/src/elementwise.cu; skipped without
a GPU): every loss of part 1, CuPy and PyTorch inputs,
float32/float64/float16/bfloat16, against the CPU result on the same data
(the CPU is tested against NumPy by the other test files): weights, strides,
out=, bit-identical runs, streams, 2**31 + 1 elements, errors. The
tolerances are explained in cuda_checks.py.
"""

import numpy as np
import pytest

import fastloss as fl
import fastloss.cuda as flc
from cuda_checks import (
    BCE, CONFIG_IDS, CONFIGS, DTYPES, GPU_LOSSES, LIBS, REDUCTIONS, SENTINEL, SHAPE, assert_gpu_close, check_kinds,
    config_id, cpu_results, device_of, lib_module, make_data, needs_gpu, on_device, streams, to_device, to_host,
)

@needs_gpu
def test_extension_runs_every_gpu_loss():
    assert set(GPU_LOSSES) <= set(flc._ext().LOSSES)
    assert callable(getattr(flc._ext(), "scores", None))
    assert flc.device_count() >= 1
    assert isinstance(flc.device_name(), str) and flc.device_name()


@needs_gpu
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("lib", LIBS)
@pytest.mark.parametrize("config", CONFIGS, ids=CONFIG_IDS)
def test_against_cpu(config, lib, dtype, reduction):
    name, opts = config
    fn = getattr(fl, name)
    y, p = make_data(name, opts, SHAPE)
    (yd, pd), (yh, ph) = on_device(lib, dtype, y, p)
    kw = dict(reduction=reduction, **opts)
    what = f"{name}{opts} {lib} {dtype} {reduction}"
    v = fn(yd, pd, **kw)
    g = fn.grad(yd, pd, **kw)
    v2, g2 = fn.value_and_grad(yd, pd, **kw)
    dev = device_of(pd)
    check_kinds(lib, v, g, reduction, dtype, SHAPE, dev, what)
    check_kinds(lib, v2, g2, reduction, dtype, SHAPE, dev, what + " value_and_grad")
    (cv32, cg32), (cv64, cg64) = cpu_results(fn, yh, ph, **kw)
    stored = reduction == "none"
    assert_gpu_close(to_host(v), cv32, cv64, dtype, what + " value", stored=stored)
    assert_gpu_close(to_host(g), cg32, cg64, dtype, what + " grad")
    assert_gpu_close(to_host(v2), cv32, cv64, dtype, what + " value_and_grad value", stored=stored)
    assert_gpu_close(to_host(g2), cg32, cg64, dtype, what + " value_and_grad grad")


WEIGHT_KINDS = ["per_sample", "row", "full_float64", "scalar", "int_scalar"]


@needs_gpu
@pytest.mark.parametrize("kind", WEIGHT_KINDS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("lib", LIBS)
@pytest.mark.parametrize("name", ["mse", "huber", BCE, "contrastive"])
def test_weights(name, lib, dtype, reduction, kind):
    fn = getattr(fl, name)
    y, p = make_data(name, {}, SHAPE, seed=3)
    (yd, pd), (yh, ph) = on_device(lib, dtype, y, p)
    rng = np.random.default_rng(5)
    if kind == "per_sample":
        (wd,), (wh,) = on_device(lib, dtype, rng.uniform(0.5, 2.0, (SHAPE[0], 1)))
    elif kind == "row":
        (wd,), (wh,) = on_device(lib, dtype, rng.uniform(0.5, 2.0, (1, SHAPE[1])))
    elif kind == "full_float64":  # converted to y_pred's dtype on the device
        wh = rng.uniform(0.5, 2.0, SHAPE)
        wd = to_device(lib, wh, "float64")
        wh = to_host(to_device(lib, wh, dtype))
    elif kind == "scalar":
        wd = wh = 2.5
    else:
        wd = wh = 3
    what = f"{name} {lib} {dtype} {reduction} weights={kind}"
    v, g = fn.value_and_grad(yd, pd, weights=wd, reduction=reduction)
    check_kinds(lib, v, g, reduction, dtype, SHAPE, device_of(pd), what)
    (cv32, cg32), (cv64, cg64) = cpu_results(fn, yh, ph, weights=wh, reduction=reduction)
    assert_gpu_close(to_host(v), cv32, cv64, dtype, what + " value", stored=reduction == "none")
    assert_gpu_close(to_host(g), cg32, cg64, dtype, what + " grad")


def layouts(lib, dtype, y, p):
    """(name, y_true view, y_pred view, y_true host, y_pred host) for strided
    device views: every other column, transposed, reversed rows (CuPy),
    a broadcast y_true (stride 0)."""
    mod = lib_module(lib)
    out = []
    (yd, pd), _ = on_device(lib, dtype, y, p)  # (R, 2C)
    out.append(("columns_step_2", yd[:, ::2], pd[:, ::2]))
    out.append(("transposed", yd.T, pd.T))
    out.append(("mixed", yd[:, ::2], pd[:, 1::2]))
    if lib == "cupy":
        out.append(("reversed", yd[::-1], pd[::-1, ::-1]))
        out.append(("broadcast", mod.broadcast_to(yd[:1], yd.shape), pd))
    else:
        out.append(("broadcast", yd[:1].expand(*yd.shape), pd))
    return [(n, a, b, to_host(a), to_host(b)) for n, a, b in out]


@needs_gpu
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("lib", LIBS)
@pytest.mark.parametrize("config", [("mse", {}), ("huber", {"delta": 0.5}), (BCE, {"from_logits": True}),
                                    ("soft_margin", {})], ids=config_id)
def test_strided_inputs(config, lib, dtype):
    name, opts = config
    fn = getattr(fl, name)
    y, p = make_data(name, opts, (64, 258), seed=9)
    for layout, yd, pd, yh, ph in layouts(lib, dtype, y, p):
        for reduction in REDUCTIONS:
            what = f"{name} {lib} {dtype} {layout} {reduction}"
            v, g = fn.value_and_grad(yd, pd, reduction=reduction, **opts)
            check_kinds(lib, v, g, reduction, dtype, tuple(pd.shape), device_of(pd), what)
            (cv32, cg32), (cv64, cg64) = cpu_results(fn, yh, ph, reduction=reduction, **opts)
            assert_gpu_close(to_host(v), cv32, cv64, dtype, what + " value", stored=reduction == "none")
            assert_gpu_close(to_host(g), cg32, cg64, dtype, what + " grad")



@needs_gpu
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("lib", LIBS)
def test_out(lib, dtype):
    y, p = make_data("huber", {}, SHAPE, seed=11)
    (yd, pd), (yh, ph) = on_device(lib, dtype, y, p)
    (cv32, cg32), (cv64, cg64) = cpu_results(fl.huber, yh, ph)
    # contiguous
    (out,), _ = on_device(lib, dtype, np.full(SHAPE, SENTINEL))
    g = fl.huber.grad(yd, pd, out=out)
    assert g is out
    assert_gpu_close(to_host(out), cg32, cg64, dtype, f"{lib} {dtype} out")
    # every other column of a wider buffer: the rest is not touched
    (buf,), (before,) = on_device(lib, dtype, np.full((SHAPE[0], 2 * SHAPE[1]), SENTINEL))
    view = buf[:, ::2]
    v, g = fl.huber.value_and_grad(yd, pd, out=view)
    assert g is view
    assert_gpu_close(to_host(v), cv32, cv64, dtype, f"{lib} {dtype} out value", stored=False)
    assert_gpu_close(to_host(view), cg32, cg64, dtype, f"{lib} {dtype} strided out")
    assert np.array_equal(to_host(buf[:, 1::2]), before[:, 1::2])
    # in place: out=y_pred
    pd2 = pd.clone() if lib == "torch" else pd.copy()
    assert fl.huber.grad(yd, pd2, out=pd2) is pd2
    assert_gpu_close(to_host(pd2), cg32, cg64, dtype, f"{lib} {dtype} out=y_pred")
    # wrong dtype / shape
    other = "float32" if dtype == "float64" else "float64"
    (bad,), _ = on_device(lib, other, np.zeros(SHAPE))
    with pytest.raises(ValueError, match=f"^huber: out must have y_pred's dtype {dtype}, got {other}"):
        fl.huber.grad(yd, pd, out=bad)
    (bad,), _ = on_device(lib, dtype, np.zeros(SHAPE[::-1]))
    with pytest.raises(ValueError, match=r"^huber: out must have y_pred's shape \(257, 129\), got \(129, 257\)"):
        fl.huber.grad(yd, pd, out=bad)


@needs_gpu
@pytest.mark.parametrize("dtype", ["float32", "bfloat16", "float64"])
@pytest.mark.parametrize("lib", LIBS)
@pytest.mark.parametrize("name", ["mse", BCE, "log_cosh"])
def test_bit_identical_runs(name, lib, dtype):
    opts = {"from_logits": True} if name == BCE else {}
    fn = getattr(fl, name)
    y, p = make_data(name, opts, (3_000_017,), seed=21)
    (yd, pd), _ = on_device(lib, dtype, y, p)
    first_v, first_g = fn.value_and_grad(yd, pd, **opts)
    ref_v, ref_g = to_host(first_v).tobytes(), to_host(first_g).tobytes()
    for _ in range(4):
        v, g = fn.value_and_grad(yd, pd, **opts)
        assert to_host(v).tobytes() == ref_v
        assert to_host(g).tobytes() == ref_g
        assert to_host(fn(yd, pd, **opts)).tobytes() == ref_v


@needs_gpu
@pytest.mark.parametrize("lib", LIBS)
def test_two_streams_at_once(lib):
    s1, s2, use, sync = streams(lib)
    n = 4_000_037
    ya, pa = make_data("huber", {}, (n,), seed=1)
    yb, pb = make_data("huber", {}, (n,), seed=2)
    (yad, pad, ybd, pbd), _ = on_device(lib, "float32", ya, pa, yb, pb)
    sync()
    ref_a = [to_host(x) for x in fl.huber.value_and_grad(yad, pad)]
    ref_b = [to_host(x) for x in fl.huber.value_and_grad(ybd, pbd)]
    for _ in range(3):
        with use(s1):  # the producer's current stream
            ra = fl.huber.value_and_grad(yad, pad)
        rb = fl.huber.value_and_grad(ybd, pbd, stream=s2)  # stream= overrides
        with use(s1):
            rb2 = fl.huber.value_and_grad(ybd, pbd, stream=s2)
        sync()
        for got, ref in ((ra, ref_a), (rb, ref_b), (rb2, ref_b)):
            assert to_host(got[0]).tobytes() == ref[0].tobytes()
            assert np.array_equal(to_host(got[1]), ref[1])


@needs_gpu
@pytest.mark.parametrize("lib", LIBS)
def test_waits_for_the_producer_on_its_stream(lib):
    # Inputs written on a side stream, then the loss on that stream: no race.
    mod = lib_module(lib)
    s1, _, use, sync = streams(lib)
    n = 20_000_000
    with use(s1):
        if lib == "torch":
            p = mod.full((n,), 3.0, device="cuda")
            y = mod.zeros(n, device="cuda")
        else:
            p = mod.full((n,), 3.0, dtype=mod.float32)
            y = mod.zeros(n, dtype=mod.float32)
        v = fl.mse(y, p, reduction="sum")
    sync()
    assert float(to_host(v)) == 9.0 * n


@needs_gpu
@pytest.mark.parametrize("lib", LIBS)
def test_two_to_the_31_plus_one_elements(lib):
    mod = lib_module(lib)
    n = 2**31 + 1
    gib = 1 << 30
    free = mod.cuda.mem_get_info()[0] if lib == "torch" else mod.cuda.runtime.memGetInfo()[0]
    if free < max(16 * gib, 5 * n * 2 + gib):
        pytest.skip(f"needs 16 GB of free device memory, {free / gib:.1f} GiB free")
    # p[i] = (i % 8) / 4 for i < 2**31, p[2**31] = 4; y = 0 (one element broadcast: stride 0)
    if lib == "torch":
        pattern = (mod.arange(2**20, device="cuda") % 8).to(mod.float16) * 0.25
        p = mod.empty(n, dtype=mod.float16, device="cuda")
        p[:-1].view(2**11, 2**20).copy_(pattern.expand(2**11, 2**20))
        p[-1] = 4.0
        y = mod.zeros(1, dtype=mod.float16, device="cuda").expand(n)
    else:
        pattern = (mod.arange(2**20) % 8).astype(mod.float16) * mod.float16(0.25)
        p = mod.empty(n, dtype=mod.float16)
        p[:-1].reshape(2**11, 2**20)[...] = pattern
        p[-1] = 4.0
        y = mod.broadcast_to(mod.zeros(1, dtype=mod.float16), (n,))
    total = 2**28 * 8.75 + 16.0  # sum of p**2
    v, g = fl.mse.value_and_grad(y, p, reduction="sum")
    assert abs(float(to_host(v)) - total) <= 1e-6 * total
    assert abs(float(to_host(fl.mse(y, p))) - total / n) <= 1e-6 * total / n
    assert float(to_host(g[-1:])[0]) == 8.0
    assert float(to_host(g[2**31 - 1:2**31])[0]) == 3.5
    body = g[:-1].view(2**11, 2**20) if lib == "torch" else g[:-1].reshape(2**11, 2**20)
    assert bool((body == 2 * pattern).all())
    del p, g, y, body


@needs_gpu
@pytest.mark.parametrize("lib", LIBS)
def test_results_are_device_arrays_of_the_input_kind(lib):
    y, p = make_data("mse", {}, (1000,))
    for dtype in DTYPES if lib == "torch" else ["float32", "float64", "float16"]:  # CuPy: no bfloat16
        (yd, pd), _ = on_device(lib, dtype, y, p)
        v, g = fl.mse.value_and_grad(yd, pd)
        check_kinds(lib, v, g, "mean", dtype, (1000,), device_of(pd), f"{lib} {dtype}")
        v = fl.mse(yd, pd, reduction="none")
        check_kinds(lib, v, fl.mse.grad(yd, pd), "none", dtype, (1000,), device_of(pd), f"{lib} {dtype} none")


@needs_gpu
@pytest.mark.parametrize("lib", LIBS)
def test_empty_inputs(lib):
    (yd, pd), _ = on_device(lib, "float32", np.zeros(0), np.zeros(0))
    assert np.isnan(to_host(fl.mse(yd, pd)))
    assert to_host(fl.mse(yd, pd, reduction="sum")) == 0.0
    v, g = fl.mse.value_and_grad(yd, pd, reduction="none")
    assert tuple(v.shape) == tuple(g.shape) == (0,)


@needs_gpu
@pytest.mark.parametrize("lib", LIBS)
def test_bce_y_true_out_of_range_is_nan(lib):
    # The CPU raises; the GPU cannot without waiting for the device (documented).
    (yd, pd), _ = on_device(lib, "float32", np.array([0.0, 1.5, 1.0]), np.array([0.2, 0.5, 0.7]))
    assert np.isnan(to_host(fl.bce(yd, pd)))
    # per element and in the gradient too (also without a reduced value)
    per = to_host(fl.bce(yd, pd, reduction="none"))
    g = to_host(fl.bce.grad(yd, pd))
    assert np.isnan(per[1]) and np.isfinite(per[[0, 2]]).all()
    assert np.isnan(g[1]) and np.isfinite(g[[0, 2]]).all()
    with pytest.raises(ValueError):
        fl.bce(np.array([0.0, 1.5, 1.0]), np.array([0.2, 0.5, 0.7]))


@needs_gpu
@pytest.mark.parametrize("y_dtype", ["int32", "float64", "float16", "bool"])
@pytest.mark.parametrize("lib", LIBS)
def test_y_true_of_another_dtype_is_converted(lib, y_dtype):
    mod = lib_module(lib)
    y, p = make_data("hinge", {}, SHAPE, seed=4)
    if y_dtype == "bool":
        y = (y > 0).astype(np.float64)
    host = y.astype(y_dtype)
    yd = mod.as_tensor(host, device="cuda") if lib == "torch" else mod.asarray(host)
    (pd,), (ph,) = on_device(lib, "float32", p)
    v, g = fl.hinge.value_and_grad(yd, pd)
    (cv32, cg32), (cv64, cg64) = cpu_results(fl.hinge, host.astype(np.float64), ph)
    assert_gpu_close(to_host(v), cv32, cv64, "float32", f"{lib} y_true {y_dtype} value", stored=False)
    assert_gpu_close(to_host(g), cg32, cg64, "float32", f"{lib} y_true {y_dtype} grad")


@needs_gpu
def test_torch_tensors_that_require_grad():
    y, p = make_data("mse", {}, (100,))
    (yd, pd), (yh, ph) = on_device("torch", "float32", y, p)
    pd.requires_grad_(True)  # refuses __cuda_array_interface__ and __dlpack__
    v, g = fl.mse.value_and_grad(yd, pd)
    assert not g.requires_grad
    (cv32, cg32), (cv64, cg64) = cpu_results(fl.mse, yh, ph)
    assert_gpu_close(to_host(v), cv32, cv64, "float32", "requires_grad value", stored=False)
    assert_gpu_close(to_host(g), cg32, cg64, "float32", "requires_grad grad")


@needs_gpu
def test_torch_call_does_not_synchronise():
    """The call returns while the stream is still busy: a long sleep kernel is
    queued first, and the stream is still running it when the loss returns
    (a host synchronisation inside the call would have waited for it)."""
    torch = lib_module("torch")
    y, p = make_data("mse", {}, (10_000,))
    yd = torch.as_tensor(y, device="cuda")  # float64: converted to y_pred's float32
    pd = torch.as_tensor(p, device="cuda", dtype=torch.float32)
    stream = torch.cuda.current_stream()
    torch.cuda.synchronize()
    torch.cuda._sleep(2_000_000_000)  # ~1 s of device time at 2 GHz
    v, g = fl.huber.value_and_grad(yd, pd, weights=2.0, reduction="sum")
    per = fl.huber(yd, pd, reduction="none")
    assert not stream.query(), "the loss call waited for the device"
    torch.cuda.synchronize()
    assert np.isfinite(to_host(v)) and np.isfinite(to_host(per)).all()


@needs_gpu
@pytest.mark.parametrize("lib", LIBS)
def test_gpu_errors(lib):
    (yd, pd, short), _ = on_device(lib, "float32", np.zeros(4), np.ones(4), np.zeros(3))
    host = np.zeros(4, np.float32)
    with pytest.raises(TypeError, match=r"^mse: y_true is a host ndarray but y_pred is on the GPU"):
        fl.mse(host, pd)
    with pytest.raises(TypeError, match=r"^mse: y_pred is a host ndarray but y_true is on the GPU"):
        fl.mse.grad(yd, host)
    with pytest.raises(TypeError, match=r"^mse: weights is a host ndarray"):
        fl.mse(yd, pd, weights=host)
    with pytest.raises(ValueError, match="y_true"):
        fl.mse(short, pd)
    with pytest.raises(ValueError, match="weights"):
        fl.mse(yd, pd, weights=short)
    with pytest.raises(TypeError, match=r"^mse\(\) got an unexpected keyword argument 'delta'"):
        fl.mse(yd, pd, delta=1.0)
    with pytest.raises(TypeError, match=r"^binary_cross_entropy: pos_weight is a host ndarray but y_pred is on the GPU"):
        fl.bce(yd, pd, pos_weight=host)
    mod = lib_module(lib)
    ints = mod.as_tensor(np.zeros(4, np.int32), device="cuda") if lib == "torch" else mod.zeros(4, dtype=mod.int32)
    with pytest.raises(TypeError, match=r"^mse: y_pred must be float32, float64, float16 or bfloat16, got int32"):
        fl.mse(yd, ints)


@needs_gpu
@pytest.mark.parametrize("lib", LIBS)
def test_two_devices(lib):
    if flc.device_count() < 2:
        pytest.skip("needs two CUDA devices")
    mod = lib_module(lib)
    if lib == "torch":
        y = mod.zeros(4, device="cuda:0")
        p = mod.zeros(4, device="cuda:1")
    else:
        with mod.cuda.Device(0):
            y = mod.zeros(4, dtype=mod.float32)
        with mod.cuda.Device(1):
            p = mod.zeros(4, dtype=mod.float32)
    with pytest.raises(ValueError, match=r"^mse: y_true is on cuda:0 but y_pred is on cuda:1"):
        fl.mse(y, p)
