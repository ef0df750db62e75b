"""What the tests of fastloss.cuda share: the losses the GPU runs, whether a
GPU is here (GPU, needs_gpu), stand-ins for fastloss._cuda (FakeExt) and for
device arrays (FakeCAI: __cuda_array_interface__ only; FakeDLPack: a DLPack
producer on fake memory), and for the tests on the GPU
(test_cuda_elementwise.py, test_cuda_structured.py) their data, the
conversions to and from torch and CuPy and the comparison with the CPU.

Tolerances of the GPU tests. The GPU computes float32 and float64 with the
same loss functors as the CPU but with other math libraries and FMA
contraction, so it is compared with the CPU in the same arithmetic dtype
within ``rtol * |cpu64| + 4 * |cpu32 - cpu64|`` (float64: the second term
scaled by 2**-29), rtol = 1e-6 (float32) or 1e-12 (float64): |cpu32 - cpu64|,
the CPU's own float32 rounding error on the same data, stands for the
conditioning of the element (cancellation in a logit loss, a sum of terms of
both signs). float16 and bfloat16 inputs are computed in float32 (compared
with the CPU float32 result on the upcast data); their gradients and
per-element losses are stored in the input's dtype: rtol 1e-3 (float16) and
1e-2 (bfloat16) on top, plus float16's subnormal spacing.
"""

import ctypes
import warnings

import numpy as np
import pytest

import fastloss.cuda as flc

GPU = flc.is_available()
NO_GPU = "no CUDA GPU: fastloss._cuda not built or no device"
needs_gpu = pytest.mark.skipif(not GPU, reason=NO_GPU)

# The losses of the GPU, part 1 (the scope).
GPU_LOSSES_PART1 = [
    "mse", "mae", "huber", "smooth_l1", "quantile", "log_cosh", "msle", "poisson_nll", "mape",
    "binary_cross_entropy", "binary_focal", "hinge", "squared_hinge", "soft_margin", "contrastive",
]
# Part 2: the region losses and box_iou (elementwise() of the extension) and
# the adversarial losses of score arrays (scores() of the extension).
REGION_LOSSES = ["dice", "jaccard", "tversky", "focal_tversky"]
GPU_LOSSES = GPU_LOSSES_PART1 + REGION_LOSSES + ["box_iou"]
SCORE_LOSSES = ["gan_discriminator", "gan_generator", "wasserstein_critic", "wasserstein_generator"]
# The elementwise losses of two inputs and a target (elements() of the extension).
ELEMENTS_LOSSES = ["gaussian_nll", "margin_ranking"]


class FakeExt:
    """A stand-in for fastloss._cuda that records elementwise() calls (their
    arguments, then a dict of the keyword ones: {} or {"aux": desc}),
    scores() and elements() calls."""

    LOSSES = tuple(GPU_LOSSES + SCORE_LOSSES + ELEMENTS_LOSSES)

    def __init__(self, available=True, count=1):
        self.available = available
        self.count = count
        self.calls = []

    def is_available(self):
        if self.available is None:
            raise RuntimeError("driver exploded")
        return self.available

    def device_count(self):
        return self.count

    def device_name(self, device):
        return f"Fake GPU {device}"

    def elementwise(self, *args, **kwargs):
        assert set(kwargs) <= {"aux"}, kwargs
        self.calls.append((*args, kwargs))

    def scores(self, *args):
        self.calls.append(args)

    def elements(self, *args):
        self.calls.append(args)


# --- Fake device arrays ------------------------------------------------------

BASE = 0x7F0000000000  # a 4 KiB-aligned fake device address
SENTINEL = 12345.5


class FakeCAI:
    """An object with __cuda_array_interface__ only (device unknown unless
    ``device`` is given, then also __dlpack_device__)."""

    def __init__(self, shape, typestr="<f4", strides=None, ptr=BASE, readonly=False, stream=None,
                 device=None, version=3, **extra):
        cai = dict(shape=tuple(shape), typestr=typestr, strides=strides, data=(ptr, readonly), version=version)
        if stream is not None:
            cai["stream"] = stream
        cai.update(extra)
        self.__cuda_array_interface__ = cai
        if device is not None:
            self.__dlpack_device__ = lambda: (2, device)


_capsule_new = ctypes.PYFUNCTYPE(ctypes.py_object, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p)(
    ("PyCapsule_New", ctypes.pythonapi))
_NAMES = {True: b"dltensor_versioned", False: b"dltensor"}  # alive as long as the module


