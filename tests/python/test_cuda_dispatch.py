"""The loss objects' calls with device arrays, no GPU needed: parsed by
fastloss._core, then fastloss.cuda._run (MultiLoss: _dispatch_multi), with
errors worded as on the CPU; host/device mixing; MultiLoss routing device
arrays to _dispatch_multi as the C++ core routes them to _run. A recording
stand-in for fastloss._cuda checks what _run and _dispatch_multi pass it
(every option of every GPU loss), and an emulated device (torch CPU tensors,
the CPU losses run on the memory the descs describe) checks their results end
to end (allocated shapes, conversions, out=, tuples).
"""

import contextlib
import ctypes
import warnings

import numpy as np
import pytest

import fastloss as fl
import fastloss.cuda as flc
from cuda_checks import (
    BASE, BCE, ELEMENTS_LOSSES, SCORE_LOSSES, SENTINEL, FakeCAI, FakeDLPack, FakeExt, make_data, make_part2_data,
)


@pytest.fixture
def fake_ext(monkeypatch):
    """fastloss.cuda with a recording extension and no CuPy (the fake
    pointers below must never reach a real library)."""
    ext = FakeExt()
    monkeypatch.setattr(flc, "_ext", lambda: ext)
    monkeypatch.setattr(flc, "_cupy", lambda: None)
    return ext


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


def test_metric_on_the_gpu_is_value_only(fake_ext, monkeypatch):
    # binary_accuracy's row is elementwise, so it has a CUDA entry: its value
    # call reaches the GPU backend with every option; grad is refused before.
    seen = []
    monkeypatch.setattr(flc, "_run", lambda *a: seen.append(a) or 0.5)
    y, p = FakeCAI((3, 4)), FakeCAI((3, 4), ptr=P2[0])
    assert call("binary_accuracy", 0, (y, p), {"threshold": 0.25}) == 0.5
    assert seen[-1][:7] == ("binary_accuracy", 0, y, p, "mean", None, None)
    assert seen[-1][7] == {"threshold": 0.25, "from_logits": False}
    n = len(fake_ext.calls) + len(seen)
    for want in (1, 2):
        with pytest.raises(TypeError, match="binary_accuracy is a metric"):
            call("binary_accuracy", want, (y, p), {})
    assert len(fake_ext.calls) + len(seen) == n


def test_every_option_of_every_gpu_loss_reaches_the_extension(fake_ext, monkeypatch):
    seen = []
    real_run = flc._run
    monkeypatch.setattr(flc, "_run", lambda *a: seen.append(a) or real_run(*a))
    y, p, out = FakeCAI((3, 4)), FakeCAI((3, 4), ptr=P2[0]), FakeCAI((3, 4), ptr=P2[1])
    # (the metrics have no gradient: test_metric_on_the_gpu_is_value_only)
    rows = [n for n in fl._core.loss_names()
            if fl._core.loss_info(n)["gpu"] and not fl._core.loss_info(n)["metric"]]
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
    seen = []
    monkeypatch.setattr(flc, "_run", lambda *a: seen.append(a) or "gpu")
    monkeypatch.setattr(flc, "_dispatch_multi", lambda *a: seen.append(a) or "gpu")
    # the C++ test (IsDeviceArray in arguments.cc), seen from the elementwise losses
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
        # the parsed call: every option, by the core's parse
        assert seen[-1] == ("gan_generator", 0, [obj], ["fake_logits"], None, None, None, "mean",
                            {"saturating": False}, None, None)


def test_multiloss_target_routes_too(monkeypatch):
    seen = []
    monkeypatch.setattr(flc, "_dispatch_multi", lambda *a: seen.append(a) or "gpu")
    x = np.zeros((2, 3))
    y = FakeCAI((2,))
    assert fl.cosine_embedding(x, x, y, margin=0.5) == "gpu"
    assert seen == [("cosine_embedding", 0, [x, x], ["x1", "x2"], y, "y", None, "mean", {"margin": 0.5}, None, None)]


@pytest.mark.parametrize("name", ELEMENTS_LOSSES)
def test_elements_route_to_the_gpu_after_the_cpu_parse(monkeypatch, name):
    # The elementwise losses of two inputs: parsed by the core (options as
    # plain values, every field), then handed over with the row's names.
    seen = []
    monkeypatch.setattr(flc, "_dispatch_multi", lambda *a: seen.append(a) or "gpu")
    info = fl._core.loss_info(name)
    args = [FakeCAI((4,)) if a != info["target"] else np.zeros(4) for a in info["args"]]
    assert getattr(fl, name).grad(*args, reduction="sum") == "gpu"
    (loss, want, inputs, names, target, target_name, weights, reduction, options, out, stream), = seen
    assert (loss, want, names, target_name, reduction, out, stream) == (
        name, 1, list(info["inputs"]), info["target"], "sum", None, None)
    assert sorted(options) == sorted(o["name"] for o in info["options"])
    assert target is args[list(info["args"]).index(info["target"])]


@pytest.mark.parametrize("name", ELEMENTS_LOSSES)
def test_elements_dispatch_errors_before_any_launch(fake_ext, name):
    info = fl._core.loss_info(name)
    first, second = info["inputs"]
    x, host = FakeCAI((5,)), np.zeros(5)

    def call(**arrays):
        return getattr(fl, name)(*[arrays.get(a, x) for a in info["args"]])

    with pytest.raises(TypeError, match=rf"^{name}: {second} is a host ndarray but {first} is on the GPU"):
        call(**{second: host})
    with pytest.raises(TypeError, match=rf"^{name}: {info['target']} is a host ndarray but {first} is on the GPU"):
        call(**{info["target"]: host})
    # results of a producer that is neither torch nor CuPy are CuPy arrays: none here
    with pytest.raises(TypeError, match=rf"^{name}: {first} is a FakeCAI .*CuPy is not installed"):
        call()
    assert fake_ext.calls == []


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
    ("gan_generator", (DEV,), {"saturating": 2}, TypeError, r"^gan_generator: saturating must be a bool, got int", True),
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
