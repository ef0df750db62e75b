"""Device arrays for fastloss.cuda: which library made them, which device
they are on, and their Desc tuples (ptr, shape, strides in elements, dtype
name, device), read from torch tensors, __cuda_array_interface__ dicts and
DLPack capsules in place. The array libraries (torch, CuPy) are imported on
first use.
"""

from __future__ import annotations

import ctypes
import numbers
import operator
import sys

_FLOAT_DTYPES = ("float32", "float64", "float16", "bfloat16")
_ITEMSIZE = {"float16": 2, "bfloat16": 2, "float32": 4, "float64": 8}

_KDL_CUDA, _KDL_CUDA_MANAGED = 2, 13


def _torch():
    return sys.modules.get("torch") or _import("torch")


def _cupy():
    """CuPy, or None when it is not installed."""
    try:
        return _import("cupy")
    except ImportError:
        return None


def _import(name):
    import importlib

    return importlib.import_module(name)


def _is_torch(obj):
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(obj, getattr(torch, "Tensor", ()))


def _is_cupy(obj):
    cupy = sys.modules.get("cupy")
    return cupy is not None and isinstance(obj, getattr(cupy, "ndarray", ()))


def _cai(obj):
    try:
        return obj.__cuda_array_interface__
    except AttributeError:
        return None


def _dlpack_device(obj):
    f = getattr(obj, "__dlpack_device__", None)
    if f is None:
        return None
    try:
        dev_type, dev_id = f()
        return int(dev_type), int(dev_id)
    except Exception:  # noqa: BLE001 - not a usable DLPack producer: host data
        return None


def _locate(obj):
    """(library, device) of a CUDA array, (None, None) for anything else.

    library: "torch", "cupy", "cai" (another __cuda_array_interface__
    producer) or "dlpack"; device -1 when the producer does not say (the
    interface has no device field; resolved from the other arguments)."""
    if obj is None or isinstance(obj, (numbers.Number, str, bytes, list, tuple)):
        return None, None
    if _is_torch(obj):
        return ("torch", obj.device.index if obj.device.index is not None else -1) if obj.is_cuda else (None, None)
    if _is_cupy(obj):
        return "cupy", int(obj.device.id)
    if _cai(obj) is not None:
        dl = _dlpack_device(obj)
        if dl is not None and dl[0] in (_KDL_CUDA, _KDL_CUDA_MANAGED):
            return "cai", dl[1]
        dev = getattr(getattr(obj, "device", None), "id", None)
        return "cai", dev if isinstance(dev, int) else -1
    dl = _dlpack_device(obj)
    if dl is not None and dl[0] in (_KDL_CUDA, _KDL_CUDA_MANAGED):
        return "dlpack", dl[1]
    return None, None


def _c_strides(shape):
    strides = [0] * len(shape)
    s = 1
    for k in range(len(shape) - 1, -1, -1):
        strides[k] = s
        s *= shape[k]
    return tuple(strides)


def _typestr_dtype(loss, name, typestr):
    """The dtype name of a __cuda_array_interface__ typestr ('<f4' -> 'float32')."""
    if not isinstance(typestr, str) or len(typestr) < 3 or not typestr[2:].isdigit():
        raise TypeError(f"{loss}: {name} has an invalid __cuda_array_interface__ typestr {typestr!r}")
    order, kind, size = typestr[0], typestr[1], int(typestr[2:])
    if order == ">" and size > 1:
        raise TypeError(f"{loss}: {name} must be in native (little-endian) byte order, got typestr {typestr!r}")
    if kind == "V" and size == 2:
        return "bfloat16", 2  # PyTorch's and ml_dtypes' typestr for bfloat16
    names = {"f": "float", "i": "int", "u": "uint", "c": "complex"}
    if kind in names:
        return f"{names[kind]}{8 * size}", size
    if kind == "b" and size == 1:
        return "bool", 1
    return f"typestr {typestr!r}", size