class FakeDLPack:
    """A DLPack producer on "CUDA" device ``device`` (fake memory; the
    capsule has no destructor). Records the stream it was asked for."""

    def __init__(self, shape, code=2, bits=32, strides=None, ptr=BASE, byte_offset=0, device=0,
                 versioned=True, read_only=False, legacy_signature=False):
        self.keep = []
        n = len(shape)
        shape_arr = (ctypes.c_int64 * max(n, 1))(*shape)
        self.keep.append(shape_arr)
        strides_ptr = None
        if strides is not None:
            strides_arr = (ctypes.c_int64 * max(n, 1))(*strides)
            self.keep.append(strides_arr)
            strides_ptr = ctypes.cast(strides_arr, ctypes.POINTER(ctypes.c_int64))
        t = flc.DLTensor(data=ptr, device=flc.DLDevice(2, device), ndim=n,
                         dtype=flc.DLDataType(code, bits, 1),
                         shape=ctypes.cast(shape_arr, ctypes.POINTER(ctypes.c_int64)),
                         strides=strides_ptr, byte_offset=byte_offset)
        if versioned:
            m = flc.DLManagedTensorVersioned(version=flc.DLPackVersion(1, 0), flags=1 if read_only else 0, dl_tensor=t)
        else:
            m = flc.DLManagedTensor(dl_tensor=t)
        self.keep.append(m)
        self.versioned = versioned
        self.legacy = legacy_signature
        self.device = device
        self.streams = []

    def __dlpack_device__(self):
        return (2, self.device)

    def __dlpack__(self, stream=None, **kw):
        if self.legacy and kw:
            raise TypeError("__dlpack__() got an unexpected keyword argument 'max_version'")
        self.streams.append(stream)
        m = self.keep[-1]
        versioned = self.versioned and kw.get("max_version") is not None
        return _capsule_new(ctypes.addressof(m), _NAMES[versioned], None)


# --- The tests on the GPU: their data, the arrays of torch and CuPy, the CPU's results ---

LIBS = ["torch", "cupy"]
DTYPES = ["float32", "float64", "float16", "bfloat16"]
REDUCTIONS = ["mean", "sum", "none"]
BCE, FOCAL = "binary_cross_entropy", "binary_focal"

CONFIGS = [
    ("mse", {}), ("mae", {}), ("huber", {}), ("huber", {"delta": 2.5}),
    ("smooth_l1", {}), ("smooth_l1", {"beta": 0.0}), ("quantile", {}), ("quantile", {"q": 0.1}),
    ("log_cosh", {}), ("msle", {}), ("poisson_nll", {}), ("poisson_nll", {"log_input": False, "full": True}),
    ("mape", {}), ("mape", {"eps": 0.5}),
    (BCE, {}), (BCE, {"from_logits": True}), (BCE, {"from_logits": True, "pos_weight": 2.5, "label_smoothing": 0.1}),
    (BCE, {"eps": 1e-3, "label_smoothing": 0.2}),
    (FOCAL, {}), (FOCAL, {"from_logits": True}), (FOCAL, {"from_logits": True, "alpha": None, "gamma": 0.5}),
    ("hinge", {}), ("squared_hinge", {}), ("soft_margin", {}), ("contrastive", {}), ("contrastive", {"margin": 2.0}),
]


def config_id(config):
    name, opts = config
    return name + "".join(f"-{k}={v}" for k, v in opts.items())


CONFIG_IDS = [config_id(c) for c in CONFIGS]
SHAPE = (257, 129)  # several blocks; not a multiple of a vector width


