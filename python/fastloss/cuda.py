"""fastloss on CUDA GPUs: losses over CuPy arrays and PyTorch CUDA tensors,
in place.

The losses themselves are the usual ``fastloss`` objects: give them device
arrays and they run on the GPU::

    import cupy as cp          # or torch tensors on a CUDA device
    import fastloss as fl
    fl.cuda.gpu_losses()       # the names of the losses the GPU runs
    v, g = fl.LOSSES[name].value_and_grad(y_true, y_pred, reduction="sum")
    v, (g_real, g_fake) = fl.OTHER_LOSSES[score_loss].value_and_grad(real, fake)  # two score arrays

- On the GPU: the losses ``gpu_losses()`` names. They are the rows of the
  loss registry (``fastloss._core.loss_info(name)["gpu"]``: the elementwise,
  region and box drivers, every option of each) and the adversarial losses
  of score arrays (``score_losses()``: the registry's rows of several inputs
  on the GPU). Other losses given device arrays raise TypeError.
- Arguments are parsed and checked by ``fastloss._core`` exactly as on the
  CPU (names, ``reduction``, options and their ranges), then handed to this
  module (``_run``, ``_dispatch_multi``) for the device arrays.
- Inputs: anything with ``__cuda_array_interface__`` (CuPy, Numba, ...) or
  DLPack (``__dlpack__`` / ``__dlpack_device__`` on a CUDA device), and
  PyTorch CUDA tensors (read directly, so tensors that require grad work).
  float32, float64, float16 and bfloat16 predictions; float16 and bfloat16 are
  computed in float32 and their gradient is stored in the input's dtype.
  ``y_true``, ``weights`` and an array given for an option that takes one
  (a real-or-array option) of another dtype are converted on the device by
  their own library; a Python number as ``weights`` becomes a 0-d device
  array. Of the adversarial losses' two arrays the first decides the dtype.
- Results are arrays of the prediction's library (torch in, torch out; CuPy
  in, CuPy out; any other producer: CuPy): the reduced value is a 0-d device
  array (float64 for float64 input, else float32), never a host number, so a
  call never waits for the GPU. Read it when you need it (``float(v)``).
- The work runs on the producer's current stream (``torch.cuda.current_stream()``,
  ``cupy.cuda.get_current_stream()``; another ``__cuda_array_interface__``
  producer's v3 ``stream``), or on ``stream=`` (an int ``cudaStream_t``, a
  ``torch.cuda.Stream`` or a ``cupy.cuda.Stream``). Conversions and result
  allocations happen on that stream too. With ``stream=``, work that writes
  the inputs on another stream must be ordered before it by the caller
  (DLPack producers are given the stream and order it themselves).
- Mixing host data (NumPy arrays, lists) with device arrays is a TypeError
  naming the host argument; arrays on different devices are a ValueError.
- Reductions are deterministic: the same bits on every run.
- Range checks the CPU makes on the values of ``y_true`` (e.g. probabilities
  in [0, 1]) would need the host to wait for the GPU: on the GPU an
  out-of-range ``y_true`` gives a NaN loss and gradient at that element (so
  the reduced value is NaN).

This module imports without the CUDA extension (``fastloss._cuda``), CuPy or
PyTorch: ``is_available()`` then says False.
"""

from __future__ import annotations

import contextlib
import numbers
import operator
import sys

# The module is split by role: _cuda_losses (the losses the GPU runs, read
# from the registry), _cuda_arrays (device arrays: library, device, Desc
# tuples; DLPack read in place) and this file (availability, streams and
# results, the calls). The names below stay fastloss.cuda's: what this file
# calls through them (_locate, _cupy) can be replaced here (tests).
from ._cuda_arrays import (  # noqa: F401 - the DL* structures and readers: fastloss.cuda's names
    _FLOAT_DTYPES, DLDataType, DLDevice, DLManagedTensor, DLManagedTensorVersioned, DLPackVersion, DLTensor,
    _c_strides, _cai_desc, _cupy, _describe, _locate, _read_capsule, _torch)
from ._cuda_losses import _loss_info, _losses_shape, _type_name, elements_losses, gpu_losses, score_losses

__all__ = ["is_available", "device_count", "device_name", "gpu_losses"]