def _check_strides(loss, name, byte_strides, itemsize):
    if any(s % itemsize for s in byte_strides):
        raise ValueError(f"{loss}: {name}'s strides must be multiples of its item size "
                         f"({itemsize} bytes), got {tuple(byte_strides)}")
    return tuple(s // itemsize for s in byte_strides)


def _cai_desc(loss, name, cai, device):
    """Desc and read-only flag of a __cuda_array_interface__ dict (v0-v3)."""
    try:
        shape = tuple(operator.index(n) for n in cai["shape"])
        ptr, readonly = cai["data"]
        typestr = cai["typestr"]
    except (KeyError, TypeError, ValueError):
        raise TypeError(f"{loss}: {name} has an invalid __cuda_array_interface__") from None
    if cai.get("mask") is not None:
        raise TypeError(f"{loss}: {name} has a mask (masked arrays are not supported)")
    dtype, itemsize = _typestr_dtype(loss, name, typestr)
    strides = cai.get("strides")
    if strides is None:
        strides = _c_strides(shape)
    else:
        strides = _check_strides(loss, name, [operator.index(s) for s in strides], itemsize)
        if len(strides) != len(shape):
            raise TypeError(f"{loss}: {name} has {len(strides)} strides for {len(shape)} dimensions")
    ptr = int(ptr or 0)
    _check_aligned(loss, name, ptr, itemsize, shape)
    return (ptr, shape, strides, dtype, device), bool(readonly)


def _check_aligned(loss, name, ptr, itemsize, shape):
    if ptr % itemsize and all(shape):
        raise ValueError(f"{loss}: {name}'s data pointer is not aligned to its item size ({itemsize} bytes)")


# DLPack (dlpack.h, v0.8 and v1.x), read in place: the capsule is borrowed,
# never consumed or renamed, so its destructor still frees the tensor.

class DLDevice(ctypes.Structure):
    _fields_ = [("device_type", ctypes.c_int32), ("device_id", ctypes.c_int32)]


class DLDataType(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint8), ("bits", ctypes.c_uint8), ("lanes", ctypes.c_uint16)]


class DLTensor(ctypes.Structure):
    _fields_ = [
        ("data", ctypes.c_void_p),
        ("device", DLDevice),
        ("ndim", ctypes.c_int32),
        ("dtype", DLDataType),
        ("shape", ctypes.POINTER(ctypes.c_int64)),
        ("strides", ctypes.POINTER(ctypes.c_int64)),
        ("byte_offset", ctypes.c_uint64),
    ]


class DLManagedTensor(ctypes.Structure):
    _fields_ = [("dl_tensor", DLTensor), ("manager_ctx", ctypes.c_void_p), ("deleter", ctypes.c_void_p)]


class DLPackVersion(ctypes.Structure):
    _fields_ = [("major", ctypes.c_uint32), ("minor", ctypes.c_uint32)]


class DLManagedTensorVersioned(ctypes.Structure):
    _fields_ = [
        ("version", DLPackVersion),
        ("manager_ctx", ctypes.c_void_p),
        ("deleter", ctypes.c_void_p),
        ("flags", ctypes.c_uint64),
        ("dl_tensor", DLTensor),
    ]


_DLPACK_FLAG_READ_ONLY = 1
_DL_CODES = {0: "int", 1: "uint", 2: "float", 4: "bfloat", 5: "complex", 6: "bool"}
_CAPSULE = {}


def _capsule_api():
    # Private prototypes (not ctypes.pythonapi's shared function objects,
    # whose argtypes other code may set differently).
    if not _CAPSULE:
        proto_valid = ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.py_object, ctypes.c_char_p)
        proto_get = ctypes.PYFUNCTYPE(ctypes.c_void_p, ctypes.py_object, ctypes.c_char_p)
        _CAPSULE["valid"] = proto_valid(("PyCapsule_IsValid", ctypes.pythonapi))
        _CAPSULE["get"] = proto_get(("PyCapsule_GetPointer", ctypes.pythonapi))
    return _CAPSULE["valid"], _CAPSULE["get"]


