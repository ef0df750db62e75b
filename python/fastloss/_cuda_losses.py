"""The losses fastloss.cuda runs on the GPU.

The losses, their arguments and options come from the registry of
fastloss._core (loss_info), which parses the calls: the single-input rows
(through fastloss.cuda._run) and the rows of several inputs the GPU has,
the adversarial losses of score arrays and the elementwise losses of two
inputs and a target (through fastloss.cuda._dispatch_multi). Nothing here restates a loss or an option.
"""

from __future__ import annotations

# The registry's type names of the options _run reads (fastloss._core's
# option descriptions): an array given for a real-or-array option arrives as
# ``aux``; the reduced axes of a region loss.
_REAL_OR_ARRAY = "float or array_like"
_AXES = "None, int or tuple of ints"

_INFO = {}  # name -> the registry's row as _run uses it (_loss_info)


def _type_name(v):
    return type(v).__name__


def _registry():
    """fastloss._core (the loss registry: loss_names, loss_info)."""
    from . import _core

    return _core


def _loss_info(name):
    """(driver, true_name, pred_name, gpu, aux option name, axes option name)
    of a registry row, cached."""
    info = _INFO.get(name)
    if info is None:
        row = _registry().loss_info(name)
        by_type = {}
        for o in row["options"]:
            by_type.setdefault(o["type"], o["name"])
        info = _INFO[name] = (row["driver"], row["true_name"], row["pred_name"], bool(row["gpu"]),
                              by_type.get(_REAL_OR_ARRAY), by_type.get(_AXES))
    return info


def _multi_on_gpu(kinds):
    core = _registry()
    return [n for n in core.multi_loss_names()
            if core.loss_info(n)["gpu"] and core.loss_info(n)["kind"] in kinds]


def score_losses():
    """The losses of several score arrays the GPU runs (the registry's rows
    of several inputs of the score kinds): each array is reduced on its own
    and the value is the sum (the CPU's rule)."""
    return _multi_on_gpu(("score_pair", "scores"))


def elements_losses():
    """The elementwise losses of two inputs and a target the GPU runs (the
    registry's rows of several inputs of the kind "elements")."""
    return _multi_on_gpu(("elements",))


def gpu_losses():
    """The names of the losses that run on the GPU (given device arrays):
    the registry's rows with a GPU driver, then the rows of several inputs
    the GPU has (score arrays, then the elementwise ones). Their aliases run
    there too."""
    core = _registry()
    return [n for n in core.loss_names() if core.loss_info(n)["gpu"]] + score_losses() + elements_losses()


def _losses_shape(driver, shape, axes):
    """The shape of the per-element losses (``reduction="none"``, and what
    weights broadcast to) of a loss of ``driver`` for a prediction of
    ``shape``: the prediction's (elementwise), without the reduced ``axes``
    (regions: None reduces every axis), without its last axis of 4
    coordinates (boxes). Axes out of range are left to the extension, which
    raises for them."""
    rank = len(shape)
    if driver == "boxes":
        reduced = {rank - 1} if rank else set()
    elif driver != "regions":
        return shape
    elif axes is None:
        reduced = set(range(rank))
    else:
        reduced = {a + rank if a < 0 else a for a in axes}
    return tuple(n for k, n in enumerate(shape) if k not in reduced)