# --------------------------------------------------------------------------
# The extension module, imported on first use.
# --------------------------------------------------------------------------

_EXT = None
_EXT_ERROR = None  # why fastloss._cuda could not be imported
_EXT_TRIED = False


def _ext():
    """``fastloss._cuda``, or None when it is not built (or cannot load)."""
    global _EXT, _EXT_ERROR, _EXT_TRIED
    if not _EXT_TRIED:
        try:
            from . import _cuda
        except ImportError as e:  # not built, or the shared library does not load
            _EXT_ERROR = f"{type(e).__name__}: {e}"
        else:
            _EXT = _cuda
        _EXT_TRIED = True
    return _EXT


def _why_unavailable():
    """A sentence saying why ``is_available()`` is False ('' when it is True)."""
    ext = _ext()
    if ext is None:
        if _EXT_ERROR is None:  # _ext replaced (tests)
            return "fastloss._cuda is not built"
        return f"fastloss._cuda is not built or does not load ({_EXT_ERROR})"
    try:
        if ext.is_available():
            return ""
    except Exception as e:  # noqa: BLE001 - a broken driver is "not available"
        return f"the CUDA runtime failed: {e}"
    return "no CUDA driver or no CUDA device"


def is_available() -> bool:
    """Whether fastloss can run on a GPU here.

    True when the CUDA extension ``fastloss._cuda`` is built and loads, a CUDA
    driver is installed and at least one device is visible. Never raises.
    """
    ext = _ext()
    if ext is None:
        return False
    try:
        return bool(ext.is_available())
    except Exception:  # noqa: BLE001 - a broken driver is "not available"
        return False


def device_count() -> int:
    """The number of visible CUDA devices (0 without the extension, a driver
    or a device)."""
    ext = _ext()
    if ext is None:
        return 0
    try:
        return int(ext.device_count())
    except Exception:  # noqa: BLE001
        return 0


def device_name(device: int = 0) -> str:
    """The name of CUDA device ``device`` (e.g. ``"NVIDIA H100 80GB HBM3"``).

    Raises RuntimeError when no GPU is usable (see ``is_available()``) and
    ValueError for a device index out of range.
    """
    try:
        index = operator.index(device)
    except TypeError:
        raise TypeError(f"device_name: device must be an integer, got {type(device).__name__}") from None
    if not is_available():
        raise RuntimeError(f"device_name: no CUDA GPU: {_why_unavailable()}")
    count = device_count()
    if not 0 <= index < count:
        raise ValueError(f"device_name: device must be in [0, {count}), got {index}")
    return str(_ext().device_name(index))


# --------------------------------------------------------------------------
# Streams, conversions and results through the arrays' own libraries.
# --------------------------------------------------------------------------


def _record_stream(objs, device, stream):
    """With ``stream=``, tell PyTorch's caching allocator that ``stream`` uses
    the torch tensors among ``objs``, so that a tensor freed right after the
    call is not reused by its own stream before ``stream`` has run the kernel.
    (CuPy has no equivalent: with ``stream=``, keep CuPy inputs alive until
    that stream has run the call, as with any stream-ordered API.)"""
    torch = _torch() if "torch" in sys.modules else None
    if torch is None:
        return
    ext_stream = None
    for t in objs:
        if isinstance(t, torch.Tensor) and t.is_cuda:
            if ext_stream is None:
                if int(torch.cuda.current_stream(device).cuda_stream) == stream:
                    return
                ext_stream = torch.cuda.ExternalStream(stream, device=device)
            t.record_stream(ext_stream)


def _stream_value(loss, stream):
    if isinstance(stream, int) and not isinstance(stream, bool):
        if stream < 0:
            raise ValueError(f"{loss}: stream must be a cudaStream_t (>= 0), got {stream}")
        return stream
    for attr in ("cuda_stream", "ptr"):  # torch.cuda.Stream, cupy.cuda.Stream
        v = getattr(stream, attr, None)
        if isinstance(v, int) and not isinstance(v, bool):
            return v
    raise TypeError(f"{loss}: stream must be an int (a cudaStream_t), a torch.cuda.Stream or a "
                    f"cupy.cuda.Stream, got {_type_name(stream)}")