def make_data(name, opts, shape, seed=0):
    """float64 (y_true, y_pred) inside the loss's domain (exact ties for the
    losses with a kink at y_pred == y_true)."""
    rng = np.random.default_rng([seed, len(shape), int(np.prod(shape)), len(name)])
    n = shape
    ties = None
    if name in ("mse", "mae", "huber", "smooth_l1", "quantile", "log_cosh"):
        y = rng.normal(0.0, 2.0, n)
        p = y + rng.normal(0.0, 2.0, n)
        if name == "log_cosh":
            p = np.where(rng.random(n) < 0.1, y + rng.choice([-1.0, 1.0], n) * rng.uniform(20, 60, n), p)
        ties = rng.random(n) < 0.05
    elif name == "msle":
        y, p = np.expm1(rng.uniform(-2.0, 2.5, n)), np.expm1(rng.uniform(-2.0, 2.5, n))
    elif name == "mape":
        y = rng.normal(0.0, 3.0, n)
        y = np.where(np.abs(y) < 0.1, np.copysign(0.1, y) + y, y)
        p = y + rng.normal(0.0, 2.0, n)
    elif name == "poisson_nll":
        p = rng.normal(0.0, 1.5, n) if opts.get("log_input", True) else np.exp(rng.normal(0.0, 1.0, n))
        rate = np.exp(p) if opts.get("log_input", True) else p
        y = np.where(rng.random(n) < 0.5, rng.poisson(rate).astype(np.float64), rng.uniform(0.0, 5.0, n))
    elif name in (BCE, FOCAL):
        u = rng.random(n)
        y = np.where(u < 0.4, 0.0, np.where(u < 0.8, 1.0, rng.random(n)))
        p = rng.normal(0.0, 4.0, n) if opts.get("from_logits") else rng.uniform(0.02, 0.98, n)
    elif name in ("hinge", "squared_hinge"):
        y = rng.choice([-1.0, 0.0, 1.0], n)
        p = rng.normal(0.0, 1.5, n)
    elif name == "soft_margin":
        y = rng.choice([-1.0, 1.0, 0.0, 0.5], n)
        p = rng.normal(0.0, 3.0, n)
    elif name == "contrastive":
        y = np.where(rng.random(n) < 0.8, rng.choice([0.0, 1.0], n), rng.random(n))
        p = rng.uniform(0.0, 2.5, n)
    else:
        raise KeyError(name)
    if ties is not None:
        p = np.where(ties, y, p)
    return np.asarray(y, np.float64), np.asarray(p, np.float64)


def make_part2_data(name, opts, shape, seed=0):
    """float64 (y_true, y_pred) for the region losses (masks, a tenth soft,
    against probabilities or logits) and box_iou (shape (..., 4): boxes
    (x1, y1, x2, y2) and predictions near them, a tenth far away, a few
    nested or inverted)."""
    rng = np.random.default_rng([seed, len(shape), int(np.prod(shape)), len(name)])
    if name == "box_iou":
        n = shape[:-1]
        xy = rng.uniform(0.0, 50.0, n + (2,))
        wh = rng.uniform(1.0, 20.0, n + (2,))
        y = np.concatenate([xy, xy + wh], axis=-1)
        pxy = xy + rng.normal(0.0, 3.0, xy.shape)
        pwh = np.abs(wh + rng.normal(0.0, 3.0, wh.shape)) + 0.5
        pxy = np.where(rng.random(n + (1,)) < 0.1, pxy + 100.0, pxy)  # disjoint
        p = np.concatenate([pxy, pxy + pwh], axis=-1)
        nested = rng.random(n + (1,)) < 0.05  # inside the true box
        p = np.where(nested, np.concatenate([xy + 0.25 * wh, xy + 0.75 * wh], axis=-1), p)
        inverted = rng.random(n + (1,)) < 0.02  # x2 < x1 (torchvision takes the area as computed)
        p = np.where(inverted, p[..., [2, 3, 0, 1]], p)
        return y, p
    y = (rng.random(shape) < 0.3).astype(np.float64)
    y = np.where(rng.random(shape) < 0.1, rng.random(shape), y)
    p = rng.normal(0.0, 3.0, shape) if opts.get("from_logits") else rng.uniform(0.01, 0.99, shape)
    return y, p


def make_scores(shape, seed=0):
    rng = np.random.default_rng([seed, len(shape), int(np.prod(shape))])
    return rng.normal(0.0, 3.0, shape)


def lib_module(lib):
    if not GPU:
        pytest.skip(NO_GPU)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mod = pytest.importorskip(lib)
    if lib == "torch" and not mod.cuda.is_available():
        pytest.skip("torch has no CUDA here")
    return mod


def to_device(lib, host, dtype):
    """A device array of ``dtype`` holding ``host`` (float64 NumPy) rounded."""
    mod = lib_module(lib)
    if lib == "torch":
        return mod.as_tensor(np.ascontiguousarray(host), device="cuda").to(getattr(mod, dtype))
    if dtype == "bfloat16":
        pytest.skip("CuPy has no bfloat16")
    return mod.asarray(np.asarray(host).astype(dtype))


def to_host(x):
    """float64 NumPy copy of a device array (synchronises)."""
    if type(x).__module__.startswith("torch"):
        return x.detach().to(dtype=__import__("torch").float64).cpu().numpy()
    import cupy

    return cupy.asnumpy(x).astype(np.float64)


def kind_of(lib):
    mod = lib_module(lib)
    return mod.Tensor if lib == "torch" else mod.ndarray


def dtype_name(x):
    return str(x.dtype).replace("torch.", "")


