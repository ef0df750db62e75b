"""fastloss.cuda, the module (no GPU needed): importing without the extension
(fastloss._cuda), CuPy or PyTorch; is_available(); the losses on the GPU (the
registry's GPU rows, gpu_losses()); the shape of the per-element losses; and
the built extension's own argument checks, which run before any CUDA call
(skipped where fastloss._cuda is not built).

The other tests of fastloss.cuda: test_cuda_interop.py (device arrays read
into Desc tuples), test_cuda_dispatch.py (the loss calls with device arrays,
on a recording and on an emulated extension), test_cuda_elementwise.py and
test_cuda_structured.py (on the GPU, against the CPU); what they share is in
cuda_checks.py.
"""

import re
import subprocess
import sys

import pytest

import fastloss as fl
import fastloss.cuda as flc
from cuda_checks import (
    ELEMENTS_LOSSES, GPU, GPU_LOSSES, GPU_LOSSES_PART1, REGION_LOSSES, SCORE_LOSSES, FakeExt,
)

# ==========================================================================
# The module (no GPU needed)
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
    assert flc.gpu_losses() == rows + SCORE_LOSSES + ELEMENTS_LOSSES
    assert set(GPU_LOSSES) <= set(rows)
    for name in core.loss_names():  # the GPU runs exactly the rows of its drivers
        assert core.loss_info(name)["gpu"] is (core.loss_info(name)["driver"] in GPU_DRIVERS), name
    assert flc._gpu_losses() == ", ".join(rows + SCORE_LOSSES + ELEMENTS_LOSSES)
    assert "gpu_losses" in flc.__all__
    names = {"contrastive": ("y_true", "distance"), "box_iou": ("boxes_true", "boxes_pred")}
    for name in GPU_LOSSES:
        driver, true_name, pred_name, on_gpu, _, _ = flc._loss_info(name)
        assert (true_name, pred_name) == names.get(name, ("y_true", "y_pred")) and on_gpu is True
        assert driver == ("regions" if name in REGION_LOSSES else "boxes" if name == "box_iou" else "elementwise")
    assert flc._loss_info("binary_cross_entropy")[4] == "pos_weight"  # the real-or-array option: aux
    assert flc._loss_info("dice")[5] == "axis" and flc._loss_info("mse")[4:] == (None, None)
    assert flc.score_losses() == SCORE_LOSSES  # the registry's rows of several inputs with a GPU kind
    for name in SCORE_LOSSES:
        assert core.loss_info(name)["gpu"] and isinstance(getattr(fl, name), fl.MultiLoss), name
    # the elementwise rows of several inputs: every row of the kind "elements"
    assert flc.elements_losses() == ELEMENTS_LOSSES
    kinds = {n: core.loss_info(n)["kind"] for n in core.multi_loss_names()}
    assert [n for n, k in kinds.items() if k == "elements"] == ELEMENTS_LOSSES
    assert [n for n in core.multi_loss_names() if core.loss_info(n)["gpu"]] == [
        n for n, k in kinds.items() if k in ("score_pair", "scores", "elements")]


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