def _current_stream(lib, device, cai):
    """The stream a library's work on ``device`` goes to now."""
    if lib == "torch":
        return int(_torch().cuda.current_stream(device).cuda_stream)
    if lib == "cai" and cai is not None and cai.get("stream") is not None:
        return int(cai["stream"])  # v3: the producer's stream (1: legacy default)
    cupy = _cupy()
    if cupy is None:
        return 0
    with cupy.cuda.Device(device):
        return int(cupy.cuda.get_current_stream().ptr)


@contextlib.contextmanager
def _on_stream(lib, device, stream):
    """Makes ``stream`` the library's current stream on ``device`` (so that
    conversions and allocations are ordered with the launch)."""
    if lib == "torch":
        torch = _torch()
        if torch.cuda.current_stream(device).cuda_stream == stream:
            yield
            return
        s = torch.cuda.default_stream(device) if stream == 0 else torch.cuda.ExternalStream(stream, device=device)
        with torch.cuda.stream(s):
            yield
        return
    cupy = _cupy()
    with cupy.cuda.Device(device):
        if cupy.cuda.get_current_stream().ptr == stream:
            yield
            return
        with (cupy.cuda.Stream.null if stream == 0 else cupy.cuda.ExternalStream(stream)):
            yield


def _need_cupy(loss, pred_name, y_pred):
    cupy = _cupy()
    if cupy is None:
        raise TypeError(f"{loss}: {pred_name} is a {_type_name(y_pred)} (neither a torch tensor nor a "
                        "CuPy array); its results are CuPy arrays, and CuPy is not installed")
    return cupy


def _lib_dtype(lib, dtype, loss, name):
    if lib == "torch":
        return getattr(_torch(), dtype)
    if dtype == "bfloat16":
        raise TypeError(f"{loss}: {name} would need a bfloat16 CuPy array, which CuPy does not have")
    import numpy as np

    return np.dtype(dtype)


def _empty(lib, device, shape, dtype, loss, name):
    if lib == "torch":
        torch = _torch()
        return torch.empty(shape, dtype=getattr(torch, dtype), device=torch.device("cuda", device))
    return _cupy().empty(shape, dtype=_lib_dtype(lib, dtype, loss, name))


def _full(lib, device, value, dtype, loss, name):
    if lib == "torch":
        torch = _torch()
        return torch.full((), value, dtype=getattr(torch, dtype), device=torch.device("cuda", device))
    return _cupy().full((), value, dtype=_lib_dtype(lib, dtype, loss, name))


def _convert(loss, name, obj, lib, dtype, olib, device):
    """``obj`` (a device array) converted to ``dtype`` by its own library
    (producers other than torch and CuPy: wrapped by the results' library)."""
    if lib == "torch":
        return obj.detach().to(dtype=getattr(_torch(), dtype)), "torch"
    if lib == "cupy":
        return obj.astype(_lib_dtype(lib, dtype, loss, name)), "cupy"
    if olib == "torch":
        torch = _torch()
        t = torch.from_dlpack(obj) if lib == "dlpack" else torch.as_tensor(obj, device=torch.device("cuda", device))
        return t.detach().to(dtype=getattr(torch, dtype)), "torch"
    cupy = _cupy()
    a = cupy.from_dlpack(obj) if lib == "dlpack" else cupy.asarray(obj)
    return a.astype(_lib_dtype("cupy", dtype, loss, name)), "cupy"


def _host_error(loss, name, obj, where):
    return TypeError(f"{loss}: {name} is a host {_type_name(obj)} but {where} is on the GPU; move it to "
                     f"the device (torch.as_tensor(x, device=...), cupy.asarray(x)) or pass "
                     f"host arrays only")


# --------------------------------------------------------------------------
# One GPU call: its device, stream, results' library and descs (shared by
# _run and _dispatch_multi).
# --------------------------------------------------------------------------


def _gpu_losses():
    """``gpu_losses()`` as a comma-separated list (for messages)."""
    return ", ".join(gpu_losses())


def _locate_optional(loss, name, obj, where):
    """(library, device) of an optional argument that may be a device array
    (weights, an array option): (None, None) for None and Python numbers; host
    data is a TypeError naming it."""
    if obj is None or isinstance(obj, numbers.Real):
        return None, None
    lib, dev = _locate(obj)
    if lib is None:
        raise _host_error(loss, name, obj, where)
    return lib, dev