def device_of(x):
    return x.device.index if type(x).__module__.startswith("torch") else x.device.id


def cpu_results(fn, y, p, weights=None, **kw):
    """The CPU's float32 and float64 results (value, grad) on the given host data."""
    out = {}
    for dt in (np.float32, np.float64):
        w = None if weights is None else (weights if np.isscalar(weights) else np.asarray(weights, dt))
        v, g = fn.value_and_grad(np.asarray(y, dt), np.asarray(p, dt), weights=w, **kw)
        out[dt] = (np.asarray(v, np.float64), np.asarray(g, np.float64))
    return out[np.float32], out[np.float64]


def assert_gpu_close(got, cpu32, cpu64, dtype, what, stored=True):
    """The GPU result against the CPU result in the same arithmetic (module
    docstring); ``stored``: an array in the input's dtype (grad, losses)."""
    got = np.asarray(got, np.float64)
    assert got.shape == cpu64.shape, f"{what}: shape {got.shape} != {cpu64.shape}"
    with np.errstate(all="ignore"):
        cond = np.abs(cpu32 - cpu64)
        # The last term allows a few ulps of the array's scale: the GPU's
        # exp/log1p and the CPU's differ by 1-2 ulp, which the conditioning
        # estimate |cpu32 - cpu64| misses where the CPU happens to be exact.
        scale = np.max(np.abs(cpu64[np.isfinite(cpu64)]), initial=0.0) if np.ndim(cpu64) else 0.0
        if dtype == "float64":
            expect, tol = cpu64, 1e-12 * np.abs(cpu64) + 4 * 2.0**-29 * cond + 1e-300
            tol = tol + 8 * 2.0**-52 * scale
        else:
            expect, tol = cpu32, 1e-6 * np.abs(cpu64) + 4 * cond + 1e-37
            tol = tol + 8 * 2.0**-23 * scale
        if stored and dtype == "float16":
            tol = tol + 1e-3 * np.abs(expect) + 2.0**-24
        elif stored and dtype == "bfloat16":
            tol = tol + 1e-2 * np.abs(expect)
        diff = np.abs(got - expect)
        bad = np.isnan(got) != np.isnan(expect)
        bad |= np.isinf(expect) & (got != expect)
        bad |= np.isfinite(expect) & ~(diff <= tol)
    if np.any(bad):
        idx = np.argwhere(np.atleast_1d(bad))[:5]
        g1, e1, t1 = np.atleast_1d(got), np.atleast_1d(expect), np.atleast_1d(np.broadcast_to(tol, expect.shape))
        lines = [f"  at {tuple(i)}: got {g1[tuple(i)]!r}, cpu {e1[tuple(i)]!r}, allowed {t1[tuple(i)]:.3g}" for i in idx]
        raise AssertionError(f"{what}: {int(np.sum(bad))} of {bad.size} differ\n" + "\n".join(lines))


def check_kinds(lib, v, g, reduction, dtype, shape, device, what, losses_shape=None):
    """Results of the input's library, dtype and device; ``losses_shape``:
    the shape of the 'none' losses when it is not the prediction's."""
    kind = kind_of(lib)
    if g is not None:
        assert isinstance(g, kind), f"{what}: grad is {type(g)}"
        assert tuple(g.shape) == tuple(shape) and dtype_name(g) == dtype and device_of(g) == device, what
    if v is None:
        return
    assert isinstance(v, kind), f"{what}: value is {type(v)}"
    assert device_of(v) == device, what
    if reduction == "none":
        want = tuple(shape) if losses_shape is None else tuple(losses_shape)
        assert tuple(v.shape) == want and dtype_name(v) == dtype, f"{what}: losses shape {tuple(v.shape)} != {want}"
    else:
        assert tuple(v.shape) == (), f"{what}: value shape {tuple(v.shape)}"
        assert dtype_name(v) == ("float64" if dtype == "float64" else "float32"), f"{what}: value dtype {v.dtype}"


def on_device(lib, dtype, *hosts):
    """Device arrays of the hosts and the host values they hold (rounded)."""
    devs = [to_device(lib, h, dtype) for h in hosts]
    return devs, [to_host(d) for d in devs]


def streams(lib):
    mod = lib_module(lib)
    if lib == "torch":
        return mod.cuda.Stream(), mod.cuda.Stream(), mod.cuda.stream, lambda: mod.cuda.synchronize()
    return (mod.cuda.Stream(non_blocking=True), mod.cuda.Stream(non_blocking=True), lambda s: s,
            lambda: mod.cuda.Device().synchronize())
