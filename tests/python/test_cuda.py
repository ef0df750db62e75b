"""fastloss on the GPU (fastloss.cuda).

Two parts:

- The pure-Python layer, run everywhere: importing without the extension
  (fastloss._cuda), CuPy or PyTorch; is_available(); the losses on the GPU
  (the registry's GPU rows, gpu_losses()); reading __cuda_array_interface__
  dicts and DLPack capsules into the extension's Desc tuples; the loss
  objects' device-array calls (parsed by fastloss._core, then
  fastloss.cuda._run) with errors worded as on the CPU; host/device mixing;
  MultiLoss routing device arrays to _dispatch_multi as the C++ core routes
  them to _run. A recording stand-in for fastloss._cuda checks what _run and
  _dispatch_multi pass it (every option of every GPU loss), and an emulated
  device (torch CPU tensors, the CPU losses run on the memory the descs
  describe) checks their results end to end (allocated shapes, conversions,
  out=, tuples).
- GPU tests (skipped without a GPU): every loss the GPU runs, CuPy and PyTorch
  inputs, float32/float64/float16/bfloat16, against the CPU result on the same
  data (the CPU is tested against NumPy by the other test files).

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

import contextlib
import ctypes
import re
import subprocess
import sys
import warnings

import numpy as np
import pytest

import fastloss as fl
import fastloss.cuda as flc

GPU = flc.is_available()
NO_GPU = "no CUDA GPU: fastloss._cuda not built or no device"
needs_gpu = pytest.mark.skipif(not GPU, reason=NO_GPU)

# The losses of the GPU, part 1 (the issue's scope).
GPU_LOSSES_PART1 = [
    "mse", "mae", "huber", "smooth_l1", "quantile", "log_cosh", "msle", "poisson_nll", "mape",
    "binary_cross_entropy", "binary_focal", "hinge", "squared_hinge", "soft_margin", "contrastive",
]
# Part 2: the region losses and box_iou (elementwise() of the extension) and
# the adversarial losses of score arrays (scores() of the extension).
REGION_LOSSES = ["dice", "jaccard", "tversky", "focal_tversky"]
GPU_LOSSES = GPU_LOSSES_PART1 + REGION_LOSSES + ["box_iou"]
SCORE_LOSSES = ["gan_discriminator", "gan_generator", "wasserstein_critic", "wasserstein_generator"]


# ==========================================================================
# Part 1: the pure-Python layer (no GPU needed)
# ==========================================================================


def run_python(code):
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_import_without_extension_cupy_or_torch():
    # None in sys.modules makes an import fail: no fastloss._cuda, no CuPy, no torch.
    out = run_python(
        "import sys\n"
        "sys.modules['fastloss._cuda'] = None; sys.modules['torch'] = None; sys.modules['cupy'] = None\n"
        "import fastloss, fastloss.cuda as c\n"
        "assert c.is_available() is False\n"
        "assert c.device_count() == 0\n"
        "try:\n"
        "    c.device_name()\n"
        "except RuntimeError as e:\n"
        "    print('RuntimeError', e)\n"
        "import numpy as np\n"
        "print(float(fastloss.mse(np.zeros(3), np.ones(3))))\n"
    )
    assert "RuntimeError device_name: no CUDA GPU" in out
    assert out.strip().endswith("1.0")


def test_import_does_not_import_torch_or_cupy():
    out = run_python("import sys, fastloss.cuda as c\nc.is_available()\n"
                     "print('torch' in sys.modules, 'cupy' in sys.modules)")
    assert out.split() == ["False", "False"]


@pytest.mark.skipif(GPU, reason="a GPU is available here")
def test_not_available_here():
    assert flc.is_available() is False
    assert flc.device_count() == 0
    with pytest.raises(RuntimeError, match="device_name: no CUDA GPU"):
        flc.device_name()
    assert flc._why_unavailable()


class FakeExt:
    """A stand-in for fastloss._cuda that records elementwise() calls (their
    arguments, then a dict of the keyword ones: {} or {"aux": desc}) and
    scores() calls."""

    LOSSES = tuple(GPU_LOSSES + SCORE_LOSSES)

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


@pytest.fixture
def fake_ext(monkeypatch):
    """fastloss.cuda with a recording extension and no CuPy (the fake
    pointers below must never reach a real library)."""
    ext = FakeExt()
    monkeypatch.setattr(flc, "_ext", lambda: ext)
    monkeypatch.setattr(flc, "_cupy", lambda: None)
    return ext


def test_availability_from_the_extension(monkeypatch):
    monkeypatch.setattr(flc, "_ext", lambda: None)
    assert flc.is_available() is False and flc.device_count() == 0
    for ext, ok in [(FakeExt(False, 0), False), (FakeExt(None, 0), False), (FakeExt(True, 2), True)]:
        monkeypatch.setattr(flc, "_ext", lambda ext=ext: ext)
        assert flc.is_available() is ok
        assert flc.device_count() == ext.count
        if not ok:
            with pytest.raises(RuntimeError, match="no CUDA GPU"):
                flc.device_name()
    assert flc.device_name() == "Fake GPU 0"
    assert flc.device_name(1) == "Fake GPU 1"
    with pytest.raises(ValueError, match=r"device must be in \[0, 2\), got 2"):
        flc.device_name(2)
    with pytest.raises(TypeError, match="device must be an integer"):
        flc.device_name(0.5)


GPU_DRIVERS = {"elementwise", "regions", "boxes"}


def test_gpu_losses_come_from_the_registry():
    core = fl._core
    rows = [n for n in core.loss_names() if core.loss_info(n)["gpu"]]
    assert flc.gpu_losses() == rows + SCORE_LOSSES
    assert set(GPU_LOSSES) <= set(rows)
    for name in core.loss_names():  # the GPU runs exactly the rows of its drivers
        assert core.loss_info(name)["gpu"] is (core.loss_info(name)["driver"] in GPU_DRIVERS), name
    assert flc._gpu_losses() == ", ".join(rows + SCORE_LOSSES)
    assert "gpu_losses" in flc.__all__
    names = {"contrastive": ("y_true", "distance"), "box_iou": ("boxes_true", "boxes_pred")}
    for name in GPU_LOSSES:
        driver, true_name, pred_name, on_gpu, _, _ = flc._loss_info(name)
        assert (true_name, pred_name) == names.get(name, ("y_true", "y_pred")) and on_gpu is True
        assert driver == ("regions" if name in REGION_LOSSES else "boxes" if name == "box_iou" else "elementwise")
    assert flc._loss_info("binary_cross_entropy")[4] == "pos_weight"  # the real-or-array option: aux
    assert flc._loss_info("dice")[5] == "axis" and flc._loss_info("mse")[4:] == (None, None)
    assert sorted(flc._SCORE_SPECS) == sorted(SCORE_LOSSES)
    for name in SCORE_LOSSES:
        assert {k: d for k, (_, d) in flc._SCORE_SPECS[name].items()} == getattr(fl, name).options, name


def test_cuda_module_restates_no_single_input_loss():
    # The parse, the loss list and the options live in the registry only.
    for gone in ("_dispatch", "_parse", "_option", "_real", "_axes", "_SPECS", "_LOSSES_SHAPE", "_ALIASES"):
        assert not hasattr(flc, gone), gone
    from fastloss import _cuda_arrays, _cuda_losses

    source = ""
    for module in (flc, _cuda_arrays, _cuda_losses):  # fastloss.cuda and the modules it is split into
        with open(module.__file__, encoding="utf-8") as f:
            source += f.read()
    core = fl._core
    for name in core.loss_names():
        for n in (name, *core.loss_info(name)["aliases"]):
            assert re.search(rf"\b{n}\b", source) is None, n
    assert "gpu_losses()" in flc.__doc__


def test_losses_shape_from_the_driver():
    shape = (2, 3, 4, 5)
    assert flc._losses_shape("elementwise", shape, None) == shape
    assert flc._losses_shape("regions", shape, None) == ()
    assert flc._losses_shape("regions", shape, (2, 3)) == (2, 3)
    assert flc._losses_shape("regions", shape, (-1, 0)) == (3, 4)
    assert flc._losses_shape("regions", shape, ()) == shape
    assert flc._losses_shape("regions", shape, (7,)) == shape  # left to the extension
    assert flc._losses_shape("boxes", (6, 7, 4), None) == (6, 7)
    assert flc._losses_shape("boxes", (), None) == ()


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


def desc_of(cai_obj, name="y_pred", device=0):
    return flc._cai_desc("mse", name, cai_obj.__cuda_array_interface__, device)


def test_cai_contiguous():
    desc, ro = desc_of(FakeCAI((3, 5)))
    assert desc == (BASE, (3, 5), (5, 1), "float32", 0)
    assert ro is False
    desc, ro = desc_of(FakeCAI((2, 3, 4), "<f8", readonly=True), device=3)
    assert desc == (BASE, (2, 3, 4), (12, 4, 1), "float64", 3)
    assert ro is True
    assert desc_of(FakeCAI(()))[0] == (BASE, (), (), "float32", 0)
    assert desc_of(FakeCAI((0, 4), ptr=0))[0] == (0, (0, 4), (4, 1), "float32", 0)


def test_cai_strides_become_elements():
    # a[:, ::2] of a (4, 10) float32 array; its transpose; reversed rows; a broadcast row
    assert desc_of(FakeCAI((4, 5), strides=(40, 8)))[0][2] == (10, 2)
    assert desc_of(FakeCAI((5, 4), strides=(8, 40)))[0][2] == (2, 10)
    assert desc_of(FakeCAI((4, 10), "<f8", strides=(-80, 8), ptr=BASE + 240))[0][:3] == (BASE + 240, (4, 10), (-10, 1))
    assert desc_of(FakeCAI((6, 7), "<f2", strides=(0, 2)))[0][2:4] == ((0, 1), "float16")


@pytest.mark.parametrize("typestr, dtype", [
    ("<f4", "float32"), ("<f8", "float64"), ("<f2", "float16"), ("<V2", "bfloat16"),
    ("|b1", "bool"), ("<i4", "int32"), ("|u1", "uint8"), ("<i8", "int64"), ("<c8", "complex64"),
])
def test_cai_typestr(typestr, dtype):
    assert desc_of(FakeCAI((3,), typestr))[0][3] == dtype


def test_cai_errors_name_the_argument():
    with pytest.raises(TypeError, match=r"^mse: y_true must be in native \(little-endian\) byte order, got typestr '>f4'"):
        desc_of(FakeCAI((3,), ">f4"), "y_true")
    with pytest.raises(ValueError, match=r"^mse: weights's strides must be multiples of its item size \(4 bytes\), got \(6,\)"):
        desc_of(FakeCAI((3,), "<f4", strides=(6,)), "weights")
    with pytest.raises(ValueError, match=r"^mse: y_pred's strides must be multiples .*\(8 bytes\)"):
        desc_of(FakeCAI((3, 2), "<f8", strides=(16, 4)))
    with pytest.raises(ValueError, match=r"^mse: out's data pointer is not aligned to its item size \(4 bytes\)"):
        desc_of(FakeCAI((3,), ptr=BASE + 2), "out")
    with pytest.raises(TypeError, match=r"^mse: y_pred has a mask"):
        desc_of(FakeCAI((3,), mask=FakeCAI((3,), "|b1")))
    with pytest.raises(TypeError, match=r"^mse: y_pred has an invalid __cuda_array_interface__ typestr 'f4'"):
        desc_of(FakeCAI((3,), "f4"))
    with pytest.raises(TypeError, match=r"^mse: y_pred has 1 strides for 2 dimensions"):
        desc_of(FakeCAI((3, 2), strides=(4,)))


# --- DLPack capsules ----------------------------------------------------------


def test_read_numpy_capsules_in_place():
    a = np.arange(48.0).reshape(6, 8)
    for view in (a, a[:, ::2], a[::-1], a.T, a[1:, 3:]):
        for kw in ({}, {"max_version": (1, 0)}):
            cap = view.__dlpack__(**kw)
            ptr, shape, strides, dtype, device, ro = flc._read_capsule(cap)
            assert ptr == view.ctypes.data  # byte_offset included
            assert shape == view.shape
            assert strides == tuple(s // 8 for s in view.strides)
            assert dtype == "float64" and device == (1, 0) and ro is False
            # Borrowed, not consumed: the capsule keeps its name (its destructor frees it).
            assert ('"dltensor_versioned"' if kw else '"dltensor"') in repr(cap)
    r = np.arange(4, dtype=np.float32)
    r.flags.writeable = False
    assert flc._read_capsule(r.__dlpack__(max_version=(1, 0)))[3:] == ("float32", (1, 0), True)
    with pytest.raises(TypeError, match="not an unconsumed DLPack capsule"):
        flc._read_capsule(object())


def test_read_torch_capsules_bfloat16_float16():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch = pytest.importorskip("torch")
    t = torch.arange(12, dtype=torch.bfloat16)[3:]
    ptr, shape, strides, dtype, device, _ = flc._read_capsule(t.__dlpack__())
    assert (ptr, shape, strides, dtype, device) == (t.data_ptr(), (9,), (1,), "bfloat16", (1, 0))
    t = torch.zeros(3, 4, dtype=torch.float16).t()
    ptr, shape, strides, dtype, _, _ = flc._read_capsule(t.__dlpack__(max_version=(1, 0)))
    assert (ptr, shape, strides, dtype) == (t.data_ptr(), (4, 3), (1, 4), "float16")


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


def test_dlpack_desc():
    keep = []
    x = FakeDLPack((4, 6), strides=(12, 2), byte_offset=16)
    desc, ro = flc._describe("mse", "y_pred", x, "dlpack", 0, 7, keep)
    assert desc == (BASE + 16, (4, 6), (12, 2), "float32", 0) and ro is False
    assert x.streams == [7] and len(keep) == 1
    x = FakeDLPack((5,), code=4, bits=16, versioned=False, legacy_signature=True, device=1)
    desc, _ = flc._describe("mse", "y_true", x, "dlpack", 1, 0, keep)
    assert desc == (BASE, (5,), (1,), "bfloat16", 1)
    assert x.streams == [1]  # the array API's legacy default stream: 1, never 0
    x = FakeDLPack((2, 3), code=2, bits=16, read_only=True)
    assert flc._describe("mse", "out", x, "dlpack", 0, 5, keep) == ((BASE, (2, 3), (3, 1), "float16", 0), True)
    with pytest.raises(ValueError, match="^mse: y_pred's data pointer is not aligned"):
        flc._describe("mse", "y_pred", FakeDLPack((3,), ptr=BASE + 1), "dlpack", 0, 5, keep)


# --- Loss calls with device arrays on the recording extension ----------------------
# fastloss._core parses them (as on the CPU) and hands them to fastloss.cuda._run.


def call(loss, want, args, kwargs):
    """A call of the loss object (``want``: 0 value, 1 grad, 2 both)."""
    fn = getattr(fl, loss)
    return [fn, fn.grad, fn.value_and_grad][want](*args, **kwargs)


def last_call(ext):
    (name, options, reduction, y_true, y_pred, weights, grad, losses, result, stream, kwargs), = ext.calls[-1:]
    return dict(name=name, options=options, reduction=reduction, y_true=y_true, y_pred=y_pred,
                weights=weights, grad=grad, losses=losses, result=result, stream=stream, kwargs=kwargs)


def registry_defaults(name):
    return {o["name"]: o["default"] for o in fl._core.loss_info(name)["options"]}


def other_value(name, option):
    """A value other than the default of a registry option that the CPU
    accepts (what the GPU's options dict then holds)."""
    t, d = option["type"], option["default"]
    if t == "bool":
        return not d
    if t == "float or None":
        return None if d is not None else 0.5
    if t == "None, int or tuple of ints":
        return (1,)
    if t == "str":
        return option["choices"][-1]
    assert t in ("float", "float or array_like"), f"an option type this test does not know: {t} ({name})"
    host = np.full((3, 4), 0.5)
    for v in (d / 2, 0.125, 2.0, -1.0):  # the first one inside the option's range
        if v != d:
            try:
                getattr(fl, name)(host, host, **{option["name"]: v})
            except ValueError:
                continue
            return v
    raise AssertionError(f"no other value of {name}'s {option['name']}")


def test_every_option_of_every_gpu_loss_reaches_the_extension(fake_ext, monkeypatch):
    seen = []
    real_run = flc._run
    monkeypatch.setattr(flc, "_run", lambda *a: seen.append(a) or real_run(*a))
    y, p, out = FakeCAI((3, 4)), FakeCAI((3, 4), ptr=P2[0]), FakeCAI((3, 4), ptr=P2[1])
    rows = [n for n in fl._core.loss_names() if fl._core.loss_info(n)["gpu"]]
    for name in rows:
        info = fl._core.loss_info(name)
        defaults = registry_defaults(name)
        assert defaults == fl.LOSSES[name].options, name
        args = {info["true_name"]: y, info["pred_name"]: p}
        assert call(name, 1, (), dict(args, out=out)) is out
        c = last_call(fake_ext)
        assert c["name"] == name and c["options"] == defaults and c["kwargs"] == {}, name
        assert c["y_true"] == (BASE, (3, 4), (4, 1), "float32", 0)
        assert c["grad"] == (P2[1], (3, 4), (4, 1), "float32", 0), name
        # _run got the registry name, want, the arrays as given and the parsed call
        assert seen[-1][:7] == (name, 1, y, p, "mean", None, out) and seen[-1][8:] == (None, None), name
        for option in info["options"]:
            value = other_value(name, option)
            call(name, 1, (), dict(args, out=out, **{option["name"]: value}))
            got = last_call(fake_ext)["options"]
            assert got == dict(defaults, **{option["name"]: value}), (name, option["name"])
            assert type(got[option["name"]]) is type(value), (name, option["name"])
    for alias in ("bce", "mean_squared_error", "mean_absolute_error"):  # resolved by the core
        assert call(alias, 1, (y, p), {"out": out}) is out
        assert seen[-1][0] == last_call(fake_ext)["name"] == getattr(fl, alias).name != alias


def test_dispatch_passes_descs_options_and_stream(fake_ext):
    y = FakeCAI((4, 5), strides=(40, 8), ptr=BASE, device=0)
    p = FakeCAI((4, 5), ptr=BASE + 4096, device=0)
    out = FakeCAI((4, 5), ptr=BASE + 8192, device=0)
    w = FakeCAI((4, 1), ptr=BASE + 12288, device=0)
    g = call("huber", 1, (y, p), {"delta": 2, "out": out, "weights": w, "reduction": "sum",
                                          "stream": 1234})
    assert g is out
    c = last_call(fake_ext)
    assert c == dict(name="huber", options={"delta": 2.0}, reduction="sum",
                     y_true=(BASE, (4, 5), (10, 2), "float32", 0),
                     y_pred=(BASE + 4096, (4, 5), (5, 1), "float32", 0),
                     weights=(BASE + 12288, (4, 1), (1, 1), "float32", 0),
                     grad=(BASE + 8192, (4, 5), (5, 1), "float32", 0),
                     losses=None, result=None, stream=1234, kwargs={})
    assert type(c["options"]["delta"]) is float


def test_dispatch_options_have_the_cpu_defaults(fake_ext):
    y, p, out = FakeCAI((3,)), FakeCAI((3,)), FakeCAI((3,))
    call("bce", 1, (y,), {"y_pred": p, "out": out, "from_logits": 1, "pos_weight": np.float32(2.5)})
    c = last_call(fake_ext)
    assert c["name"] == "binary_cross_entropy"
    assert c["options"] == {"from_logits": True, "eps": 1e-7, "pos_weight": 2.5, "label_smoothing": 0.0}
    assert c["kwargs"] == {}  # a NumPy scalar pos_weight is the number, not an array
    call("bce", 1, (y, p), {"out": out, "pos_weight": None})  # None: the default
    assert last_call(fake_ext)["options"] == {"from_logits": False, "eps": 1e-7, "pos_weight": 1.0,
                                              "label_smoothing": 0.0}
    call("binary_focal", 1, (y, p), {"out": out, "alpha": None, "gamma": np.float64(0.5)})
    assert last_call(fake_ext)["options"] == {"alpha": None, "gamma": 0.5, "from_logits": False, "eps": 1e-7,
                                              "label_smoothing": 0.0}
    call("poisson_nll", 1, (y, p), {"out": out, "log_input": np.bool_(False)})
    assert last_call(fake_ext)["options"] == {"log_input": False, "full": False, "eps": 1e-8}
    call("contrastive", 1, (), {"y_true": y, "distance": p, "out": out})
    assert last_call(fake_ext)["options"] == {"margin": 1.0}
    call("mse", 1, (y, p), {"out": out})
    assert last_call(fake_ext)["options"] == {}


def test_dispatch_streams(fake_ext):
    y, out = FakeCAI((3,)), FakeCAI((3,))

    class TorchLikeStream:
        cuda_stream = 0xABC0

    class CupyLikeStream:
        ptr = 0xDEF0

    p = FakeCAI((3,), stream=0x5550)  # CAI v3: the producer's stream
    call("mse", 1, (y, p), {"out": out})
    assert last_call(fake_ext)["stream"] == 0x5550
    for s, v in [(TorchLikeStream(), 0xABC0), (CupyLikeStream(), 0xDEF0), (0, 0), (2, 2)]:
        call("mse", 1, (y, p), {"out": out, "stream": s})
        assert last_call(fake_ext)["stream"] == v
    call("mse", 1, (y, FakeCAI((3,))), {"out": out})
    assert last_call(fake_ext)["stream"] == 0  # nothing says: the legacy default stream
    with pytest.raises(TypeError, match="^mse: stream must be an int"):
        call("mse", 1, (y, p), {"out": out, "stream": "fast"})
    with pytest.raises(ValueError, match="^mse: stream must be a cudaStream_t"):
        call("mse", 1, (y, p), {"out": out, "stream": -3})


def test_dispatch_dlpack(fake_ext):
    y = FakeDLPack((2, 3), byte_offset=8)
    p = FakeDLPack((2, 3), strides=(1, 2))
    out = FakeDLPack((2, 3))
    assert call("mae", 1, (y, p), {"out": out, "stream": 0}) is out
    c = last_call(fake_ext)
    assert c["y_true"] == (BASE + 8, (2, 3), (3, 1), "float32", 0)
    assert c["y_pred"] == (BASE, (2, 3), (1, 2), "float32", 0)
    assert y.streams == p.streams == out.streams == [1]
    with pytest.raises(ValueError, match="^mae: out must be writable"):
        call("mae", 1, (y, p), {"out": FakeDLPack((2, 3), read_only=True)})


def test_dispatch_device_resolution(fake_ext):
    # y_pred's producer names no device: it is the others'.
    y, p, out = FakeCAI((3,), device=1), FakeCAI((3,)), FakeCAI((3,))
    call("mse", 1, (y, p), {"out": out})
    c = last_call(fake_ext)
    assert c["y_true"][4] == c["y_pred"][4] == c["grad"][4] == 1
    with pytest.raises(ValueError, match=r"^mse: y_true is on cuda:1 but y_pred is on cuda:0"):
        call("mse", 1, (y, FakeCAI((3,), device=0)), {"out": out})
    with pytest.raises(ValueError, match=r"^mse: weights is on cuda:2 but y_pred is on cuda:1"):
        call("mse", 1, (y, p), {"out": out, "weights": FakeCAI((3,), device=2)})
    with pytest.raises(ValueError, match=r"^mse: out is on cuda:0 but y_pred is on cuda:1"):
        call("mse", 1, (y, p), {"out": FakeCAI((3,), device=0)})


def test_dispatch_dtype_errors(fake_ext):
    y, out = FakeCAI((3,)), FakeCAI((3,))
    with pytest.raises(TypeError, match=r"^mse: y_pred must be float32, float64, float16 or bfloat16, got int32"):
        call("mse", 1, (y, FakeCAI((3,), "<i4")), {"out": out})
    with pytest.raises(TypeError, match=r"^mse: y_true must hold real numbers, got complex64"):
        call("mse", 1, (FakeCAI((3,), "<c8"), FakeCAI((3,))), {"out": out})
    # Another dtype is converted by the array's library: here there is none.
    with pytest.raises(TypeError, match=r"^mse: y_true has dtype float64, not y_pred's float32, and CuPy is not installed"):
        call("mse", 1, (FakeCAI((3,), "<f8"), FakeCAI((3,))), {"out": out})
    with pytest.raises(TypeError, match=r"^hinge: weights has dtype int64, not y_pred's float32"):
        call("hinge", 1, (y, FakeCAI((3,))), {"out": out, "weights": FakeCAI((3,), "<i8")})
    with pytest.raises(ValueError, match=r"^mse: out must have y_pred's dtype float32, got float64"):
        call("mse", 1, (y, FakeCAI((3,))), {"out": FakeCAI((3,), "<f8")})
    with pytest.raises(ValueError, match=r"^mse: out must have y_pred's shape \(3,\), got \(1, 3\)"):
        call("mse", 1, (y, FakeCAI((3,))), {"out": FakeCAI((1, 3))})
    with pytest.raises(ValueError, match=r"^mse: out must be writable"):
        call("mse", 1, (y, FakeCAI((3,))), {"out": FakeCAI((3,), readonly=True)})


def test_dispatch_results_need_a_library(fake_ext):
    # A producer that is neither torch nor CuPy gets CuPy results; no CuPy here.
    y, p = FakeCAI((3,)), FakeCAI((3,))
    for want, kw in [(0, {}), (2, {"out": FakeCAI((3,))}), (1, {}), (1, {"out": FakeCAI((3,)), "weights": 2.0})]:
        with pytest.raises(TypeError, match=r"^mse: y_pred is a FakeCAI \(neither a torch tensor nor a CuPy array\); "
                                            "its results are CuPy arrays, and CuPy is not installed"):
            call("mse", want, (y, p), kw)
    assert fake_ext.calls == []


HOST_VALUES = [np.zeros(3, np.float32), [0.0, 1.0, 2.0], 1.5, np.float32(1.5), np.zeros((), np.float32)]


@pytest.mark.parametrize("host", HOST_VALUES, ids=lambda h: type(h).__name__)
@pytest.mark.parametrize("with_ext", [True, False], ids=["ext", "no_ext"])
def test_host_device_mixing_is_a_type_error(host, with_ext, monkeypatch):
    ext = FakeExt()
    monkeypatch.setattr(flc, "_ext", lambda: ext if with_ext else None)
    monkeypatch.setattr(flc, "_cupy", lambda: None)
    dev = FakeCAI((3,))
    tname = type(host).__name__
    with pytest.raises(TypeError, match=rf"^mse: y_true is a host {tname} but y_pred is on the GPU"):
        call("mse", 0, (host, dev), {})
    with pytest.raises(TypeError, match=rf"^mse: y_pred is a host {tname} but y_true is on the GPU"):
        call("mse", 2, (dev, host), {})
    with pytest.raises(TypeError, match=rf"^contrastive: distance is a host {tname} but y_true is on the GPU"):
        call("contrastive", 1, (dev, host), {})
    if not isinstance(host, (float, np.floating)):  # a number is a valid weight
        with pytest.raises(TypeError, match=rf"^mse: weights is a host {tname} but y_pred is on the GPU"):
            call("mse", 0, (dev, dev), {"weights": host})
    with pytest.raises(TypeError, match=rf"^mse: out must be a CUDA array like y_pred, got a host {tname}"):
        call("mse", 1, (dev, dev), {"out": host})
    assert ext.calls == []


def test_torch_cpu_tensor_is_host(monkeypatch):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch = pytest.importorskip("torch")
    monkeypatch.setattr(flc, "_ext", lambda: None)
    assert flc._locate(torch.zeros(3)) == (None, None)
    with pytest.raises(TypeError, match=r"^mse: y_true is a host Tensor but y_pred is on the GPU"):
        call("mse", 0, (torch.zeros(3), FakeCAI((3,))), {})


def test_without_extension_device_arrays_are_a_runtime_error(monkeypatch):
    monkeypatch.setattr(flc, "_ext", lambda: None)
    with pytest.raises(RuntimeError, match=r"^mse: y_pred is a CUDA array but this fastloss has no CUDA backend"):
        call("mse", 0, (FakeCAI((3,)), FakeCAI((3,))), {})


@pytest.mark.parametrize("want, args, kwargs, exc, message", [
    (0, (1, 2, 3), {}, TypeError, r"^mse\(\) takes 2 positional arguments \(y_true, y_pred\) but 3 were given"),
    (0, (1,), {}, TypeError, r"^mse\(\) missing required argument 'y_pred'"),
    (0, (), {"y_pred": 1}, TypeError, r"^mse\(\) missing required argument 'y_true'"),
    (0, (1, 2), {"y_true": 1}, TypeError, r"^mse\(\) got multiple values for argument 'y_true'"),
    (0, (1, 2), {"delta": 1.0}, TypeError, r"^mse\(\) got an unexpected keyword argument 'delta'"),
    (0, (1, 2), {"out": 1}, TypeError, r"^mse\(\) got an unexpected keyword argument 'out'"),
    (0, (1, 2), {"reduction": "avg"}, ValueError, r"^mse: reduction must be 'mean', 'sum' or 'none', got 'avg'"),
    (0, (1, 2), {"reduction": None}, ValueError, r"^mse: reduction must be 'mean', 'sum' or 'none', got None"),
])
def test_argument_errors_as_on_the_cpu(want, args, kwargs, exc, message, fake_ext):
    # with device arrays for the ints: fastloss._core's parse of the GPU call
    def dev(v):
        return FakeCAI((3,), ptr=BASE + 4096 * v) if type(v) is int else v

    with pytest.raises(exc, match=message):
        call("mse", want, tuple(map(dev, args)), {k: dev(v) for k, v in kwargs.items()})
    assert fake_ext.calls == []
    # the same call on the CPU says the same
    fn = [fl.mse, fl.mse.grad, fl.mse.value_and_grad][want]
    with pytest.raises(exc, match=message):
        fn(*args, **kwargs)


@pytest.mark.parametrize("loss, kwargs, exc, message", [
    ("huber", {"delta": "2"}, TypeError, r"^huber: delta must be a real number, got str"),
    ("huber", {"delta": None}, TypeError, r"^huber: delta must be a real number, got NoneType"),
    ("huber", {"delta": True}, TypeError, r"^huber: delta must be a real number, got bool"),
    ("binary_cross_entropy", {"from_logits": 2}, TypeError, r"^binary_cross_entropy: from_logits must be a bool, got int"),
    ("binary_cross_entropy", {"from_logits": "yes"}, TypeError, r"^binary_cross_entropy: from_logits must be a bool, got str"),
    ("binary_cross_entropy", {"pos_weight": np.ones(3)}, TypeError,
     r"^binary_cross_entropy: pos_weight is a host ndarray but y_pred is on the GPU"),
    ("binary_cross_entropy", {"pos_weight": True}, TypeError,
     r"^binary_cross_entropy: pos_weight must be a real number or a CUDA array on the GPU, got bool"),
    ("binary_focal", {"gamma": None}, TypeError, r"^binary_focal: gamma must be a real number, got NoneType"),
    ("contrastive", {"y_pred": 1}, TypeError, r"^contrastive\(\) got an unexpected keyword argument 'y_pred'"),
    ("categorical_cross_entropy", {}, TypeError, r"^categorical_cross_entropy: CUDA arrays are not supported by this loss yet"),
])
def test_option_errors(loss, kwargs, exc, message, fake_ext):
    with pytest.raises(exc, match=message):
        call(loss, 0, (FakeCAI((3,)), FakeCAI((3,))), kwargs)
    if loss != "categorical_cross_entropy" and "pos_weight" not in kwargs:
        with pytest.raises(exc, match=message):
            getattr(fl, loss)(np.zeros(3), np.full(3, 0.5), **kwargs)


def test_option_must_not_be_a_device_array(fake_ext):
    with pytest.raises(TypeError, match=r"^huber: delta must be a real number, got FakeCAI"):
        call("huber", 0, (FakeCAI((3,)), FakeCAI((3,))), {"delta": FakeCAI(())})


# --- Part 2 on the recording extension: region losses, box_iou, array pos_weight ---

REGION_DEFAULTS = {"smooth": 1e-6, "axis": None, "squared": False, "from_logits": False}
P2 = (BASE + 4096, BASE + 8192, BASE + 12288)  # fake addresses of y_pred, out, a third array


@pytest.mark.parametrize("axis, axes", [
    (None, None), (1, (1,)), (-1, (-1,)), (np.int64(2), (2,)), ((1, 2), (1, 2)), ([0, -1], (0, -1)), ((), ()),
], ids=repr)
def test_dispatch_region_axis_is_a_tuple_or_none(fake_ext, axis, axes):
    y, p, out = FakeCAI((2, 3, 4)), FakeCAI((2, 3, 4), ptr=P2[0]), FakeCAI((2, 3, 4), ptr=P2[1])
    assert call("dice", 1, (y, p), {"out": out, "axis": axis}) is out
    c = last_call(fake_ext)
    assert c["name"] == "dice" and c["options"] == dict(REGION_DEFAULTS, axis=axes)
    assert c["options"]["axis"] is None or (type(c["options"]["axis"]) is tuple
                                            and all(type(a) is int for a in c["options"]["axis"]))
    assert c["grad"] == (P2[1], (2, 3, 4), (12, 4, 1), "float32", 0)
    assert c["kwargs"] == {} and c["losses"] is None and c["result"] is None


def test_dispatch_part2_options(fake_ext):
    y, p, out = FakeCAI((2, 3)), FakeCAI((2, 3), ptr=P2[0]), FakeCAI((2, 3), ptr=P2[1])
    call("jaccard", 1, (y, p), {"out": out})
    assert last_call(fake_ext)["options"] == REGION_DEFAULTS
    call("tversky", 1, (y, p), {"out": out, "alpha": 0.3, "beta": np.float32(0.7), "from_logits": 1,
                                         "squared": np.bool_(True), "smooth": 0})
    assert last_call(fake_ext)["options"] == dict(REGION_DEFAULTS, alpha=0.3, beta=float(np.float32(0.7)),
                                                  from_logits=True, squared=True, smooth=0.0)
    call("focal_tversky", 1, (y, p), {"out": out, "gamma": 2, "axis": 0})
    c = last_call(fake_ext)
    assert c["options"] == dict(REGION_DEFAULTS, alpha=0.5, beta=0.5, gamma=2.0, axis=(0,))
    assert type(c["options"]["gamma"]) is float
    # box_iou: its arguments are boxes_true and boxes_pred
    b, bp, bout = FakeCAI((5, 4)), FakeCAI((5, 4), ptr=P2[0]), FakeCAI((5, 4), ptr=P2[1])
    assert call("box_iou", 1, (), {"boxes_true": b, "boxes_pred": bp, "out": bout}) is bout
    c = last_call(fake_ext)
    assert c["options"] == {"kind": "iou", "eps": 1e-7} and c["y_pred"][0] == P2[0]
    for kind in ("iou", "giou", "diou", "ciou"):
        call("box_iou", 1, (b, bp), {"out": bout, "kind": kind, "eps": 1e-9})
        assert last_call(fake_ext)["options"] == {"kind": kind, "eps": 1e-9}
    # the loss objects route device arrays here (C++ Dispatch -> fastloss.cuda._run)
    assert fl.box_iou.grad(b, bp, out=bout, kind="ciou") is bout
    assert last_call(fake_ext)["options"] == {"kind": "ciou", "eps": 1e-7}
    assert fl.dice.grad(y, p, out=out, axis=[1]) is out
    assert last_call(fake_ext)["options"] == dict(REGION_DEFAULTS, axis=(1,))


@pytest.mark.parametrize("loss, kwargs, exc, message", [
    ("dice", {"axis": 1.0}, TypeError, r"^dice: axis must be None, an int or a tuple of ints, got float$"),
    ("dice", {"axis": np.float64(0.0)}, TypeError, r"^dice: axis must be None, an int or a tuple of ints, got float64$"),
    ("dice", {"axis": True}, TypeError, r"^dice: axis must be None, an int or a tuple of ints, got bool$"),
    ("jaccard", {"axis": "0"}, TypeError, r"^jaccard: axis must be None, an int or a tuple of ints, got str$"),
    ("tversky", {"axis": (0, 1.5)}, TypeError, r"^tversky: axis must be None, an int or a tuple of ints, got float$"),
    ("dice", {"axis": [0, None]}, TypeError, r"^dice: axis must be None, an int or a tuple of ints, got NoneType$"),
    ("dice", {"axis": np.array([0, 1])}, TypeError, r"^dice: axis must be None, an int or a tuple of ints, got ndarray$"),
    ("focal_tversky", {"axis": 2000}, ValueError, r"^focal_tversky: axis is out of range$"),
    ("dice", {"axis": (0, -1001)}, ValueError, r"^dice: axis is out of range$"),
    ("dice", {"smooth": None}, TypeError, r"^dice: smooth must be a real number, got NoneType"),
    ("dice", {"squared": 2}, TypeError, r"^dice: squared must be a bool, got int"),
    ("jaccard", {"from_logits": "yes"}, TypeError, r"^jaccard: from_logits must be a bool, got str"),
    ("dice", {"alpha": 0.5}, TypeError, r"^dice\(\) got an unexpected keyword argument 'alpha'"),
    ("tversky", {"gamma": 1.0}, TypeError, r"^tversky\(\) got an unexpected keyword argument 'gamma'"),
    ("focal_tversky", {"gamma": "1"}, TypeError, r"^focal_tversky: gamma must be a real number, got str"),
    ("box_iou", {"kind": "GIoU"}, ValueError, r"^box_iou: kind must be one of 'iou', 'giou', 'diou', 'ciou', got 'GIoU'$"),
    ("box_iou", {"kind": None}, ValueError, r"^box_iou: kind must be one of 'iou', 'giou', 'diou', 'ciou', got None$"),
    ("box_iou", {"kind": 1}, ValueError, r"^box_iou: kind must be one of 'iou', 'giou', 'diou', 'ciou', got 1$"),
    ("box_iou", {"eps": None}, TypeError, r"^box_iou: eps must be a real number, got NoneType"),
    ("box_iou", {"axis": 0}, TypeError, r"^box_iou\(\) got an unexpected keyword argument 'axis'"),
    ("box_iou", {"y_pred": 1}, TypeError, r"^box_iou\(\) got an unexpected keyword argument 'y_pred'"),
    ("box_iou", {"reduction": "avg"}, ValueError, r"^box_iou: reduction must be 'mean', 'sum' or 'none', got 'avg'"),
])
def test_part2_option_errors_as_on_the_cpu(loss, kwargs, exc, message, fake_ext):
    shape = (3, 4)
    # through the loss object (the C++ parses, then routes device arrays to fastloss.cuda)
    with pytest.raises(exc, match=message):
        getattr(fl, loss)(FakeCAI(shape), FakeCAI(shape), **kwargs)
    # the CPU says the same
    with pytest.raises(exc, match=message):
        getattr(fl, loss)(np.zeros(shape), np.full(shape, 0.5), **kwargs)
    assert fake_ext.calls == []


def test_part2_axis_must_not_be_a_device_array(fake_ext):
    with pytest.raises(TypeError, match=r"^dice: axis must be None, an int or a tuple of ints, got FakeCAI$"):
        call("dice", 0, (FakeCAI((3,)), FakeCAI((3,))), {"axis": FakeCAI((), "<i8")})
    with pytest.raises(TypeError, match=r"^dice: axis must be None, an int or a tuple of ints, got FakeCAI$"):
        call("dice", 0, (FakeCAI((3,)), FakeCAI((3,))), {"axis": (0, FakeCAI((), "<i8"))})


def test_dispatch_pos_weight_array_is_aux(fake_ext):
    y, p, out = FakeCAI((4, 3)), FakeCAI((4, 3), ptr=P2[0]), FakeCAI((4, 3), ptr=P2[1])
    pw = FakeCAI((3,), ptr=P2[2])
    assert call("bce", 1, (y, p), {"out": out, "pos_weight": pw, "from_logits": True}) is out
    c = last_call(fake_ext)
    assert c["name"] == "binary_cross_entropy"
    # the number pos_weight keeps its default (the extension reads the array, aux)
    assert c["options"] == {"from_logits": True, "eps": 1e-7, "pos_weight": 1.0, "label_smoothing": 0.0}
    assert c["kwargs"] == {"aux": (P2[2], (3,), (1,), "float32", 0)}
    # views are passed as they are (strides in elements; broadcasting is the extension's)
    call("bce", 1, (y, p), {"out": out, "pos_weight": FakeCAI((4, 1), strides=(8, 4), ptr=P2[2])})
    assert last_call(fake_ext)["kwargs"] == {"aux": (P2[2], (4, 1), (2, 1), "float32", 0)}
    # DLPack: asked for the call's stream
    d = FakeDLPack((3,), ptr=P2[2])
    call("bce", 1, (y, p), {"out": out, "pos_weight": d, "stream": 5})
    assert last_call(fake_ext)["kwargs"] == {"aux": (P2[2], (3,), (1,), "float32", 0)} and d.streams == [5]
    # a number stays a float option (no aux); None is the default
    for v in (2, 2.5, np.float32(2.5), np.float64(0.5)):
        call("bce", 1, (y, p), {"out": out, "pos_weight": v})
        c = last_call(fake_ext)
        assert c["options"]["pos_weight"] == float(v) and type(c["options"]["pos_weight"]) is float
        assert c["kwargs"] == {}
    call("bce", 1, (y, p), {"out": out, "pos_weight": None})
    assert last_call(fake_ext)["options"]["pos_weight"] == 1.0 and last_call(fake_ext)["kwargs"] == {}
    # through the loss object
    assert fl.bce.grad(y, p, out=out, pos_weight=pw) is out
    assert last_call(fake_ext)["kwargs"] == {"aux": (P2[2], (3,), (1,), "float32", 0)}


@pytest.mark.parametrize("host", [np.ones(3), [1.0, 2.0, 3.0], np.ones((), np.float32), (1.0, 2.0, 3.0)],
                         ids=lambda h: type(h).__name__)
def test_host_pos_weight_with_device_arrays_is_a_type_error(host, fake_ext):
    tname = type(host).__name__
    y, p = FakeCAI((4, 3)), FakeCAI((4, 3))
    with pytest.raises(TypeError, match=rf"^binary_cross_entropy: pos_weight is a host {tname} but y_pred is on the GPU"):
        call("bce", 0, (y, p), {"pos_weight": host})
    with pytest.raises(TypeError, match=rf"^binary_cross_entropy: pos_weight is a host {tname} but y_pred is on the GPU"):
        fl.bce.value_and_grad(y, p, pos_weight=host)
    assert fake_ext.calls == []


def test_pos_weight_dtype_and_device(fake_ext):
    y, p, out = FakeCAI((4, 3), device=0), FakeCAI((4, 3), device=0), FakeCAI((4, 3))
    # another dtype is converted by its library: none here
    with pytest.raises(TypeError, match=r"^binary_cross_entropy: pos_weight has dtype float64, not y_pred's float32, "
                                        "and CuPy is not installed"):
        call("bce", 1, (y, p), {"out": out, "pos_weight": FakeCAI((3,), "<f8")})
    with pytest.raises(TypeError, match=r"^binary_cross_entropy: pos_weight must hold real numbers, got complex64"):
        call("bce", 1, (y, p), {"out": out, "pos_weight": FakeCAI((3,), "<c8")})
    with pytest.raises(ValueError, match=r"^binary_cross_entropy: pos_weight is on cuda:1 but y_pred is on cuda:0"):
        call("bce", 1, (y, p), {"out": out, "pos_weight": FakeCAI((3,), device=1)})
    # y_pred's device is unknown: the pos_weight's is the call's
    call("bce", 1, (FakeCAI((4, 3)), FakeCAI((4, 3))), {"out": out, "pos_weight": FakeCAI((3,), device=2)})
    c = last_call(fake_ext)
    assert c["y_pred"][4] == c["kwargs"]["aux"][4] == 2
    assert len(fake_ext.calls) == 1


def test_run_takes_the_parsed_call(fake_ext):
    """fastloss.cuda._run as fastloss._core calls it: the options dict goes to
    the extension as it is; the argument names come from the registry."""
    y, p, out, w = (FakeCAI((2, 3, 4), ptr=a) for a in (BASE, *P2))
    opts = {"smooth": 0.5, "axis": (1,), "squared": True, "from_logits": False}
    assert flc._run("dice", 1, y, p, "sum", w, out, opts, None, 7) is out
    c = last_call(fake_ext)
    assert c["options"] is opts and opts == {"smooth": 0.5, "axis": (1,), "squared": True, "from_logits": False}
    assert c == dict(name="dice", options=opts, reduction="sum", y_true=(BASE, (2, 3, 4), (12, 4, 1), "float32", 0),
                     y_pred=(P2[0], (2, 3, 4), (12, 4, 1), "float32", 0),
                     weights=(P2[2], (2, 3, 4), (12, 4, 1), "float32", 0),
                     grad=(P2[1], (2, 3, 4), (12, 4, 1), "float32", 0), losses=None, result=None, stream=7,
                     kwargs={})
    # messages name the registry's arguments
    with pytest.raises(TypeError, match=r"^box_iou: boxes_pred is a host ndarray but boxes_true is on the GPU"):
        flc._run("box_iou", 1, y, np.zeros((2, 4)), "mean", None, out, {"kind": "iou", "eps": 1e-7}, None, None)
    with pytest.raises(TypeError, match=r"^contrastive: neither y_true nor distance is a CUDA array"):
        flc._run("contrastive", 1, np.zeros(3), np.zeros(3), "mean", None, None, {"margin": 1.0}, None, None)
    with pytest.raises(TypeError, match=r"^categorical_cross_entropy: CUDA arrays are not supported by this loss "
                                        r"yet \(on the GPU: mse, .*, gan_discriminator, "):
        flc._run("categorical_cross_entropy", 0, y, p, "mean", None, None, {}, None, None)
    # a NumPy scalar for the real-or-array option is its number; a bool is neither
    bce = {"from_logits": True, "eps": 1e-7, "pos_weight": 1.0, "label_smoothing": 0.0}
    assert flc._run("binary_cross_entropy", 1, y, p, "mean", None, out, bce, np.float32(3.0), None) is out
    c = last_call(fake_ext)
    assert c["options"] == dict(bce, pos_weight=3.0) and c["kwargs"] == {} and bce["pos_weight"] == 1.0
    with pytest.raises(TypeError, match=r"^binary_cross_entropy: pos_weight must be a real number or a CUDA array "
                                        "on the GPU, got bool"):
        flc._run("binary_cross_entropy", 1, y, p, "mean", None, out, bce, True, None)
    # out= only with a gradient (the core never passes it for the value)
    with pytest.raises(TypeError, match=r"^dice: y_pred is a FakeCAI .*CuPy is not installed"):
        flc._run("dice", 0, y, p, "mean", None, out, opts, None, None)
    assert len(fake_ext.calls) == 2


# --- MultiLoss (fastloss._structured) on device arrays -------------------------------


class RaisingCAI:
    """A torch CUDA tensor that requires grad: __cuda_array_interface__ raises,
    DLPack says CUDA."""

    @property
    def __cuda_array_interface__(self):
        raise RuntimeError("Can't get __cuda_array_interface__ on Variable that requires grad")

    def __dlpack_device__(self):
        return (2, 0)


class DLDev:
    """Only __dlpack_device__ (``kind``: a device type, or an exception to raise)."""

    def __init__(self, kind):
        self.kind = kind

    def __dlpack_device__(self):
        if isinstance(self.kind, type):
            raise self.kind("no")
        return (self.kind, 0)


ROUTED = [
    (np.zeros(3), False), (1.5, False), (3, False), (True, False), ([1.0], False), ((1.0,), False), (None, False),
    (object(), False), (FakeCAI((3,)), True), (FakeDLPack((3,)), True), (RaisingCAI(), True), (DLDev(2), True),
    (DLDev(13), True), (DLDev(1), False), (DLDev(3), False), (DLDev(RuntimeError), False), (DLDev(ValueError), False),
]


@pytest.mark.parametrize("obj, device", ROUTED, ids=lambda x: type(x).__name__)
def test_multiloss_routes_device_arrays_as_the_core_does(obj, device, monkeypatch):
    from fastloss import _structured

    seen = []
    monkeypatch.setattr(flc, "_run", lambda *a: seen.append(a) or "gpu")
    monkeypatch.setattr(flc, "_dispatch_multi", lambda *a: seen.append(a) or "gpu")
    assert _structured._is_device_array(obj) is device
    # the C++ test (IsDeviceArray in single.cc), seen from the elementwise losses
    try:
        routed = isinstance(fl.mse(obj, obj), str)
    except Exception:  # noqa: BLE001 - the CPU path refused it
        routed = False
    assert routed is device
    if device:  # the parsed call: fastloss.cuda._run's arguments
        assert seen[-1] == ("mse", 0, obj, obj, "mean", None, None, {}, None, None)
    try:
        routed = isinstance(fl.gan_generator(obj), str)
    except Exception:  # noqa: BLE001
        routed = False
    assert routed is device
    if device:
        assert seen[-1] == ("gan_generator", 0, [obj], ["fake_logits"], None, None, None, "mean", {}, None, None)


def test_multiloss_target_routes_too(monkeypatch):
    seen = []
    monkeypatch.setattr(flc, "_dispatch_multi", lambda *a: seen.append(a) or "gpu")
    x = np.zeros((2, 3))
    y = FakeCAI((2,))
    assert fl.cosine_embedding(x, x, y, margin=0.5) == "gpu"
    assert seen == [("cosine_embedding", 0, [x, x], ["x1", "x2"], y, "y", None, "mean", {"margin": 0.5}, None, None)]


def scores_call(ext):
    (name, options, reduction, calls, result, stream), = ext.calls[-1:]
    return dict(name=name, options=options, reduction=reduction, calls=calls, result=result, stream=stream)


def test_dispatch_multi_passes_descs_options_and_stream(fake_ext):
    x, out, w = FakeCAI((5,)), FakeCAI((5,), ptr=P2[1]), FakeCAI((1,), ptr=P2[2])
    assert fl.gan_generator.grad(x, out=out, saturating=True, reduction="sum", stream=99) is out
    assert scores_call(fake_ext) == dict(
        name="gan_generator", options={"saturating": True}, reduction="sum",
        calls=[((BASE, (5,), (1,), "float32", 0), None, (P2[1], (5,), (1,), "float32", 0), None)],
        result=None, stream=99)
    assert fl.gan_generator.grad(fake_logits=x, out=out, saturating=np.bool_(False)) is out
    c = scores_call(fake_ext)
    assert c["options"] == {"saturating": False} and type(c["options"]["saturating"]) is bool
    assert c["reduction"] == "mean" and c["stream"] == 0
    assert fl.wasserstein_generator.grad(x, out=out, weights=w, reduction="none") is out
    c = scores_call(fake_ext)
    assert c["options"] == {} and c["reduction"] == "none"
    assert c["calls"] == [((BASE, (5,), (1,), "float32", 0), (P2[2], (1,), (1,), "float32", 0),
                           (P2[1], (5,), (1,), "float32", 0), None)]
    # results of a producer that is neither torch nor CuPy are CuPy arrays: none here
    with pytest.raises(TypeError, match=r"^gan_discriminator: real_logits is a FakeCAI \(neither a torch tensor nor "
                                        r"a CuPy array\); its results are CuPy arrays, and CuPy is not installed"):
        fl.gan_discriminator.grad(x, FakeCAI((3, 2)))
    with pytest.raises(TypeError, match=r"^wasserstein_generator: fake_scores is a FakeCAI"):
        fl.wasserstein_generator(x)
    assert len(fake_ext.calls) == 3


DEV = FakeCAI((3,))
HOST = np.zeros(3)


@pytest.mark.parametrize("loss, args, kwargs, exc, message, cpu", [
    ("gan_discriminator", (HOST, DEV), {}, TypeError,
     r"^gan_discriminator: real_logits is a host ndarray but fake_logits is on the GPU", False),
    ("wasserstein_critic", (DEV, HOST), {}, TypeError,
     r"^wasserstein_critic: fake_scores is a host ndarray but real_scores is on the GPU", False),
    ("wasserstein_critic", (DEV, DEV), {"weights": DEV}, TypeError,
     r"^wasserstein_critic: weights must be None or a pair \(w_real, w_fake\)", True),
    ("gan_discriminator", (DEV, DEV), {"weights": 2.0}, TypeError,
     r"^gan_discriminator: weights must be None or a pair \(w_real, w_fake\)", True),
    ("gan_discriminator", (DEV, DEV), {"weights": (None, None, None)}, ValueError,
     r"^gan_discriminator: weights must be a pair \(w_real, w_fake\)", True),
    ("gan_discriminator", (DEV, DEV), {"weights": (HOST, None)}, TypeError,
     r"^gan_discriminator: weights is a host ndarray but real_logits is on the GPU", False),
    ("gan_generator", (DEV,), {"weights": HOST}, TypeError,
     r"^gan_generator: weights is a host ndarray but fake_logits is on the GPU", False),
    ("gan_generator", (DEV,), {"weights": [1.0, 2.0, 3.0]}, TypeError,
     r"^gan_generator: weights is a host list but fake_logits is on the GPU", False),
    ("gan_generator", (DEV,), {"saturating": 1}, TypeError, r"^gan_generator: saturating must be a bool, got int", True),
    ("gan_generator", (DEV,), {"saturating": "yes"}, TypeError, r"^gan_generator: saturating must be a bool, got str",
     True),
    ("gan_generator", (DEV,), {"reduction": "avg"}, ValueError,
     r"^gan_generator: reduction must be 'mean', 'sum' or 'none', got 'avg'", True),
    ("gan_generator", (DEV,), {"reduction": None}, ValueError,
     r"^gan_generator: reduction must be 'mean', 'sum' or 'none', got None", True),
    ("gan_generator", (DEV,), {"alpha": 1.0}, TypeError, r"^gan_generator\(\) got an unexpected keyword argument 'alpha'",
     True),
    ("gan_discriminator", (DEV, DEV), {"out": DEV}, TypeError,
     r"^gan_discriminator\(\) got an unexpected keyword argument 'out'", True),
    ("gan_generator", (DEV,), {"out": HOST}, TypeError,
     r"^gan_generator: out must be a CUDA array like fake_logits, got a host ndarray", False),
    ("gan_generator", (DEV,), {"out": FakeCAI((3,), "<f8")}, ValueError,
     r"^gan_generator: out must have fake_logits's dtype float32, got float64", False),
    ("gan_generator", (DEV,), {"out": FakeCAI((1, 3))}, ValueError,
     r"^gan_generator: out must have fake_logits's shape \(3,\), got \(1, 3\)", False),
    ("gan_generator", (DEV,), {"stream": "fast"}, TypeError, r"^gan_generator: stream must be an int", False),
    ("gan_generator", (HOST,), {"stream": 0}, TypeError,
     r"^gan_generator\(\) got an unexpected keyword argument 'stream'", False),
    ("gan_discriminator", (FakeCAI((3,), device=0), FakeCAI((3,), device=1)), {}, ValueError,
     r"^gan_discriminator: fake_logits is on cuda:1 but real_logits is on cuda:0", False),
    ("gan_discriminator", (FakeCAI((3,), device=0), DEV), {"weights": (None, FakeCAI((3,), device=1))}, ValueError,
     r"^gan_discriminator: weights is on cuda:1 but real_logits is on cuda:0", False),
    ("gan_discriminator", (FakeCAI((3,), "<i4"), DEV), {}, TypeError,
     r"^gan_discriminator: real_logits must be float32, float64, float16 or bfloat16, got int32", False),
    ("wasserstein_critic", (DEV, FakeCAI((3,), "<f8")), {}, TypeError,
     r"^wasserstein_critic: fake_scores has dtype float64, not real_scores's float32, and CuPy is not installed",
     False),
    ("triplet_margin", (DEV, DEV, DEV), {}, TypeError,
     r"^triplet_margin: CUDA arrays are not supported by this loss yet \(on the GPU: .*gan_discriminator", False),
    ("gradient_penalty", (DEV,), {}, TypeError, r"^gradient_penalty: CUDA arrays are not supported by this loss yet",
     False),
])
def test_multi_errors(loss, args, kwargs, exc, message, cpu, fake_ext):
    fn = getattr(fl, loss)
    call = fn.grad if "out" in kwargs else fn
    with pytest.raises(exc, match=message):
        call(*args, **kwargs)
    assert fake_ext.calls == []
    if cpu:  # the CPU says the same with host arrays
        host = {id(DEV): np.zeros(3, np.float32)}
        with pytest.raises(exc, match=message):
            call(*[host.get(id(a), a) for a in args], **{k: host.get(id(v), v) for k, v in kwargs.items()})


def test_multi_without_extension_is_a_runtime_error(monkeypatch):
    monkeypatch.setattr(flc, "_ext", lambda: None)
    with pytest.raises(RuntimeError, match=r"^wasserstein_critic: real_scores is a CUDA array but this fastloss has "
                                           "no CUDA backend"):
        fl.wasserstein_critic(FakeCAI((3,)), FakeCAI((3,)))


# --- End to end on an emulated device ------------------------------------------
# torch CPU tensors stand in for CUDA tensors and an extension that runs the
# CPU loss on the memory the Desc tuples describe stands in for fastloss._cuda:
# checks that _run describes the right memory (pointers, strides in
# elements, conversions, scalar weights, allocated results and their shapes,
# out=). torch CPU tensors are host arrays to fastloss._core, so the tests
# call _run themselves, with the options dict the core makes of the keyword
# options (captured from a call with stand-in device arrays).


def core_options(loss, **options):
    """The options dict fastloss._core hands to _run for ``options`` (every
    option of the loss, parsed and checked)."""
    seen = []
    saved = flc._run
    flc._run = lambda *a: seen.append(a)
    try:
        getattr(fl, loss)(FakeCAI((1,)), FakeCAI((1,)), **options)
    finally:
        flc._run = saved
    (args,) = seen
    assert args[0] == loss and args[8] is None  # no array option among these
    return args[7]


def run_emulated(loss, want, y_true, y_pred, reduction="mean", weights=None, out=None, aux=None, **options):
    return flc._run(loss, want, y_true, y_pred, reduction, weights, out, core_options(loss, **options), aux, None)


def desc_view(desc):
    ptr, shape, strides, dtype, _ = desc
    dt = np.dtype(dtype)
    if 0 in shape:
        return np.empty(shape, dt)
    lo = sum(min(0, (n - 1) * st) for n, st in zip(shape, strides))
    hi = sum(max(0, (n - 1) * st) for n, st in zip(shape, strides))
    buf = (ctypes.c_char * ((hi - lo + 1) * dt.itemsize)).from_address(ptr + lo * dt.itemsize)
    base = np.frombuffer(buf, dt)[-lo:]
    return np.lib.stride_tricks.as_strided(base, shape, [st * dt.itemsize for st in strides])


class EmulatedExt(FakeExt):
    def elementwise(self, name, options, reduction, y_true, y_pred, weights, grad, losses, result, stream,
                    aux=None):
        super().elementwise(name, options, reduction, y_true, y_pred, weights, grad, losses, result, stream,
                            **({} if aux is None else {"aux": aux}))
        fn = fl.LOSSES[name]
        assert set(options) == set(fn.options), (name, options)  # every option, by its CPU name
        w = None if weights is None else desc_view(weights)
        kw = dict(options, weights=w, reduction=reduction)
        if aux is not None:  # the array given for the loss's real-or-array option
            (aux_name,) = [o["name"] for o in fl._core.loss_info(name)["options"]
                           if o["type"] == "float or array_like"]
            kw[aux_name] = desc_view(aux)
        args = (desc_view(y_true), desc_view(y_pred))
        if grad is not None:
            v, g = fn.value_and_grad(*args, **kw)
            desc_view(grad)[...] = g
        else:
            v = fn(*args, **kw)
        if losses is not None:
            assert desc_view(losses).shape == np.shape(v), (name, desc_view(losses).shape, np.shape(v))
            desc_view(losses)[...] = v
        if result is not None:
            desc_view(result)[...] = v

    def scores(self, name, options, reduction, calls, result, stream):
        super().scores(name, options, reduction, calls, result, stream)
        fn = getattr(fl, name)
        arrays = [desc_view(c[0]) for c in calls]
        ws = [None if c[1] is None else desc_view(c[1]) for c in calls]
        kw = dict(options, reduction=reduction)
        if any(w is not None for w in ws):
            kw["weights"] = ws[0] if len(ws) == 1 else tuple(ws)
        if calls[0][2] is not None:
            assert all(c[2] is not None for c in calls)
            v, g = fn.value_and_grad(*arrays, **kw)
            for c, gk in zip(calls, [g] if len(calls) == 1 else g):
                desc_view(c[2])[...] = gk
        else:
            v = fn(*arrays, **kw)
        if reduction == "none":
            assert result is None
            for c, vk in zip(calls, [v] if len(calls) == 1 else v):
                if c[3] is not None:
                    assert desc_view(c[3]).shape == vk.shape
                    desc_view(c[3])[...] = vk
        elif result is not None:
            desc_view(result)[...] = v


@pytest.fixture
def emulated(monkeypatch):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch = pytest.importorskip("torch")
    ext = EmulatedExt()
    real_locate = flc._locate

    def locate(obj):
        return ("torch", 0) if isinstance(obj, torch.Tensor) else real_locate(obj)

    monkeypatch.setattr(flc, "_ext", lambda: ext)
    monkeypatch.setattr(flc, "_locate", locate)
    monkeypatch.setattr(flc, "_current_stream", lambda lib, device, cai: 77)
    monkeypatch.setattr(flc, "_on_stream", lambda lib, device, stream: contextlib.nullcontext())
    monkeypatch.setattr(flc, "_empty", lambda lib, dev, shape, dtype, *a: torch.full(shape, SENTINEL, dtype=getattr(torch, dtype)))
    monkeypatch.setattr(flc, "_full", lambda lib, dev, value, dtype, *a: torch.full((), value, dtype=getattr(torch, dtype)))
    return torch, ext


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_dispatch_end_to_end_emulated(emulated, reduction, dtype):
    torch, ext = emulated
    rng = np.random.default_rng(7)
    y = rng.normal(size=(6, 10))
    p = rng.normal(size=(6, 10))
    w = rng.uniform(0.5, 2.0, (6, 1))
    yt, pt = torch.as_tensor(y), torch.as_tensor(p).to(getattr(torch, dtype))  # y_true float64: converted
    cases = [
        ("contiguous", yt, pt, {}),
        ("strided", yt[:, ::2], pt[:, 1::2], {"delta": 0.5}),
        ("transposed", yt.T, pt.T, {}),
        ("weights", yt, pt, {"weights": torch.as_tensor(w)}),
        ("scalar weights", yt, pt, {"weights": 2.5}),
        ("broadcast y_true", yt[:1].expand(6, 10), pt, {}),
    ]
    for what, a, b, kw in cases:
        ah = a.numpy().astype(dtype)
        bh = b.numpy()
        wh = kw.get("weights")
        wh = wh.numpy().astype(dtype) if isinstance(wh, torch.Tensor) else wh
        cpu_kw = dict(kw, weights=wh, reduction=reduction)
        ev, eg = fl.huber.value_and_grad(ah, bh, **cpu_kw)
        v = run_emulated("huber", 0, a, b, reduction, **kw)
        g = run_emulated("huber", 1, a, b, reduction, **kw)
        v2, g2 = run_emulated("huber", 2, a, b, reduction, **kw)
        assert ext.calls[-1][-2] == 77  # the producer's current stream
        for got in (v, v2):
            assert isinstance(got, torch.Tensor)
            if reduction == "none":
                assert got.dtype == b.dtype and tuple(got.shape) == tuple(b.shape)
            else:
                assert got.shape == () and got.dtype == b.dtype  # float32 result for float32
            np.testing.assert_array_equal(got.numpy(), ev, err_msg=what)
        for got in (g, g2):
            assert got.dtype == b.dtype and got.is_contiguous()
            np.testing.assert_array_equal(got.numpy(), eg, err_msg=what)
        out = torch.full((b.shape[0], 2 * b.shape[1]), SENTINEL, dtype=b.dtype)
        view = out[:, ::2]
        assert run_emulated("huber", 1, a, b, reduction, out=view, **kw) is view
        np.testing.assert_array_equal(view.numpy(), eg, err_msg=what + " out")
        assert torch.all(out[:, 1::2] == SENTINEL)


# Part 2 on the emulated device: the region losses (axis variants), box_iou,
# array pos_weight and the score losses through _run / _dispatch_multi.

PART2_CASES = [
    ("dice", {}), ("dice", {"axis": 1}), ("dice", {"axis": (2, 3)}), ("dice", {"axis": ()}),
    ("dice", {"axis": [-1, 0], "squared": True}), ("jaccard", {"axis": (1, 2, 3), "from_logits": True}),
    ("tversky", {"axis": (2, 3), "alpha": 0.3, "beta": 0.7}), ("focal_tversky", {"axis": -1, "gamma": 1.5}),
    ("box_iou", {}), ("box_iou", {"kind": "giou"}), ("box_iou", {"kind": "diou"}),
    ("box_iou", {"kind": "ciou", "eps": 1e-9}),
]


def _emulated_check(torch, fn, loss, a, b, kw, reduction, what):
    """_run on torch CPU tensors (the emulated device) against the CPU
    on the same data: value, grad, value_and_grad, out= (a strided view).
    Tensors among ``kw`` other than weights are the array option (aux)."""
    ah, bh = a.numpy(), b.numpy()
    cpu_kw = {k: (v.numpy() if isinstance(v, torch.Tensor) else v) for k, v in kw.items()}
    ev, eg = fn.value_and_grad(ah.astype(bh.dtype), bh, reduction=reduction, **cpu_kw)
    kw = dict(kw)
    arrays = [k for k, v in kw.items() if isinstance(v, torch.Tensor) and k != "weights"]
    aux = kw.pop(arrays[0]) if arrays else None
    v = run_emulated(loss, 0, a, b, reduction, aux=aux, **kw)
    g = run_emulated(loss, 1, a, b, reduction, aux=aux, **kw)
    v2, g2 = run_emulated(loss, 2, a, b, reduction, aux=aux, **kw)
    for got in (v, v2):
        assert isinstance(got, torch.Tensor)
        if reduction == "none":
            assert got.dtype == b.dtype and tuple(got.shape) == np.shape(ev), what
        else:
            assert got.shape == () and got.dtype == b.dtype, what
        np.testing.assert_array_equal(got.numpy(), ev, err_msg=what)
    for got in (g, g2):
        assert got.dtype == b.dtype and tuple(got.shape) == tuple(b.shape), what
        np.testing.assert_array_equal(got.numpy(), eg, err_msg=what)
    buf = torch.full((*b.shape[:-1], 2 * b.shape[-1]), SENTINEL, dtype=b.dtype)
    view = buf[..., ::2]
    assert run_emulated(loss, 1, a, b, reduction, out=view, aux=aux, **kw) is view
    np.testing.assert_array_equal(view.numpy(), eg, err_msg=what + " out")
    assert torch.all(buf[..., 1::2] == SENTINEL)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("case", PART2_CASES, ids=lambda c: c[0] + "".join(f"-{k}={v}" for k, v in c[1].items()))
def test_part2_end_to_end_emulated(emulated, case, reduction, dtype):
    torch, ext = emulated
    loss, opts = case
    fn = getattr(fl, loss)
    shape = (3, 5, 4) if loss == "box_iou" else (2, 3, 4, 5)
    y, p = make_part2_data(loss, opts, shape, seed=3)
    yt, pt = torch.as_tensor(y), torch.as_tensor(p).to(getattr(torch, dtype))  # y_true float64: converted
    scores_shape = np.shape(fn(y, p, reduction="none", **opts))
    rng = np.random.default_rng(4)
    w = torch.as_tensor(rng.uniform(0.5, 2.0, scores_shape)).to(pt.dtype)
    cases = [("contiguous", yt, pt, {}), ("weights", yt, pt, {"weights": w}), ("scalar weights", yt, pt, {"weights": 2.5})]
    if scores_shape:
        cases.append(("broadcast weights", yt, pt, {"weights": w[..., :1]}))
    # strided: every other element of the last axis of a wider array (boxes: every other box)
    wide_y, wide_p = (np.repeat(a, 2, axis=-2 if loss == "box_iou" else -1) for a in (y, p))
    sl = (Ellipsis, slice(None, None, 2), slice(None)) if loss == "box_iou" else (Ellipsis, slice(None, None, 2))
    cases.append(("strided", torch.as_tensor(wide_y)[sl], torch.as_tensor(wide_p).to(pt.dtype)[sl], {}))
    for what, a, b, kw in cases:
        _emulated_check(torch, fn, loss, a, b, dict(opts, **kw), reduction, f"{loss}{opts} {what} {reduction}")
    c = last_call(ext)
    assert c["name"] == loss and c["kwargs"] == {}
    if loss != "box_iou":
        axis = opts.get("axis")
        assert c["options"]["axis"] == (None if axis is None else tuple(axis) if isinstance(axis, list) else
                                        axis if isinstance(axis, tuple) else (axis,))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_pos_weight_array_end_to_end_emulated(emulated, reduction, dtype):
    torch, ext = emulated
    y, p = make_data(BCE, {"from_logits": True}, (6, 5), seed=8)
    yt, pt = torch.as_tensor(y), torch.as_tensor(p).to(getattr(torch, dtype))
    rng = np.random.default_rng(9)
    per_class = torch.as_tensor(rng.uniform(0.5, 3.0, 5))
    for what, pw in [("(C,)", per_class.to(pt.dtype)), ("(C,) float64", per_class),
                     ("(N, 1)", torch.as_tensor(rng.uniform(0.5, 3.0, (6, 1))).to(pt.dtype)),
                     ("strided (C,)", torch.as_tensor(rng.uniform(0.5, 3.0, 10)).to(pt.dtype)[::2]),
                     ("0-d", torch.tensor(2.5, dtype=pt.dtype))]:
        for opts in ({"from_logits": True}, {"from_logits": True, "label_smoothing": 0.1, "weights": 2.0}):
            _emulated_check(torch, fl.bce, BCE, yt, pt, dict(opts, pos_weight=pw), reduction,
                            f"pos_weight {what} {opts} {reduction}")
            assert last_call(ext)["options"]["pos_weight"] == 1.0  # the number: the default, unused
            assert last_call(ext)["kwargs"]["aux"][3] == dtype


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("loss", SCORE_LOSSES)
def test_dispatch_multi_end_to_end_emulated(emulated, loss, reduction, dtype):
    torch, ext = emulated
    fn = getattr(fl, loss)
    names = list(fn._inputs)
    rng = np.random.default_rng(len(loss))
    real, fake = rng.normal(0.0, 3.0, (6, 5)), rng.normal(0.0, 3.0, (7,))
    hosts = [real, fake] if len(names) == 2 else [fake]
    # the first array decides the dtype; a float64 second one is converted
    devs = [torch.as_tensor(hosts[0]).to(getattr(torch, dtype))] + [torch.as_tensor(h) for h in hosts[1:]]
    if len(names) == 2:
        w_real = torch.as_tensor(rng.uniform(0.5, 2.0, (6, 1)))
        weight_cases = [None, (w_real, None), (None, 2.5), (w_real.to(devs[0].dtype), torch.as_tensor(rng.uniform(0.5, 2.0, 7)))]
    else:
        weight_cases = [None, 2.0, torch.as_tensor(rng.uniform(0.5, 2.0, 7)).to(devs[0].dtype)]
    option_cases = [{}, {"saturating": True}] if loss == "gan_generator" else [{}]
    for weights in weight_cases:
        for opts in option_cases:
            what = f"{loss} weights={weights is not None} {opts} {reduction}"

            def host(x):
                return x.numpy() if isinstance(x, torch.Tensor) else x

            hw = None if weights is None else tuple(map(host, weights)) if isinstance(weights, tuple) else host(weights)
            ev, eg = fn.value_and_grad(*[d.numpy() for d in devs], weights=hw, reduction=reduction, **opts)
            args = (names, None, None, weights, reduction, opts, None)
            v = flc._dispatch_multi(loss, 0, devs, *args)
            g = flc._dispatch_multi(loss, 1, devs, *args)
            v2, g2 = flc._dispatch_multi(loss, 2, devs, *args)
            for got in (v, v2):
                if reduction == "none":
                    if len(names) == 2:
                        assert isinstance(got, tuple) and len(got) == 2, what
                    got, exp = (got, ev) if len(names) == 2 else ((got,), (ev,))
                    for gk, ek, d in zip(got, exp, devs):
                        assert isinstance(gk, torch.Tensor) and gk.dtype == devs[0].dtype, what
                        assert tuple(gk.shape) == tuple(d.shape), what
                        np.testing.assert_array_equal(gk.numpy(), ek, err_msg=what)
                else:
                    assert isinstance(got, torch.Tensor) and got.shape == () and got.dtype == devs[0].dtype, what
                    np.testing.assert_array_equal(got.numpy(), ev, err_msg=what)
            for got in (g, g2):
                got, exp = (got, eg) if len(names) == 2 else ((got,), (eg,))
                assert len(got) == len(devs), what
                for gk, ek, d in zip(got, exp, devs):
                    assert isinstance(gk, torch.Tensor) and gk.dtype == devs[0].dtype, what
                    assert tuple(gk.shape) == tuple(d.shape), what
                    np.testing.assert_array_equal(gk.numpy(), ek, err_msg=what)
            if len(names) == 1:  # out=: a strided view
                buf = torch.full((14,), SENTINEL, dtype=devs[0].dtype)
                view = buf[::2]
                assert flc._dispatch_multi(loss, 1, devs, names, None, None, weights, reduction, opts, view) is view
                np.testing.assert_array_equal(view.numpy(), eg, err_msg=what + " out")
                assert torch.all(buf[1::2] == SENTINEL)
                v3, g3 = flc._dispatch_multi(loss, 2, devs, names, None, None, weights, reduction, opts, view)
                assert g3 is view
    assert ext.calls[-1][0] == loss and ext.calls[-1][-1] == 77  # the producer's current stream


# ==========================================================================
# Part 2: on the GPU (skipped without one)
# ==========================================================================

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


def streams(lib):
    mod = lib_module(lib)
    if lib == "torch":
        return mod.cuda.Stream(), mod.cuda.Stream(), mod.cuda.stream, lambda: mod.cuda.synchronize()
    return (mod.cuda.Stream(non_blocking=True), mod.cuda.Stream(non_blocking=True), lambda s: s,
            lambda: mod.cuda.Device().synchronize())


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
# The built extension's argument checks: they run before any CUDA call, so
# they hold on machines without a GPU or driver too (CI builds _cuda).
# --------------------------------------------------------------------------


def _built_extension():
    try:
        from fastloss import _cuda
    except ImportError:
        pytest.skip("fastloss._cuda is not built (no CUDA compiler at build time)")
    return _cuda


def _desc(n, dtype="float32", ptr=4096):
    return (ptr, (n,) if n is not None else (), (1,) if n is not None else (), dtype, 0)


@pytest.mark.parametrize(
    "name, options, y_true, y_pred, weights, result, exc, message",
    [
        ("mse", {}, _desc(3), _desc(4), None, _desc(None), ValueError, r"y_true and y_pred must have the same shape"),
        ("huber", {"delta": -1.0}, _desc(4), _desc(4), None, _desc(None), ValueError, r"delta must be a finite number > 0"),
        ("mse", {}, _desc(4), _desc(4, "float64"), None, _desc(None), ValueError, r"result must be a 0-d float64"),
        ("mse", {}, _desc(4, "float64"), _desc(4), None, _desc(None), ValueError, r"y_true must have y_pred's dtype float32"),
        ("mse", {}, _desc(4), _desc(4), _desc(3), _desc(None), ValueError, r"weights of shape \(3,\) cannot be broadcast"),
        ("quantile", {"q": 1.5}, _desc(4), _desc(4), None, _desc(None), ValueError, r"q must be in the open interval"),
        ("categorical_cross_entropy", {}, _desc(4), _desc(4), None, _desc(None), TypeError, r"no GPU implementation"),
        ("mse", {}, _desc(4), _desc(4, "int8"), None, _desc(None), TypeError, r"float32, float64, float16 or bfloat16"),
    ],
)
def test_extension_checks_arguments_before_any_cuda_call(name, options, y_true, y_pred, weights,
                                                         result, exc, message):
    ext = _built_extension()
    with pytest.raises(exc, match=message):
        ext.elementwise(name, options, "mean", y_true, y_pred, weights, None, None, result, 0)


def test_extension_lists_the_part1_losses():
    ext = _built_extension()
    assert set(ext.LOSSES) >= set(GPU_LOSSES_PART1)
    assert sorted(ext.LOSSES) == sorted(flc.gpu_losses())  # the registry's GPU rows + the score losses
    assert ext.is_available() == (ext.device_count() > 0)


def _part2_extension():
    ext = _built_extension()
    if not hasattr(ext, "scores"):
        pytest.skip("this fastloss._cuda predates the part-2 losses (no scores()): rebuild it")
    return ext


def _d(shape, dtype="float32", ptr=4096):
    return (ptr, tuple(shape), flc._c_strides(tuple(shape)), dtype, 0)


REGION_OPTS = {"smooth": 1e-6, "axis": None, "squared": False, "from_logits": False}


@pytest.mark.parametrize(
    "name, options, y_true, y_pred, weights, losses, aux, exc, message",
    [
        ("dice", REGION_OPTS, _d((2, 3)), _d((3, 2)), None, None, None, ValueError,
         r"dice: y_true and y_pred must have the same shape"),
        ("dice", dict(REGION_OPTS, smooth=-1.0), _d((2, 3)), _d((2, 3)), None, None, None, ValueError,
         r"dice: smooth must be a finite number >= 0"),
        ("dice", dict(REGION_OPTS, axis=(5,)), _d((2, 3)), _d((2, 3)), None, None, None, ValueError,
         r"dice: axis 5 is out of range for y_pred with 2 dimensions"),
        ("jaccard", dict(REGION_OPTS, axis=(0, -2)), _d((2, 3)), _d((2, 3)), None, None, None, ValueError,
         r"jaccard: axis -2 is repeated"),
        ("dice", dict(REGION_OPTS, axis=(1,)), _d((2, 3)), _d((2, 3)), _d((3,)), None, None, ValueError,
         r"dice: weights of shape \(3,\) cannot be broadcast"),
        ("tversky", dict(REGION_OPTS, alpha=-1.0, beta=0.5), _d((4,)), _d((4,)), None, None, None, ValueError,
         r"tversky: alpha must be a finite number >= 0"),
        ("focal_tversky", dict(REGION_OPTS, alpha=0.5, beta=0.5, gamma=0.0), _d((4,)), _d((4,)), None, None, None,
         ValueError, r"focal_tversky: gamma must be a finite number > 0"),
        ("dice", dict(REGION_OPTS, axis=(1,)), _d((2, 3)), _d((2, 3)), None, _d((2, 3)), None, ValueError, r"losses"),
        ("box_iou", {"kind": "iou", "eps": 1e-7}, _d((5, 3)), _d((5, 3)), None, None, None, ValueError,
         r"box_iou: boxes_pred must have shape \(\.\.\., 4\)"),
        ("box_iou", {"kind": "iou", "eps": -1.0}, _d((5, 4)), _d((5, 4)), None, None, None, ValueError,
         r"box_iou: eps must be a finite number >= 0"),
        ("box_iou", {"kind": "xiou", "eps": 1e-7}, _d((5, 4)), _d((5, 4)), None, None, None, ValueError,
         r"box_iou: kind must be one of 'iou', 'giou', 'diou', 'ciou'"),
        ("box_iou", {"kind": "giou", "eps": 1e-7}, _d((5, 4)), _d((5, 4)), _d((4,)), None, None, ValueError,
         r"box_iou: weights of shape \(4,\) cannot be broadcast"),
        ("binary_cross_entropy", {"from_logits": True}, _d((4, 3)), _d((4, 3)), None, None, _d((2,)), ValueError,
         r"binary_cross_entropy: pos_weight of shape \(2,\) cannot be broadcast to y_pred's shape \(4, 3\)"),
        ("binary_cross_entropy", {"from_logits": True}, _d((4, 3)), _d((4, 3)), None, None, _d((3,), "float64"),
         ValueError, r"pos_weight.*dtype"),
    ],
)
def test_extension_checks_part2_arguments_before_any_cuda_call(name, options, y_true, y_pred, weights, losses, aux,
                                                               exc, message):
    ext = _part2_extension()
    reduction = "none" if losses is not None else "mean"
    result = None if losses is not None else _d(())
    with pytest.raises(exc, match=message):
        ext.elementwise(name, dict(options), reduction, y_true, y_pred, weights, None, losses, result, 0, aux=aux)


@pytest.mark.parametrize(
    "name, options, calls, result, exc, message",
    [
        ("gan_discriminator", {}, [(_d((3,)), _d((2,)), None, None), (_d((4,)), None, None, None)], _d(()),
         ValueError, r"gan_discriminator: weights of shape \(2,\) cannot be broadcast to real_logits's shape \(3,\)"),
        ("wasserstein_critic", {}, [(_d((3,)), None, None, None), (_d((4,)), _d((3,)), None, None)], _d(()),
         ValueError, r"wasserstein_critic: weights of shape \(3,\) cannot be broadcast to fake_scores's shape \(4,\)"),
        ("gan_generator", {"saturating": False}, [(_d((3,)), None, _d((4,)), None)], _d(()), ValueError, r"grad"),
        ("gan_generator", {"saturating": False}, [(_d((3,), "float64"), None, None, None)], _d(()), ValueError,
         r"result must be a 0-d float64"),
        ("gan_generator", {"saturatin": False}, [(_d((3,)), None, None, None)], _d(()), TypeError,
         r"unexpected keyword argument 'saturatin'"),
        ("triplet_margin", {}, [(_d((3,)), None, None, None)], _d(()), TypeError, r"no GPU implementation"),
    ],
)
def test_extension_checks_scores_arguments_before_any_cuda_call(name, options, calls, result, exc, message):
    ext = _part2_extension()
    with pytest.raises(exc, match=message):
        ext.scores(name, options, "mean", calls, result, 0)


def test_extension_lists_the_part2_losses():
    ext = _part2_extension()
    assert set(ext.LOSSES) >= {"dice", "jaccard", "tversky", "focal_tversky", "box_iou"}