def _locate_out(loss, out, pred_name):
    if out is None:
        return None, None
    lib, dev = _locate(out)
    if lib is None:
        raise TypeError(f"{loss}: out must be a CUDA array like {pred_name}, got a host {_type_name(out)}")
    return lib, dev


def _backend(loss, pred_name):
    ext = _ext()
    if ext is None:
        raise RuntimeError(f"{loss}: {pred_name} is a CUDA array but this fastloss has no CUDA backend: "
                           f"{_why_unavailable()}")
    return ext


def _resolve_device(loss, pred_name, p_lib, p_dev, others):
    """The call's device: the prediction's, or where its producer does not
    say, the first other array's that does (else CuPy's current device for a
    bare __cuda_array_interface__ producer, else 0). ``others``: (name,
    device or None) of the other arguments; one on another device is a
    ValueError."""
    known = [d for d in (p_dev, *(d for _, d in others)) if d is not None and d >= 0]
    if known:
        device = p_dev if p_dev >= 0 else known[0]
    elif p_lib == "cai" and _cupy() is not None:
        device = int(_cupy().cuda.runtime.getDevice())
    else:
        device = 0
    for name, d in others:
        if d is not None and d >= 0 and d != device:
            raise ValueError(f"{loss}: {name} is on cuda:{d} but {pred_name} is on cuda:{device}")
    return device


class _Launch:
    """What the arrays of one GPU call share: the loss and prediction names,
    the device, the stream (``stream=`` or the prediction producer's current
    one), the results' library (torch in, torch out; else CuPy), the
    prediction's dtype, and the objects (DLPack capsules, converted copies,
    0-d weights) kept alive until the launch is enqueued."""

    def __init__(self, loss, pred_name, y_pred, p_lib, device, stream_arg):
        self.loss, self.pred_name, self.y_pred = loss, pred_name, y_pred
        self.device = device
        self.olib = p_lib if p_lib in ("torch", "cupy") else "cupy"
        self.stream_arg = stream_arg
        if stream_arg is not None:
            self.stream = _stream_value(loss, stream_arg)
        else:
            cai = y_pred.__cuda_array_interface__ if p_lib == "cai" else None
            self.stream = _current_stream(p_lib, device, cai)
        self.dtype = None
        self.keep = []

    def describe(self, name, obj, lib):
        """(Desc, read_only) of a device array."""
        return _describe(self.loss, name, obj, lib, self.device, self.stream, self.keep)

    def prediction(self, obj, lib):
        """The prediction's Desc; its dtype becomes the call's."""
        desc, _ = self.describe(self.pred_name, obj, lib)
        if desc[3] not in _FLOAT_DTYPES:
            raise TypeError(f"{self.loss}: {self.pred_name} must be float32, float64, float16 or bfloat16, "
                            f"got {desc[3]}")
        self.dtype = desc[3]
        return desc

    def out(self, obj, lib, shape):
        """The Desc of ``out=``: writable, the prediction's dtype and ``shape``."""
        desc, read_only = self.describe("out", obj, lib)
        if read_only:
            raise ValueError(f"{self.loss}: out must be writable")
        if desc[3] != self.dtype:
            raise ValueError(f"{self.loss}: out must have {self.pred_name}'s dtype {self.dtype}, got {desc[3]}")
        if desc[1] != shape:
            raise ValueError(f"{self.loss}: out must have {self.pred_name}'s shape {shape}, got {desc[1]}")
        return desc

    def load(self, name, obj, lib):
        """The Desc of a device array in the call's dtype: converted by its
        own library (other producers: by the results' library) when it has
        another real dtype."""
        desc, _ = self.describe(name, obj, lib)
        dtype = self.dtype
        if desc[3] == dtype:
            return desc
        if desc[3] not in _FLOAT_DTYPES and not desc[3].startswith(("int", "uint", "bool")):
            raise TypeError(f"{self.loss}: {name} must hold real numbers, got {desc[3]}")
        conv_lib = lib if lib in ("torch", "cupy") else self.olib
        if conv_lib == "cupy" and _cupy() is None:
            raise TypeError(f"{self.loss}: {name} has dtype {desc[3]}, not {self.pred_name}'s {dtype}, and CuPy "
                            "is not installed to convert it; convert it first")
        with _on_stream(conv_lib, self.device, self.stream):
            converted, lib2 = _convert(self.loss, name, obj, lib, dtype, self.olib, self.device)
        self.keep.append(converted)
        return self.describe(name, converted, lib2)[0]

    def weights(self, name, obj, lib):
        """The Desc of weights: a device array (loaded), or a Python number
        as a 0-d device array of the call's dtype."""
        if lib is not None:
            return self.load(name, obj, lib)
        self.need_results()
        with _on_stream(self.olib, self.device, self.stream):
            w = _full(self.olib, self.device, float(obj), self.dtype, self.loss, name)
        self.keep.append(w)
        return self.describe(name, w, self.olib)[0]

    def need_results(self):
        """Results are allocated by torch or CuPy: a TypeError when that is
        CuPy and CuPy is not installed."""
        if self.olib == "cupy":
            _need_cupy(self.loss, self.pred_name, self.y_pred)

    def allocating(self):
        """The context of the result allocations (the call's device and stream)."""
        return _on_stream(self.olib, self.device, self.stream)

    def empty(self, name, shape):
        """A new array of the call's dtype and its Desc (inside allocating())."""
        a = _empty(self.olib, self.device, shape, self.dtype, self.loss, name)
        return a, self.describe(name, a, self.olib)[0]

    def result(self):
        """The 0-d reduced value (float64 for float64 input, else float32) and its Desc."""
        dtype = "float64" if self.dtype == "float64" else "float32"
        a = _empty(self.olib, self.device, (), dtype, self.loss, "result")
        return a, self.describe("result", a, self.olib)[0]

    def enqueued(self, objs):
        """After the launch: with ``stream=``, tell torch's allocator that the
        stream uses the call's tensors."""
        if self.stream_arg is not None:
            _record_stream([*objs, *self.keep], self.device, self.stream)



