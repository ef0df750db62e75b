"""fastloss.cuda's device arrays (fastloss._cuda_arrays), no GPU needed:
__cuda_array_interface__ dicts (contiguous, strided, every typestr, errors
naming the argument) and DLPack capsules (NumPy's, torch's, fake CUDA
producers) read in place into the extension's Desc tuples.
"""

import warnings

import numpy as np
import pytest

import fastloss.cuda as flc
from cuda_checks import BASE, FakeCAI, FakeDLPack

# --- __cuda_array_interface__ dicts ------------------------------------------


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
