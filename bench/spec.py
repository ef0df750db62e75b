"""One shape for every benchmark group of bench/run.py (regression,
classification, structured): a group's cases are Spec rows, and what run.py
does with a case is the same for every group.

A group is a module (GROUPS[name].module: impls.py, impls_classification.py,
impls_structured.py) with

  SPECS: {name: Spec}, the cases it runs, in the order of the tables;
  make_data(name, shape, dtype) -> the inputs as NumPy arrays, in fastloss's
      positional order (regression: shape = (N,));
  numpy_baseline(name, *data), torch_impl(torch, name, *data) and, where JAX
      is part of the group, jax_impl(jax, name, *data) -> {op: fn};
  reference(name, *data) -> (float64 value, tuple of float64 gradients) of
      fastloss.reference.

This module holds the rest: the fastloss call of a spec (fastloss_impl), the
bytes that must move (floor_bytes), the check of a result against the
reference (check) and the names of shapes.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Spec:
    """One benchmark case: the fastloss call and what the tables say of it."""

    name: str                 # the benchmark's name (the CSV's `loss`)
    fl: str = ""              # the fastloss function it calls (default: name)
    kw: dict = field(default_factory=dict)  # its options; every library computes the same quantity
    shapes: tuple = ()        # default shapes (regression: none, --sizes gives N)
    quick: tuple = ()         # --quick shapes
    diff: tuple = (1,)        # the differentiable inputs: indices into make_data's tuple
    out: bool = True          # fastloss value_and_grad takes out= (one gradient)
    target: str = ""          # which of the targets the tables hold it to ("" none)
    description: str = ""     # the tables' legend
    kind: str = ""            # the group's own input kind (classification: binary, dense, labels)

    def __post_init__(self):
        if not self.fl:
            object.__setattr__(self, "fl", self.name)


def specs(*rows: Spec) -> dict:
    """{name: spec}, in the given order."""
    return {s.name: s for s in rows}


@dataclass(frozen=True)
class Group:
    """A --group of run.py: its module, defaults, output files and checks."""

    name: str
    module: str               # SPECS, make_data and the implementations
    dtypes: str               # default --dtypes
    stem: str                 # DIR/STEM.csv and DIR/STEM.json
    table: str                # the Markdown file in DIR
    shaped: bool              # cells are shapes (4096x32000), not element counts N (--sizes)
    value_rtol: float         # check(): the float32 value's tolerance (gradients: GRAD_RTOL)


GROUPS = {
    "regression": Group("regression", "impls", "float32,float64", "results", "table.md", False, 2e-3),
    "classification": Group("classification", "impls_classification", "float32", "classification",
                            "classification.md", True, 2e-3),
    "structured": Group("structured", "impls_structured", "float32", "structured", "structured.md", True, 1e-4),
}


class Missing(RuntimeError):
    """The installed fastloss lacks the function (not built yet)."""


def parse_shape(s: str) -> tuple:
    """'4096x32000' -> (4096, 32000); '1e7' -> (10000000,)."""
    return tuple(int(float(x)) for x in s.lower().split("x"))


def shape_str(shape) -> str:
    return "x".join(str(int(d)) for d in shape)


def fastloss_impl(fl, spec: Spec, *data):
    """{op: fn} of the fastloss call: value, value_and_grad (allocating its
    gradients) and, for a loss of one gradient, value_and_grad into a
    preallocated out=."""
    obj = getattr(fl, spec.fl, None)
    if obj is None:
        raise Missing(f"fastloss {getattr(fl, '__version__', '?')} has no fl.{spec.fl} (not built yet)")
    fns = {
        "value": functools.partial(obj, *data, **spec.kw),
        "value_and_grad": functools.partial(obj.value_and_grad, *data, **spec.kw),
    }
    if spec.out:
        # Same call with a preallocated gradient: no allocation / page faults.
        out = np.empty_like(data[spec.diff[0]])
        fns["value_and_grad_out"] = functools.partial(obj.value_and_grad, *data, out=out, **spec.kw)
    return fns


def floor_bytes(spec: Spec, data) -> dict:
    """Bytes that must move per op: value reads every input once;
    value_and_grad also writes one gradient per differentiable input (for
    (y_true, y_pred) of N elements: 2*N*itemsize / 3*N*itemsize; integer
    labels count their own bytes)."""
    v = sum(int(a.nbytes) for a in data)
    g = v + sum(int(data[i].nbytes) for i in spec.diff)
    return {"value": v, "value_and_grad": g, "value_and_grad_out": g}


def _arr(x):
    if hasattr(x, "detach"):
        x = x.detach().numpy()
    return np.asarray(x)


def to_result(ret):
    """(value, tuple of gradients or None) from what an implementation returned."""
    if isinstance(ret, tuple):
        v, g = ret
        gs = tuple(g) if isinstance(g, (tuple, list)) else (g,)
        return float(_arr(v)), tuple(_arr(x) for x in gs)
    return float(_arr(ret)), None


GRAD_RTOL = 2e-3  # float32 gradients; float64 values and gradients: F64_RTOL
F64_RTOL = 1e-9


def check(fn, ref, dtype, value_rtol=2e-3):
    """None when fn()'s value (float32: rtol ``value_rtol``) and gradients
    (float32: rtol 2e-3) match the float64 reference (value, tuple of
    gradients), else a message."""
    try:
        v, gs = to_result(fn())
    except Exception as e:  # noqa: BLE001
        return f"call failed: {type(e).__name__}: {e}"
    ref_v, ref_gs = ref
    rtol = value_rtol if dtype == "float32" else F64_RTOL
    if not np.isclose(v, ref_v, rtol=rtol, atol=0.0):
        return f"value {v!r} != reference {ref_v!r} (rel. diff {abs(v - ref_v) / max(abs(ref_v), 1e-300):.2e})"
    if gs is None:
        return None
    if len(gs) != len(ref_gs):
        return f"{len(gs)} gradients, reference has {len(ref_gs)}"
    rtol = GRAD_RTOL if dtype == "float32" else F64_RTOL
    for k, (g, rg) in enumerate(zip(gs, ref_gs)):
        if g.shape != rg.shape:
            return f"grad {k}: shape {g.shape} != {rg.shape}"
        scale = float(np.max(np.abs(rg))) if rg.size else 0.0
        atol = rtol * scale * 1e-2
        close = np.isclose(g, rg, rtol=rtol, atol=atol)
        if not close.all():
            bad = int(np.sum(~close))
            i = int(np.flatnonzero(~close.ravel())[0])
            return (f"grad {k} differs from reference at {bad} of {g.size} elements "
                    f"(first: flat index {i}: {g.ravel()[i]!r} vs {rg.ravel()[i]!r})")
    return None