# --------------------------------------------------------------------------
# The entry points of fastloss._core (and _structured) for device arrays.
# --------------------------------------------------------------------------


def _run(loss, want, y_true, y_pred, reduction, weights, out, options, aux, stream):
    """Run a loss call with device arrays on the GPU.

    Called by fastloss._core (the loss objects: ``fl.<loss>(...)``,
    ``.grad``, ``.value_and_grad``) when ``y_pred`` or ``y_true`` is a CUDA
    array, after it has parsed and checked the call as the CPU does:
    ``loss`` is the registry name (aliases resolved), ``want`` 0 (value), 1
    (gradient) or 2 (value and gradient), ``reduction`` "mean", "sum" or
    "none"; ``weights``, ``out`` and ``stream`` are the arguments as given or
    None; ``options`` holds every option of the loss as plain Python values
    (what the extension reads back through the registry's field list);
    ``aux`` is the array given for a real-or-array option, or None.

    Returns what the CPU returns, as device arrays of the prediction's
    library: the value (a 0-d array for "mean"/"sum", the per-element losses
    for "none", of the shape ``_losses_shape`` gives), the gradient, or both
    as a tuple. Enqueues the work and returns without waiting for it.
    """
    driver, true_name, pred_name, on_gpu, aux_name, axes_name = _loss_info(loss)
    if not on_gpu:
        raise TypeError(f"{loss}: CUDA arrays are not supported by this loss yet (on the GPU: "
                        f"{_gpu_losses()}); pass NumPy arrays")
    if aux is not None:
        aux_name = aux_name or "aux"
        if isinstance(aux, bool):
            raise TypeError(f"{loss}: {aux_name} must be a real number or a CUDA array on the GPU, got bool")
        if isinstance(aux, numbers.Real):
            # A host number fastloss._core left as an array (a NumPy scalar):
            # the option's number (the extension checks its range).
            options = dict(options)
            options[aux_name] = float(aux)
            aux = None
    if want == 0:
        out = None

    # Where everything is: host data next to device data is a TypeError.
    p_lib, p_dev = _locate(y_pred)
    t_lib, t_dev = _locate(y_true)
    if p_lib is None and t_lib is None:
        raise TypeError(f"{loss}: neither {true_name} nor {pred_name} is a CUDA array")
    if p_lib is None:
        raise _host_error(loss, pred_name, y_pred, true_name)
    if t_lib is None:
        raise _host_error(loss, true_name, y_true, pred_name)
    w_lib, w_dev = _locate_optional(loss, "weights", weights, pred_name)
    a_lib, a_dev = (None, None) if aux is None else _locate_optional(loss, aux_name, aux, pred_name)
    o_lib, o_dev = _locate_out(loss, out, pred_name)
    ext = _backend(loss, pred_name)
    device = _resolve_device(loss, pred_name, p_lib, p_dev,
                             [(true_name, t_dev), ("weights", w_dev), (aux_name, a_dev), ("out", o_dev)])

    run = _Launch(loss, pred_name, y_pred, p_lib, device, stream)
    p_desc = run.prediction(y_pred, p_lib)
    shape = p_desc[1]
    grad = g_desc = None
    if out is not None:
        g_desc = run.out(out, o_lib, shape)
        grad = out
    t_desc = run.load(true_name, y_true, t_lib)
    w_desc = None if weights is None else run.weights("weights", weights, w_lib)
    extra = {} if aux is None else {"aux": run.load(aux_name, aux, a_lib)}

    need_alloc = (want != 1) or grad is None
    if need_alloc:
        run.need_results()
    value = v_desc = l_desc = None
    with run.allocating() if need_alloc else contextlib.nullcontext():
        if want != 0 and grad is None:
            grad, g_desc = run.empty("grad", shape)
        if want != 1:
            if reduction == "none":
                axes = options.get(axes_name) if axes_name else None
                value, l_desc = run.empty("losses", _losses_shape(driver, shape, axes))
            else:
                value, v_desc = run.result()
        ext.elementwise(loss, options, reduction, t_desc, p_desc, w_desc, g_desc, l_desc, v_desc, run.stream,
                        **extra)
    run.enqueued([y_true, y_pred, weights, aux, grad, value])
    if want == 0:
        return value
    if want == 1:
        return grad
    return value, grad


