"""The one argument front door (python/src/single.cc and arguments.cc): bad
input from outside gets a TypeError/ValueError naming the argument, never a
crash, a Python error left set, or a silently wrong reading."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fastloss as fl
from fastloss import _core


def _run_isolated(code):
    """Runs `code` in a fresh interpreter; returns (returncode, output)."""
    r = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                       text=True, timeout=120)
    return r.returncode, r.stdout + r.stderr


def test_keyword_that_is_not_utf8_is_a_type_error():
    y = np.zeros(3)
    with pytest.raises(TypeError, match="keywords must be valid UTF-8"):
        fl.smooth_l1(y, y, **{"\udcff": 1})
    # No Python error is left set: the next call works and nothing else fails.
    assert fl.mse(y, y) == 0
    with pytest.raises(TypeError):
        fl.smooth_l1.grad(y, y, **{"\udcff": 1})
    assert fl.mse.grad(y, y).shape == (3,)


@pytest.mark.parametrize("bad", [b"1", bytearray(b"1"), "1"])
@pytest.mark.parametrize("where", ["y_true", "y_pred", "weights"])
def test_text_is_not_an_array(bad, where):
    args = {"y_true": np.float32(0.5), "y_pred": np.float32(0.5), "weights": None}
    args[where] = bad
    with pytest.raises(TypeError, match=f"mse: {where} must be an array of numbers, got"):
        fl.mse(args["y_true"], args["y_pred"], weights=args["weights"])


def test_text_labels_and_options_are_type_errors():
    with pytest.raises(TypeError, match="y_true must be an array of numbers"):
        fl.sparse_cce(b"\x01", np.zeros((1, 3), np.float32))
    with pytest.raises(TypeError, match="pos_weight must be an array of numbers"):
        fl.bce(np.ones(2), np.full(2, 0.5), pos_weight=b"1e3")


def test_unaligned_zero_d_input_keeps_its_shape():
    # A 0-d float64 at an odd address: the aligned copy stays 0-d.
    buf = np.zeros(9, np.uint8)
    x = buf[1:].view(np.float64).reshape(())
    x[()] = 3.0
    assert x.ctypes.data % 8 != 0
    v = fl.mse(np.float64(1.0), x)
    assert v == 4.0
    g = fl.mse.grad(np.float64(1.0), x)
    assert g.shape == () and g == 4.0
    _, g2 = fl.l2_penalty.value_and_grad([x], 0.5)
    assert g2[0].shape == () and g2[0] == 3.0


def test_tensor_that_requires_grad_names_the_argument():
    torch = pytest.importorskip("torch")
    t = torch.ones(3, requires_grad=True)
    with pytest.raises(TypeError, match="mse: y_pred could not be read as an array"):
        fl.mse(np.ones(3, np.float32), t)
    with pytest.raises(TypeError, match="mse: y_true could not be read as an array"):
        fl.mse(t, np.ones(3, np.float32))


def test_uninitialised_loss_objects_raise_instead_of_crashing():
    rc, out = _run_isolated("""
        import numpy as np
        import fastloss as fl
        y = np.zeros(3)
        for make in (lambda: fl.Loss.__new__(fl.Loss), lambda: type(fl.mse).__new__(type(fl.mse)),
                     lambda: fl._core.Loss.__new__(fl._core.Loss)):
            try:
                obj = make()  # fastloss.Loss refuses at once (python/fastloss/_function.py)
            except TypeError as e:
                assert "name of a loss" in str(e), e
                continue
            for use in (lambda: obj(y, y), lambda: obj.grad(y, y), lambda: obj.value_and_grad(y, y),
                        lambda: obj.name, lambda: obj.options):
                try:
                    use()
                except TypeError as e:
                    assert "not initialised" in str(e), e
                else:
                    raise SystemExit("no error")
            assert "uninitialised" in repr(obj)
        print("ok")
    """)
    assert rc == 0 and "ok" in out, out


@pytest.mark.parametrize("name,n", [("cosine_embedding", 3), ("triplet_margin", 3),
                                    ("gan_generator", 1)])
def test_multi_binds_its_arguments(name, n):
    # _core._multi(name, want, args, kwargs) binds the call to the row's
    # argument names itself: nothing it is given is trusted.
    x = np.ones((2, 3), np.float32)
    args = _core.loss_info(name)["args"]
    assert len(args) == n
    with pytest.raises(TypeError, match=rf"{name}\(\) takes {n} positional arguments"):
        _core._multi(name, 0, (x,) * (n + 1), {})
    with pytest.raises(TypeError, match=f"{name}\\(\\) missing required argument '{args[-1]}'"):
        _core._multi(name, 0, (x,) * (n - 1), {})
    with pytest.raises(TypeError, match=f"got multiple values for argument '{args[0]}'"):
        _core._multi(name, 0, (x,) * n, {args[0]: x})
    with pytest.raises(ValueError, match="unknown loss"):
        _core._multi("nope", 0, (x,), {})
    with pytest.raises(ValueError, match="want must be 0, 1 or 2"):
        _core._multi(name, 7, (x,) * n, {})


def test_reduction_is_checked_once_with_the_same_words():
    y = np.zeros(3)
    for loss in (fl.mse, fl.cce, fl.dice, fl.box_iou):
        with pytest.raises(ValueError, match=f"{loss.name}: reduction must be 'mean', 'sum' or 'none', got 'avg'"):
            loss(y, y, reduction="avg")
        with pytest.raises(ValueError, match="reduction must be"):
            loss(y, y, reduction=b"mean")


def test_options_are_parsed_into_the_typed_struct():
    y = np.array([0.0, 1.0, 0.0])
    p = np.array([0.2, 0.7, 0.4])
    # Every option by keyword, in any order, same bits as the defaults.
    assert fl.bce(y, p) == fl.bce(y, p, label_smoothing=0.0, pos_weight=1.0, eps=1e-7, from_logits=False)
    with pytest.raises(TypeError, match="binary_cross_entropy: from_logits must be a bool, got str"):
        fl.bce(y, p, from_logits="yes")
    with pytest.raises(TypeError, match="unexpected keyword argument 'delta'"):
        fl.mse(y, p, delta=1.0)
    with pytest.raises(ValueError, match="box_iou: kind must be one of 'iou', 'giou', 'diou', 'ciou', got 'x'"):
        fl.box_iou(np.zeros((1, 4)), np.zeros((1, 4)), kind="x")
    with pytest.raises(TypeError, match="dice: axis must be None, an int or a tuple of ints"):
        fl.dice(y, p, axis=1.5)