def _dl_dtype(dt):
    base = _DL_CODES.get(dt.code)
    if base is None:
        name = f"DLPack type code {dt.code} ({dt.bits} bits)"
    elif base == "bool":
        name = "bool"
    else:
        name = f"{base}{dt.bits}"
    return name if dt.lanes == 1 else f"{name}x{dt.lanes}"


def _read_capsule(capsule):
    """(ptr, shape, strides in elements, dtype, (device_type, device_id),
    read_only) of a DLPack capsule ("dltensor" or "dltensor_versioned"),
    read in place. ptr includes byte_offset; strides NULL means C-contiguous."""
    is_valid, get = _capsule_api()
    if is_valid(capsule, b"dltensor_versioned"):
        m = DLManagedTensorVersioned.from_address(get(capsule, b"dltensor_versioned"))
        if m.version.major != 1:
            raise BufferError(f"DLPack version {m.version.major}.{m.version.minor} is not supported")
        t, read_only = m.dl_tensor, bool(m.flags & _DLPACK_FLAG_READ_ONLY)
    elif is_valid(capsule, b"dltensor"):
        t, read_only = DLManagedTensor.from_address(get(capsule, b"dltensor")).dl_tensor, False
    else:
        raise TypeError(f"not an unconsumed DLPack capsule: {capsule!r}")
    shape = tuple(t.shape[k] for k in range(t.ndim))
    strides = tuple(t.strides[k] for k in range(t.ndim)) if t.strides else _c_strides(shape)
    ptr = (t.data or 0) + t.byte_offset
    return ptr, shape, strides, _dl_dtype(t.dtype), (t.device.device_type, t.device.device_id), read_only


def _dlpack_desc(loss, name, obj, stream, keep):
    """Desc and read-only flag of a DLPack producer; the capsule is kept in
    ``keep`` (alive until the call has been enqueued)."""
    # The array API's stream argument: the consumer's stream, 1 for the legacy
    # default stream (0 is not allowed); the producer orders its work before it.
    dl_stream = 1 if stream == 0 else stream
    try:
        capsule = obj.__dlpack__(stream=dl_stream, max_version=(1, 0))
    except TypeError:  # a producer older than DLPack 1.0
        capsule = obj.__dlpack__(stream=dl_stream)
    keep.append(capsule)
    try:
        ptr, shape, strides, dtype, device, read_only = _read_capsule(capsule)
    except (TypeError, BufferError) as e:
        raise TypeError(f"{loss}: {name}.__dlpack__() did not give a usable DLPack tensor ({e})") from None
    if device[0] not in (_KDL_CUDA, _KDL_CUDA_MANAGED):
        raise TypeError(f"{loss}: {name}.__dlpack__() gave a tensor on DLPack device type {device[0]}, "
                        "not a CUDA device")
    itemsize = _ITEMSIZE.get(dtype, 1)
    _check_aligned(loss, name, ptr, itemsize, shape)
    return (ptr, shape, strides, dtype, device[1]), read_only


_TORCH_DTYPES = {}


def _torch_dtype_name(t):
    name = _TORCH_DTYPES.get(t.dtype)
    if name is None:
        name = _TORCH_DTYPES[t.dtype] = str(t.dtype).replace("torch.", "")
    return name


def _torch_desc(loss, name, t):
    # Read directly: a tensor that requires grad refuses both
    # __cuda_array_interface__ and __dlpack__, and bfloat16 has no typestr.
    torch = _torch()
    if t.layout != torch.strided:
        raise TypeError(f"{loss}: {name} must be a dense (strided) tensor, got layout {t.layout}")
    desc = (int(t.data_ptr()), tuple(t.shape), tuple(t.stride()), _torch_dtype_name(t), t.device.index)
    return desc, False


def _describe(loss, name, obj, lib, device, stream, keep):
    """(Desc, read_only) of a device array; Desc = (ptr, shape, strides in
    elements, dtype name, device)."""
    if lib == "torch":
        return _torch_desc(loss, name, obj)
    if lib in ("cupy", "cai"):
        return _cai_desc(loss, name, obj.__cuda_array_interface__, device)
    return _dlpack_desc(loss, name, obj, stream, keep)