def _dispatch_multi(loss, want, inputs, names, target, target_name, weights, reduction, options, out,
                    stream=None):
    """Run a loss of several inputs with device arrays on the GPU.

    Called by ``fastloss._core._multi`` (the front door of ``fastloss._structured.MultiLoss``) when
    an input is a CUDA array, after it has parsed and checked the call as the CPU does: ``names``
    are the inputs' names, ``reduction`` "mean", "sum" or "none", ``options`` every option of the
    loss as plain values (read through the registry's field list), ``out`` and ``stream`` as given
    or None. On the GPU: the adversarial losses of score arrays (``score_losses()``) and the
    elementwise losses of two inputs and a target (``elements_losses()``). Returns what
    the CPU returns, as device arrays of the first input's library: the value (a 0-d array; for
    "none" the per-element losses of each array, a tuple for two arrays), the gradient (a tuple
    ``(g_real, g_fake)`` for two arrays, one array for one), or both. ``weights``: for two arrays
    None or a pair (each None, a number or a device array broadcast to its array); for one, None, a
    number or a device array. Enqueues the work and returns without waiting for it.
    """
    if loss in elements_losses():
        return _dispatch_elements(loss, want, inputs, names, target, target_name, weights, reduction,
                                  options, stream)
    if loss not in score_losses():
        raise TypeError(f"{loss}: CUDA arrays are not supported by this loss yet (on the GPU: "
                        f"{_gpu_losses()}); pass NumPy arrays")
    opts = dict(options)

    inputs, names = list(inputs), [str(n) for n in names]
    n = len(inputs)
    located = [_locate(x) for x in inputs]
    on_device = [names[k] for k in range(n) if located[k][0] is not None]
    if not on_device:
        raise TypeError(f"{loss}: none of {', '.join(names)} is a CUDA array")
    for k in range(n):
        if located[k][0] is None:
            raise _host_error(loss, names[k], inputs[k], on_device[0])
    if n == 1:
        w_list = [weights]
    elif weights is None:
        w_list = [None] * n
    elif not isinstance(weights, (tuple, list)):
        raise TypeError(f"{loss}: weights must be None or a pair (w_real, w_fake)")
    elif len(weights) != n:
        raise ValueError(f"{loss}: weights must be a pair (w_real, w_fake)")
    else:
        w_list = list(weights)
    w_located = [_locate_optional(loss, "weights", w, names[0]) for w in w_list]
    o_lib, o_dev = _locate_out(loss, out, names[0])
    ext = _backend(loss, names[0])
    device = _resolve_device(loss, names[0], located[0][0], located[0][1],
                             [(names[k], located[k][1]) for k in range(1, n)]
                             + [("weights", d) for _, d in w_located] + [("out", o_dev)])

    run = _Launch(loss, names[0], inputs[0], located[0][0], device, stream)
    descs = [run.prediction(inputs[0], located[0][0])]
    grads = [None] * n
    g_descs = [None] * n
    if out is not None and n == 1 and want != 0:
        g_descs[0] = run.out(out, o_lib, descs[0][1])
        grads[0] = out
    descs += [run.load(names[k], inputs[k], located[k][0]) for k in range(1, n)]
    w_descs = [None if w is None else run.weights("weights", w, lib)
               for w, (lib, _) in zip(w_list, w_located)]

    need_alloc = want != 1 or any(g is None for g in grads)
    if need_alloc:
        run.need_results()
    losses = [None] * n
    l_descs = [None] * n
    value = v_desc = None
    with run.allocating() if need_alloc else contextlib.nullcontext():
        for k in range(n):
            if want != 0 and grads[k] is None:
                grads[k], g_descs[k] = run.empty("grad", descs[k][1])
            if want != 1 and reduction == "none":
                losses[k], l_descs[k] = run.empty("losses", descs[k][1])
        if want != 1 and reduction != "none":
            value, v_desc = run.result()
        calls = [(descs[k], w_descs[k], g_descs[k], l_descs[k]) for k in range(n)]
        ext.scores(loss, opts, reduction, calls, v_desc, run.stream)
    run.enqueued([*inputs, *w_list, *grads, *losses, value])
    if reduction == "none":
        value = losses[0] if n == 1 else tuple(losses)
    grad = grads[0] if n == 1 else tuple(grads)
    if want == 0:
        return value
    if want == 1:
        return grad
    return value, grad


def _dispatch_elements(loss, want, inputs, names, target, target_name, weights, reduction, options, stream):
    """``_dispatch_multi`` for the elementwise losses of two inputs and a
    target (``elements_losses()``): the target, the second input and
    the weights are loaded in the first input's dtype (weights: None, a
    number or a device array broadcast to the inputs); the gradient is the
    pair ``(d/d first, d/d second)``, the losses ("none") one array."""
    inputs, names = list(inputs), [str(n) for n in names]
    located = [_locate(x) for x in inputs]
    t_lib, t_dev = _locate(target)
    on_device = [names[k] for k in range(2) if located[k][0] is not None]
    if t_lib is not None:
        on_device.append(str(target_name))
    for k in range(2):
        if located[k][0] is None:
            raise _host_error(loss, names[k], inputs[k], on_device[0])
    if t_lib is None:
        raise _host_error(loss, str(target_name), target, on_device[0])
    w_lib, w_dev = _locate_optional(loss, "weights", weights, names[0])
    ext = _backend(loss, names[0])
    device = _resolve_device(loss, names[0], located[0][0], located[0][1],
                             [(names[1], located[1][1]), (str(target_name), t_dev), ("weights", w_dev)])
    run = _Launch(loss, names[0], inputs[0], located[0][0], device, stream)
    d0 = run.prediction(inputs[0], located[0][0])
    d1 = run.load(names[1], inputs[1], located[1][0])
    dt = run.load(str(target_name), target, t_lib)
    dw = None if weights is None else run.weights("weights", weights, w_lib)
    run.need_results()
    grads, g_descs = [None, None], [None, None]
    losses = l_desc = value = v_desc = None
    with run.allocating():
        if want != 0:
            grads[0], g_descs[0] = run.empty("grad", d0[1])
            grads[1], g_descs[1] = run.empty("grad", d1[1])
        if want != 1 and reduction == "none":
            losses, l_desc = run.empty("losses", d0[1])
        elif want != 1:
            value, v_desc = run.result()
        ext.elements(loss, dict(options), reduction, [d0, d1], dt, dw, g_descs, l_desc, v_desc, run.stream)
    run.enqueued([*inputs, target, weights, *grads, losses, value])
    if reduction == "none":
        value = losses
    grad = tuple(grads)
    if want == 0:
        return value
    if want == 1:
        return grad
    return value, grad
