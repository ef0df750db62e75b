"""The structured losses against the
NumPy float64 reference of fastloss.reference.structured: segmentation (dice,
jaccard, tversky, focal_tversky), detection (box_iou: iou/giou/diou/ciou),
metric learning (cosine_similarity, cosine_embedding, triplet_margin,
contrastive, contrastive_pairs, margin_ranking), adversarial losses and
penalties (gan_discriminator, gan_generator, wasserstein_critic,
wasserstein_generator, gradient_penalty, l2_penalty).

Every loss x option set x reduction x dtype x weights; value, grad and the
fused value_and_grad; out= (strided, in place); strided, transposed, Fortran
and reversed inputs; empty inputs; NaN propagation; the option, shape and dtype
errors; the edge cases of the spec (zero vectors, degenerate boxes, ties);
every SIMD target and concurrent callers. pairwise_ranking against the O(n^2)
enumeration is in test_ranking.py, the combined losses (fl.Combined) in
test_combined.py; the tables, data and checkers in structured_checks.py.

The reference itself is checked here against central finite differences
(test_reference_*); tests/python/torch_crosscheck.py (run by hand, needs torch)
checks it against PyTorch's functions and autograd.
"""

import concurrent.futures
import functools
import threading

import numpy as np
import pytest

import fastloss as fl
import fastloss.testing
from fastloss.reference import structured as ref
from checks import DTYPES, REDUCTIONS, assert_close
from structured_checks import (
    ALL_NAMES, ARGS, CONFIGS, D, DIFF, ENTRY, FAMILY, IDS, MULTI_GRAD, OVERLAP, PAIRED, REG_TERMS, SENTINEL,
    SINGLE_GRAD, as_tuple, call, cases, cast, check, check_combined, check_pairwise, check_value, config_id,
    dtype_id, expected, floor_for, make_boxes, make_inputs, pairwise_data, regression_data, relayout, rtol_for,
    sample_weights, with_axis,
)

# --------------------------------------------------------------------------
# The reference against central finite differences (float64)
# --------------------------------------------------------------------------

FD_CASES = {
    "overlap": [((3, 6), -1), ((2, 3, 4), (0, 2)), ((5,), D)],
    "box_iou": [(6,), (2, 3)],
    "cosine_similarity": [((4, 5), D), ((3, 4), 0)],
    "rows": [(4, 5), (3,)],
    "elementwise": [(7,), (2, 3)],
    "gradient_penalty": [(3, 2, 2), (4,)],
    "paired": [((4,), (2, 3))],
}


def _fd_check(value, inputs, diff, grads, what):
    v0 = value(inputs)
    assert np.isfinite(v0), f"{what}: value {v0}"
    for k, gk in zip(diff, grads):
        x = inputs[k]
        for idx in np.ndindex(x.shape):
            h = 1e-6 * max(1.0, abs(x[idx]))
            xp, xm = x.copy(), x.copy()
            xp[idx] += h
            xm[idx] -= h
            vp = value(inputs[:k] + (xp,) + inputs[k + 1 :])
            vm = value(inputs[:k] + (xm,) + inputs[k + 1 :])
            fd = (vp - vm) / (xp[idx] - xm[idx])
            tol = 1e-6 * abs(gk[idx]) + 1e-8 * max(1.0, abs(v0)) + 1e-7 * abs(fd) + 4e-15 * abs(v0) / (2 * h)
            assert abs(fd - gk[idx]) <= tol, f"{what}: d/d{k}{idx}: fd {fd!r} vs reference {gk[idx]!r}"


@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
def test_reference_finite_differences(config):
    """The hand-written gradients of the reference (and its reduce) against
    central differences, weighted and not, away from kinks."""
    name, opts = config
    for i, case in enumerate(FD_CASES[FAMILY[name]]):
        o = with_axis(opts, case) if FAMILY[name] in ("overlap", "cosine_similarity") else dict(opts)
        inputs = make_inputs(name, o, case, 100 + i, fd=True)
        if o.get("kind") == "ciou":
            # the gradient takes ciou's alpha as a constant (torchvision's no_grad)
            o["frozen_alpha"] = ref.ciou_alpha(*inputs, eps=o.get("eps", 1e-7))
        for reduction, weighted in (("sum", False), ("mean", True), ("none", True)):
            w = sample_weights(name, inputs, o, i) if weighted else None

            def value(ins):
                v = ref.reduced(name, *ins, weights=w, reduction=reduction, **o)[0]
                if name in PAIRED and reduction == "none":
                    return float(np.sum(v[0]) + np.sum(v[1]))
                return float(np.sum(v))

            grads = ref.reduced(name, *inputs, weights=w, reduction=reduction, **o)[1]
            _fd_check(value, inputs, DIFF[name], grads, f"{name}{o} {case} {reduction} weighted={weighted}")


@pytest.mark.parametrize("normalization", ["all_pairs", "ordered_pairs"])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_reference_finite_differences_pairwise(reduction, normalization):
    rng = np.random.default_rng(5)
    for n, grouped in [(12, False), (15, True)]:
        rel = rng.integers(0, 3, n).astype(np.float64)
        s = rng.normal(size=n)
        groups = rng.integers(0, 2, n) if grouped else None
        kw = dict(margin=1.0, groups=groups, normalization=normalization, reduction=reduction)
        g = ref.pairwise_ranking_reduced(rel, s, **kw)[1]
        _fd_check(lambda ins: ref.pairwise_ranking_reduced(*ins, **kw)[0], (rel, s), (1,), (g,), f"pairwise {n} {grouped}")


def test_reference_finite_differences_l2_penalty():
    rng = np.random.default_rng(6)
    arrays = (rng.normal(size=(3, 2)), rng.normal(size=4))
    v, grads = ref.l2_penalty(list(arrays), 0.3)
    _fd_check(lambda ins: ref.l2_penalty(list(ins), 0.3)[0], arrays, (0, 1), grads, "l2_penalty")


def test_reference_pairwise_all_active_identity():
    """The O(n log n) counting identity (every ordered pair active) equals the
    O(n^2) enumeration: it is what checks the n = 200000 call below."""
    rng = np.random.default_rng(8)
    for n in (1, 2, 50, 300):
        rel = rng.integers(0, 6, n).astype(np.float64)
        s = rng.uniform(0, 1, n)
        for groups in (None, rng.integers(0, 4, n)):
            v, g, pairs, allp = ref.pairwise_ranking_all_active(rel, s, 3.0, groups)
            v2, g2, _, _ = ref.pairwise_ranking_reduced(rel, s, margin=3.0, groups=groups, reduction="sum")
            assert_close(v, v2, rtol=1e-12, atol=1e-12, what="value")
            assert_close(g, g2, rtol=0, atol=0, what="grad")


# --------------------------------------------------------------------------
# Package API
# --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ALL_NAMES + ["l2_penalty"])
def test_names_exist(name):
    obj = getattr(fl, name)
    assert callable(obj) and callable(obj.grad) and callable(obj.value_and_grad), name


# --------------------------------------------------------------------------
# The grid: every loss x options x reduction x dtype x weights
# --------------------------------------------------------------------------


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
def test_grid(config, dtype, reduction):
    name, opts = config
    for i, case in enumerate(cases(name)):
        o = with_axis(opts, case) if FAMILY[name] in ("overlap", "cosine_similarity") else dict(opts)
        inputs = cast(make_inputs(name, o, case, i), name, dtype)
        check(name, inputs, o, reduction=reduction, what=f"case {case}")
        w = sample_weights(name, inputs, o, i)
        check(name, inputs, o, reduction=reduction, weights=w, what=f"case {case}")
        if i == 0 and name not in PAIRED:
            check(name, inputs, o, reduction=reduction, weights=sample_weights(name, inputs, o, i, "full"), what="full weights")


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
def test_overlap_large_image(dtype):
    """(16, 1, 64, 64) masks, one score per image: long reductions."""
    for name, opts in [("dice", {"from_logits": True}), ("jaccard", {}), ("focal_tversky", {"alpha": 0.7, "beta": 0.3})]:
        o = dict(opts, axis=(1, 2, 3))
        inputs = cast(make_inputs(name, o, ((16, 1, 64, 64), None), 3), name, dtype)
        for reduction in REDUCTIONS:
            check(name, inputs, o, reduction=reduction)
        o = dict(opts)  # one score for everything
        check(name, inputs, o, reduction="mean")


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
def test_other_dtype_inputs_are_converted(dtype):
    """y_true, weights (and the other non-differentiable inputs) of another
    dtype are converted to the prediction's dtype."""
    other = np.float64 if np.dtype(dtype) == np.float32 else np.float32
    for name, opts, case in [
        ("dice", {"axis": -1}, ((4, 9), -1)),
        ("box_iou", {"kind": "ciou"}, (6,)),
        ("cosine_similarity", {}, ((5, 4), D)),
        ("contrastive", {}, (9,)),
        ("contrastive_pairs", {}, (5, 3)),
        ("cosine_embedding", {}, (5, 3)),
        ("margin_ranking", {}, (7,)),
    ]:
        inputs = list(cast(make_inputs(name, opts, case, 9), name, dtype))
        for k in range(len(inputs)):
            if k not in DIFF[name]:
                inputs[k] = inputs[k].astype(other)
        w = sample_weights(name, inputs, opts, 9).astype(other)
        for reduction in REDUCTIONS:
            check(name, tuple(inputs), opts, reduction=reduction, weights=w)
    # integer labels / relevance / y
    y = np.array([1, -1, 1, -1])
    x1, x2 = np.random.default_rng(1).normal(size=(2, 4, 3)).astype(dtype)
    check("cosine_embedding", (x1, x2, y), {}, reduction="sum")
    t = np.array([1, 0, 1, 0, 1])
    d = np.abs(np.random.default_rng(2).normal(size=5)).astype(dtype) + 0.05
    check("contrastive", (t, d), {}, reduction="sum")


# --------------------------------------------------------------------------
# Layouts: strided, transposed, Fortran, reversed inputs; out=
# --------------------------------------------------------------------------


LAYOUTS = ["step2", "last_step3", "transposed", "fortran", "reversed"]
LAYOUT_CASE = {
    "overlap": ((4, 3, 5), (1, 2)),
    "box_iou": (5, 3),
    "cosine_similarity": ((6, 5), D),
    "rows": (7, 6),
    "elementwise": (6, 5),
    "gradient_penalty": (5, 3, 2),
    "paired": ((6, 4), (3, 5)),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
def test_layouts(config, dtype):
    """Every input (and the weights) strided along the first or the last axis,
    transposed, Fortran-ordered or reversed; or only one input strided."""
    name, opts = config
    case = LAYOUT_CASE[FAMILY[name]]
    o = with_axis(opts, case) if FAMILY[name] in ("overlap", "cosine_similarity") else dict(opts)
    inputs = cast(make_inputs(name, o, case, 21), name, dtype)
    w = sample_weights(name, inputs, o, 21)
    for layout in LAYOUTS:
        views = tuple(relayout(a, layout) for a in inputs)
        for a, b in zip(views, inputs):
            np.testing.assert_array_equal(a, b)
        wv = tuple(relayout(x, layout) for x in w) if isinstance(w, tuple) else relayout(w, layout)
        for reduction in REDUCTIONS:
            check(name, views, o, reduction=reduction, what=layout)
        check(name, views, o, reduction="mean", weights=wv, what=layout + " strided weights")
        # only one input strided
        k = DIFF[name][-1]
        mixed = inputs[:k] + (views[k],) + inputs[k + 1 :]
        check(name, mixed, o, reduction="sum", what=layout + " one strided")


def single_case(name):
    return {
        "overlap": ((3, 2, 5), (1, 2)),
        "box_iou": (7,),
        "cosine_similarity": ((4, 6), D),
        "elementwise": (3, 5),
        "gradient_penalty": (4, 3, 2),
    }[FAMILY[name]]


SINGLE_CONFIGS = [c for c in CONFIGS if c[0] in SINGLE_GRAD]


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
@pytest.mark.parametrize("config", SINGLE_CONFIGS, ids=[config_id(c) for c in SINGLE_CONFIGS])
def test_out(config, dtype):
    """out=: a new buffer or a strided view of a bigger one; the gradient lands
    there, nothing else changes, the returned array is out; out may be the
    differentiable input itself (the value is that of the original input)."""
    name, opts = config
    fn = getattr(fl, name)
    case = single_case(name)
    o = with_axis(opts, case) if FAMILY[name] in ("overlap", "cosine_similarity") else dict(opts)
    inputs = cast(make_inputs(name, o, case, 31), name, dtype)
    k = DIFF[name][0]
    x = inputs[k]
    shape = x.shape
    rtol = rtol_for(dtype)
    w = sample_weights(name, inputs, o, 31)
    for reduction in REDUCTIONS:
        ev, (eg,), vm, (gm,) = expected(name, inputs, o, weights=w, reduction=reduction)
        tol = rtol * gm + floor_for(dtype)
        kw = dict(reduction=reduction, weights=w, **o)
        # a fresh C-contiguous buffer
        out = np.full(shape, SENTINEL, dtype)
        assert fn.grad(*inputs, out=out, **kw) is out
        assert_close(out, eg, rtol=0.0, atol=tol, what=f"{name} out= grad {reduction}")
        # a strided, reversed view: nothing outside it is written
        big = np.full((2 * shape[0],) + tuple(2 * s for s in shape[1:]), SENTINEL, dtype)
        sl = (slice(None, None, -2),) + (slice(1, None, 2),) * (len(shape) - 1)
        view = big[sl]
        assert view.shape == shape
        inside = np.zeros(big.shape, bool)
        inside[sl] = True
        v, g = fn.value_and_grad(*inputs, out=view, **kw)
        assert g is view
        check_value(name, v, ev, vm, reduction, dtype, f"{name} value with out=", rtol)
        assert_close(view, eg, rtol=0.0, atol=tol, what=f"{name} out=strided value_and_grad {reduction}")
        assert np.all(big[~inside] == SENTINEL), "written outside out"
        # in place: out is the differentiable input
        buf = x.copy()
        ins = inputs[:k] + (buf,) + inputs[k + 1 :]
        assert fn.grad(*ins, out=buf, **kw) is buf
        assert_close(buf, eg, rtol=0.0, atol=tol, what=f"{name} grad out=input {reduction}")
        buf = x.copy()
        ins = inputs[:k] + (buf,) + inputs[k + 1 :]
        v, g = fn.value_and_grad(*ins, out=buf, **kw)
        assert g is buf
        check_value(name, v, ev, vm, reduction, dtype, f"{name} value with out=input", rtol)
        assert_close(buf, eg, rtol=0.0, atol=tol, what=f"{name} value_and_grad out=input {reduction}")
        # in place on a strided view of the input
        big = np.full((shape[0], 2) + shape[1:], SENTINEL, dtype) if shape else None
        if big is not None:
            xv = big[:, 1]
            xv[...] = x
            ins = inputs[:k] + (xv,) + inputs[k + 1 :]
            v, g = fn.value_and_grad(*ins, out=xv, **kw)
            assert g is xv
            check_value(name, v, ev, vm, reduction, dtype, f"{name} value with out=strided input", rtol)
            assert_close(xv, eg, rtol=0.0, atol=tol, what=f"{name} out=strided input {reduction}")
            assert np.all(big[:, 0] == SENTINEL)


@pytest.mark.parametrize("entry", ["grad", "value_and_grad"])
@pytest.mark.parametrize("name", SINGLE_GRAD)
def test_bad_out(name, entry):
    case = single_case(name)
    o = with_axis({}, case) if FAMILY[name] in ("overlap", "cosine_similarity") else {}
    inputs = make_inputs(name, o, case, 32)
    shape = inputs[DIFF[name][0]].shape
    for bad in (np.zeros(shape, np.float32), np.zeros(shape + (1,)), np.zeros((shape[0] + 1,) + shape[1:]), np.zeros(shape)[::-1].copy().view(np.int64)):
        with pytest.raises(ValueError, match="out"):
            call(name, entry, *inputs, out=bad, **o)
    ro = np.zeros(shape)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="out"):
        call(name, entry, *inputs, out=ro, **o)


@pytest.mark.parametrize("entry", ["grad", "value_and_grad"])
@pytest.mark.parametrize("name", MULTI_GRAD)
def test_multi_gradient_losses_take_no_out(name, entry):
    case = cases(name)[0]
    inputs = make_inputs(name, {}, case, 33)
    with pytest.raises((TypeError, ValueError)):
        call(name, entry, *inputs, out=np.zeros_like(inputs[DIFF[name][0]]))


def test_inputs_not_modified():
    for name, opts in CONFIGS:
        case = cases(name)[0]
        o = with_axis(opts, case) if FAMILY[name] in ("overlap", "cosine_similarity") else dict(opts)
        inputs = make_inputs(name, o, case, 34)
        w = sample_weights(name, inputs, o, 34)
        saved = [a.copy() for a in inputs]
        for reduction in REDUCTIONS:
            call(name, "value_and_grad", *inputs, reduction=reduction, weights=w, **o)
            call(name, "grad", *inputs, reduction=reduction, weights=w, **o)
        for a, b in zip(inputs, saved):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", ALL_NAMES)
def test_keyword_arguments(name):
    """The inputs can be passed by the names of the spec's signatures."""
    if name == "pairwise_ranking":
        inputs, o = (np.array([2.0, 1.0, 0.0]), np.array([0.1, 0.5, 0.2])), {}
    else:
        inputs, o = base_inputs(name)
    kw = dict(zip(ARGS[name], inputs))
    fn = getattr(fl, name)
    np.testing.assert_array_equal(np.asarray(fn(**kw, **o)), np.asarray(fn(*inputs, **o)))
    for a, b in zip(as_tuple(name, fn.grad(**kw, **o)), as_tuple(name, fn.grad(*inputs, **o))):
        np.testing.assert_array_equal(a, b)


def test_lists_are_converted():
    y = [[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]]
    p = np.array([[0.9, 0.2, 0.7], [0.1, 0.6, 0.8]])
    assert fl.dice(y, p) == fl.dice(np.array(y), p)
    b = [[0.0, 0.0, 2.0, 2.0]]
    bp = np.array([[0.5, 0.5, 2.5, 2.5]])
    assert fl.box_iou(b, bp) == fl.box_iou(np.array(b), bp)


# --------------------------------------------------------------------------
# Empty inputs and NaN
# --------------------------------------------------------------------------

EMPTY = {
    "overlap": [((0, 5), {"axis": -1}), ((0,), {"axis": ()}), ((3, 0), {"axis": 0})],
    "box_iou": [((0, 4), {}), ((2, 0, 4), {})],
    "cosine_similarity": [((0, 5), {}), ((5, 0), {"axis": 0})],
    "rows": [((0, 4), {}), ((0, 1), {})],
    "elementwise": [((0,), {}), ((2, 0), {})],
    "gradient_penalty": [((0,), {}), ((0, 3), {})],
}


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
@pytest.mark.parametrize("name", [n for n in ALL_NAMES if n not in PAIRED + ["pairwise_ranking"]])
def test_empty(name, dtype):
    """Zero samples: sum 0, mean NaN with a zero gradient, none an empty array."""
    for shape, o in EMPTY[FAMILY[name]]:
        R = shape[:-1] if FAMILY[name] == "rows" else shape
        inputs = []
        for k, arg in enumerate(ARGS[name]):
            if arg == "y" or (name == "contrastive_pairs" and arg == "y_true"):
                inputs.append(np.ones(R, dtype))
            else:
                inputs.append(np.full(shape, 0.5, dtype))
        inputs = tuple(inputs)
        L = ref.result(name, *[a.astype(np.float64) for a in inputs], **o).l.shape
        s = call(name, "value", *inputs, reduction="sum", **o)
        assert type(s) is np.dtype(dtype).type and s == 0, (name, shape, s)
        m = call(name, "value", *inputs, reduction="mean", **o)
        assert type(m) is np.dtype(dtype).type and np.isnan(m), (name, shape, m)
        n = call(name, "value", *inputs, reduction="none", **o)
        assert isinstance(n, np.ndarray) and n.shape == L and n.dtype == dtype
        for reduction in REDUCTIONS:
            g = call(name, "grad", *inputs, reduction=reduction, **o)
            for k, gk in zip(DIFF[name], as_tuple(name, g)):
                assert gk.shape == inputs[k].shape and gk.dtype == dtype
            v, g = call(name, "value_and_grad", *inputs, reduction=reduction, **o)
            for k, gk in zip(DIFF[name], as_tuple(name, g)):
                assert gk.shape == inputs[k].shape and gk.dtype == dtype
                assert not np.any(gk), "nonzero gradient of an empty input"


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
def test_empty_reduced_region(dtype):
    """Overlap losses with an empty reduced region: l = 0 with smooth > 0, NaN
    with smooth = 0 (all sums 0)."""
    y = np.zeros((3, 0), dtype)
    p = np.zeros((3, 0), dtype)
    for name in OVERLAP:
        per = getattr(fl, name)(y, p, axis=-1, reduction="none")
        assert per.shape == (3,) and np.all(per == 0), (name, per)
        per = getattr(fl, name)(y, p, axis=-1, reduction="none", smooth=0.0)
        assert per.shape == (3,) and np.all(np.isnan(per)), (name, per)
        assert getattr(fl, name).grad(y, p, axis=-1).shape == (3, 0)
    # all-zero masks and predictions with smooth = 0: NaN; with smooth > 0: 0
    z = np.zeros((2, 4), dtype)
    for name in OVERLAP:
        assert np.all(np.isnan(getattr(fl, name)(z, z, axis=-1, smooth=0.0, reduction="none"))), name
        assert np.all(getattr(fl, name)(z, z, axis=-1, reduction="none") == 0), name


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
def test_nan_propagates(config, dtype):
    """A NaN in any input: that sample's loss and the reduced value are NaN,
    the other samples' losses and gradients are untouched (as the reference).
    The gradient inside a sample whose loss is NaN is not specified (NaN, 0 or
    finite: torch's autograd gives 0 through a hinge at NaN, a constant for
    the Wasserstein losses) and is not checked."""
    name, opts = config
    case = cases(name)[0]
    o = with_axis(opts, case) if FAMILY[name] in ("overlap", "cosine_similarity") else dict(opts)
    base = cast(make_inputs(name, o, case, 41), name, dtype)
    rtol = rtol_for(dtype)
    floor = floor_for(dtype)
    for k in range(len(base)):
        if name == "cosine_embedding" and ARGS[name][k] == "y":
            continue  # y must be +-1 (NaN is a ValueError)
        if name in ("contrastive", "contrastive_pairs") and ARGS[name][k] == "y_true":
            continue  # range-checked
        inputs = [a.copy() for a in base]
        flat = inputs[k].reshape(-1)
        if flat.size == 0:
            continue
        flat[min(3, flat.size - 1)] = np.nan
        inputs[k] = flat.reshape(base[k].shape)
        inputs = tuple(inputs)
        what = f"{name}{o} {dtype.__name__} NaN in {ARGS[name][k]}"
        # the samples whose loss is NaN, as input-shaped masks
        ins64 = tuple(np.asarray(a).astype(np.float64) for a in inputs)
        if name in PAIRED:
            nan_l = [np.isnan(a) for a in ins64]
            masks = nan_l
        else:
            res = ref.result(name, *ins64, **o)
            nan_l = np.isnan(res.l)
            masks = [np.broadcast_to(np.expand_dims(nan_l, res.axes) if res.axes else nan_l, g.shape) for g in res.grads]
        assert np.any(nan_l if name not in PAIRED else nan_l[k]), "no NaN sample"
        for reduction in REDUCTIONS:
            ev, eg, vm, gm = expected(name, inputs, o, reduction=reduction)
            v, g = call(name, "value_and_grad", *inputs, reduction=reduction, **o)
            v1 = call(name, "value", *inputs, reduction=reduction, **o)
            g1 = call(name, "grad", *inputs, reduction=reduction, **o)
            for vv in (v, v1):
                if reduction != "none":
                    assert np.isnan(vv), f"{what}: {reduction} value {vv}"
                check_value(name, vv, ev, vm, reduction, dtype, what, rtol)
            for gg in (g, g1):
                for gk, ek, mk, mask in zip(as_tuple(name, gg), eg, gm, masks):
                    assert gk.shape == ek.shape
                    keep = ~mask
                    assert_close(gk[keep], ek[keep], rtol=0.0, atol=rtol * mk[keep] + floor, what=f"{what} {reduction} grad outside the NaN samples")


# --------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------


def base_inputs(name, opts=None):
    o = dict(opts or {})
    case = cases(name)[0]
    if FAMILY[name] in ("overlap", "cosine_similarity"):
        o = with_axis(o, case)
    return make_inputs(name, o, case, 50), o


@pytest.mark.parametrize("entry", ENTRY)
@pytest.mark.parametrize("name", [n for n in ALL_NAMES if n not in PAIRED and len(ARGS[n]) > 1 and n != "pairwise_ranking"])
def test_shape_mismatch_names_the_argument(name, entry):
    """Inputs of the same role must have exactly the same shape: ValueError
    naming the argument whose shape differs."""
    inputs, o = base_inputs(name)
    for k in range(1, len(inputs)):
        a = inputs[k]
        for bad in (np.concatenate([a, a], axis=0) if a.ndim else np.zeros(2), a[..., None] if a.ndim else np.zeros((1,))):
            ins = inputs[:k] + (bad,) + inputs[k + 1 :]
            with pytest.raises(ValueError, match=ARGS[name][k]):
                call(name, entry, *ins, **o)
    # the first argument too (the differentiable ones must agree)
    if len(DIFF[name]) > 1 or DIFF[name][0] != 0:
        a = inputs[0]
        bad = np.concatenate([a, a], axis=0)
        with pytest.raises(ValueError, match="|".join(ARGS[name])):
            call(name, entry, bad, *inputs[1:], **o)


@pytest.mark.parametrize("entry", ENTRY)
def test_box_last_dim_must_be_4(entry):
    gt, pr = make_boxes((5,), np.random.default_rng(1))
    for bad in (pr[:, :3], np.concatenate([pr, pr[:, :1]], -1), pr.reshape(-1), np.zeros((5, 2, 2))):
        with pytest.raises(ValueError, match="boxes_pred"):
            call("box_iou", entry, np.zeros(bad.shape), bad)
    with pytest.raises(ValueError, match="boxes_true|boxes_pred"):
        call("box_iou", entry, gt[:, :3], pr)
    with pytest.raises(ValueError, match="boxes"):
        call("box_iou", entry, np.zeros(()), np.zeros(()))


@pytest.mark.parametrize("entry", ENTRY)
def test_row_labels_shape(entry):
    rng = np.random.default_rng(2)
    x1, x2 = rng.normal(size=(2, 4, 3))
    for bad in (np.ones(3), np.ones((4, 3)), np.ones((4, 1)), np.ones(5)):
        with pytest.raises(ValueError, match=r"\by\b"):
            call("cosine_embedding", entry, x1, x2, bad)
        with pytest.raises(ValueError, match="y_true"):
            call("contrastive_pairs", entry, np.clip(bad, 0, 1), x1, x2)


BAD_OPTIONS = [
    ("dice", {"smooth": -1e-3}, "smooth"),
    ("jaccard", {"smooth": -1.0}, "smooth"),
    ("dice", {"smooth": float("nan")}, "smooth"),
    ("dice", {"smooth": float("inf")}, "smooth"),
    ("tversky", {"alpha": -0.1}, "alpha"),
    ("tversky", {"beta": -0.1}, "beta"),
    ("tversky", {"alpha": float("nan")}, "alpha"),
    ("focal_tversky", {"gamma": 0.0}, "gamma"),
    ("focal_tversky", {"gamma": -1.0}, "gamma"),
    ("focal_tversky", {"gamma": float("inf")}, "gamma"),
    ("focal_tversky", {"beta": float("inf")}, "beta"),
    ("dice", {"axis": 5}, "axis"),
    ("dice", {"axis": -6}, "axis"),
    ("dice", {"axis": (0, 0)}, "axis"),
    ("dice", {"axis": (1, -2)}, "axis"),
    ("focal_tversky", {"axis": (0, 9)}, "axis"),
    ("box_iou", {"kind": "miou"}, "kind"),
    ("box_iou", {"kind": "IOU"}, "kind"),
    ("box_iou", {"kind": ""}, "kind"),
    ("box_iou", {"eps": -1e-9}, "eps"),
    ("cosine_similarity", {"axis": 2}, "axis"),
    ("cosine_similarity", {"axis": -3}, "axis"),
    ("cosine_embedding", {"margin": 1.5}, "margin"),
    ("cosine_embedding", {"margin": -1.01}, "margin"),
    ("triplet_margin", {"margin": -0.1}, "margin"),
    ("triplet_margin", {"p": 0.0}, r"\bp\b"),
    ("triplet_margin", {"p": -1.0}, r"\bp\b"),
    ("triplet_margin", {"eps": -1e-6}, "eps"),
    ("triplet_margin", {"squared": True, "p": 1.0}, r"\bp\b|squared"),
    ("contrastive", {"margin": -1.0}, "margin"),
    ("contrastive_pairs", {"margin": -1.0}, "margin"),
    ("contrastive_pairs", {"eps": -1.0}, "eps"),
    ("margin_ranking", {"margin": -0.5}, "margin"),
]


@pytest.mark.parametrize("bad", BAD_OPTIONS, ids=lambda b: f"{b[0]}-{b[1]}")
def test_bad_option_values(bad):
    name, opts, word = bad
    inputs, o = base_inputs(name)
    o.update(opts)
    if "axis" in opts and FAMILY[name] == "overlap":
        inputs = make_inputs(name, o, ((3, 4, 2), None), 51)
    for entry in ENTRY:
        with pytest.raises(ValueError, match=word):
            call(name, entry, *inputs, **o)


def test_boundary_option_values_accepted():
    """The edges of the allowed ranges are fine."""
    inputs, _ = base_inputs("dice")
    fl.dice(*inputs, smooth=0.0)
    fl.tversky(*inputs, alpha=0.0, beta=0.0, smooth=1.0)
    fl.focal_tversky(*inputs, gamma=1e-3)
    for kind in ("iou", "giou", "diou", "ciou"):
        fl.box_iou(*base_inputs("box_iou")[0], kind=kind, eps=0.0)
    for m in (-1.0, 1.0, 0.0):
        fl.cosine_embedding(*base_inputs("cosine_embedding")[0], margin=m)
    fl.triplet_margin(*base_inputs("triplet_margin")[0], margin=0.0, eps=0.0, p=0.5)
    fl.contrastive(*base_inputs("contrastive")[0], margin=0.0)
    fl.margin_ranking(*base_inputs("margin_ranking")[0], margin=0.0)
    fl.pairwise_ranking(np.array([1.0, 0.0]), np.array([0.3, 0.1]), margin=0.0)


@pytest.mark.parametrize("entry", ENTRY)
@pytest.mark.parametrize("name", ALL_NAMES)
def test_bad_reduction(name, entry):
    inputs, o = base_inputs(name) if name != "pairwise_ranking" else ((np.array([1.0, 0.0]), np.array([0.2, 0.1])), {})
    with pytest.raises(ValueError, match="reduction"):
        call(name, entry, *inputs, reduction="avg", **o)


@pytest.mark.parametrize("entry", ENTRY)
@pytest.mark.parametrize("name", ALL_NAMES)
def test_unknown_option(name, entry):
    inputs, o = base_inputs(name) if name != "pairwise_ranking" else ((np.array([1.0, 0.0]), np.array([0.2, 0.1])), {})
    with pytest.raises(TypeError, match="bogus"):
        call(name, entry, *inputs, bogus=1.0, **o)


@pytest.mark.parametrize("entry", ENTRY)
@pytest.mark.parametrize("name", [n for n in ALL_NAMES if n != "pairwise_ranking"])
def test_weights_must_broadcast(name, entry):
    inputs, o = base_inputs(name)
    if name in PAIRED:
        for bad in ((np.ones(7), None), (None, np.ones((3, 7)))):
            with pytest.raises(ValueError, match="weights"):
                call(name, entry, *inputs, weights=bad, **o)
        with pytest.raises((TypeError, ValueError), match="weights"):
            call(name, entry, *inputs, weights=np.ones(3), **o)
        return
    L = ref.result(name, *inputs, **o).l.shape
    bad = np.ones(tuple(s + 2 for s in L) if L else (3,))
    with pytest.raises(ValueError, match="weights"):
        call(name, entry, *inputs, weights=bad, **o)


@pytest.mark.parametrize("entry", ENTRY)
def test_cosine_embedding_y_must_be_plus_minus_one(entry):
    rng = np.random.default_rng(3)
    x1, x2 = rng.normal(size=(2, 5, 3))
    for bad in (0.0, 0.5, 2.0, -2.0, np.nan, np.inf):
        y = np.array([1.0, -1.0, 1.0, bad, -1.0])
        with pytest.raises(ValueError, match=r"\by\b"):
            call("cosine_embedding", entry, x1, x2, y)
    with pytest.raises(ValueError, match=r"\by\b"):
        call("cosine_embedding", entry, x1[0], x2[0], np.array(0.0))
    # integer and float32 labels of exactly +-1 are fine
    call("cosine_embedding", entry, x1, x2, np.array([1, -1, 1, 1, -1], np.int8))
    call("cosine_embedding", entry, x1, x2, np.array([1, -1, 1, 1, -1], np.float32))


@pytest.mark.parametrize("entry", ENTRY)
def test_contrastive_y_true_range(entry):
    rng = np.random.default_rng(4)
    d = np.abs(rng.normal(size=6))
    x1, x2 = rng.normal(size=(2, 6, 3))
    for bad in (-0.1, 1.01, 2.0, -np.inf):
        y = np.array([0.0, 1.0, 0.5, bad, 1.0, 0.0])
        with pytest.raises(ValueError, match="y_true"):
            call("contrastive", entry, y, d)
        with pytest.raises(ValueError, match="y_true"):
            call("contrastive_pairs", entry, y, x1, x2)
    call("contrastive", entry, np.array([0.0, 1.0, 0.0, 1.0, 0.5, 0.25]), d)


def test_gradient_penalty_needs_rank_1():
    for entry in ENTRY:
        with pytest.raises(ValueError, match="gradients"):
            call("gradient_penalty", entry, np.array(1.0))


BAD_DTYPES = [np.float16, np.complex64, np.complex128, object]


@pytest.mark.parametrize("name", ALL_NAMES)
def test_bad_dtype_of_differentiable_input(name):
    """The (first) differentiable input, which sets the computation dtype, not
    real (complex, objects; float16 is computed in float32, integers in
    float64): TypeError naming it. (The other differentiable inputs are
    converted to its dtype, like the non-differentiable ones.)"""
    if name == "pairwise_ranking":
        inputs, o = (np.array([2.0, 1.0, 0.0]), np.array([0.1, 0.5, 0.2])), {}
    else:
        inputs, o = base_inputs(name)
    # (float16 is computed in float32, but by l2_penalty: test_half.py)
    bads = [b for b in BAD_DTYPES if b is not np.float16 or name == "l2_penalty"]
    for k in DIFF[name][:1]:
        for bad in bads:
            ins = inputs[:k] + (np.zeros(inputs[k].shape).astype(bad),) + inputs[k + 1 :]
            for entry in ENTRY:
                with pytest.raises(TypeError, match=rf"\b{ARGS[name][k]}\b"):
                    call(name, entry, *ins, **o)


@pytest.mark.parametrize("entry", ENTRY)
@pytest.mark.parametrize("bad", [np.complex128, object], ids=lambda t: np.dtype(t).name)
def test_bad_dtype_of_other_inputs(bad, entry):
    inputs, o = base_inputs("dice")
    with pytest.raises(TypeError, match="y_true"):
        call("dice", entry, inputs[0].astype(bad), inputs[1], **o)
    inputs, o = base_inputs("box_iou")
    with pytest.raises(TypeError, match="boxes_true"):
        call("box_iou", entry, inputs[0].astype(bad), inputs[1], **o)


# --------------------------------------------------------------------------
# Edge cases of the spec
# --------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
def test_cosine_zero_vectors(dtype):
    """Zero vectors (either side, both, and all-zero input): loss exactly 1,
    finite gradient, as the reference."""
    y = np.array([[0.0, 0.0, 0.0], [1.0, 2.0, -1.0], [0.0, 0.0, 0.0], [3.0, 0.0, 1.0]], dtype)
    p = np.array([[1.0, -2.0, 0.5], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [1e-12, 0.0, 0.0]], dtype)
    per = fl.cosine_similarity(y, p, reduction="none")
    np.testing.assert_array_equal(per[:3], np.ones(3, dtype))
    for reduction in REDUCTIONS:
        check("cosine_similarity", (y, p), {}, reduction=reduction)
        g = fl.cosine_similarity.grad(y, p, reduction=reduction)
        assert np.all(np.isfinite(g))
    z = np.zeros((4, 5), dtype)
    v, g = fl.cosine_similarity.value_and_grad(z, z)
    assert v == 1 and np.all(g == 0)
    # cosine_embedding with a zero row: EPS keeps it finite
    x1 = np.array([[0.0, 0.0], [1.0, 2.0]], dtype)
    x2 = np.array([[1.0, 1.0], [0.0, 0.0]], dtype)
    for y in (np.array([1.0, 1.0]), np.array([-1.0, -1.0])):
        check("cosine_embedding", (x1, x2, y), {}, reduction="sum")
        for gk in fl.cosine_embedding.grad(x1, x2, y):
            assert np.all(np.isfinite(gk))


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
def test_cosine_parallel_vectors_stay_in_range(dtype):
    """|cos| <= 1 exactly: loss in [0, 2] for parallel and antiparallel rows
    of any length and scale (rounding would otherwise give 1 + ulp)."""
    rng = np.random.default_rng(60)
    for D in (1, 3, 7, 8, 17, 64, 1000):
        y = rng.normal(size=(40, D)).astype(dtype)
        scale = rng.choice([1.0, 3.0, 1e-3, 7e5, 1 / 3], (40, 1))
        for sign in (1.0, -1.0):
            p = (sign * scale * y).astype(dtype)
            per = fl.cosine_similarity(y, p, reduction="none")
            assert np.all(per >= 0) and np.all(per <= 2), (D, sign, per.min(), per.max())
            per = fl.cosine_similarity(y, y, reduction="none")
            assert np.all(per >= 0), (D, per.min())
            if sign > 0:
                assert np.all(np.abs(per) <= 8 * np.finfo(dtype).eps)


@pytest.mark.parametrize("kind", ["iou", "giou", "diou", "ciou"])
@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
def test_degenerate_boxes(kind, dtype):
    """Zero-width, zero-height, point and inverted boxes (as prediction and as
    truth): finite values and gradients, no NaN; equal to the reference."""
    gt, pr = make_boxes((12,), np.random.default_rng(61))
    pr[4] = [5.0, 5.0, 5.0, 9.0]  # zero width
    pr[5] = [5.0, 5.0, 9.0, 5.0]  # zero height
    pr[6] = [5.0, 5.0, 5.0, 5.0]  # a point
    pr[7] = [9.0, 9.0, 5.0, 5.0]  # inverted
    pr[8] = [9.0, 4.0, 5.0, 8.0]  # inverted in x only
    gt[9] = [3.0, 3.0, 3.0, 3.0]  # a point as the truth
    gt[10] = [2.0, 2.0, 6.0, 2.0]  # zero-height truth
    pr[11] = gt[11] = [1.0, 1.0, 1.0, 1.0]  # identical points
    gt, pr = gt.astype(dtype), pr.astype(dtype)
    per = fl.box_iou(gt, pr, kind=kind, reduction="none")
    g = fl.box_iou.grad(gt, pr, kind=kind, reduction="sum")
    assert np.all(np.isfinite(per)), per
    assert np.all(np.isfinite(g)), g
    for reduction in REDUCTIONS:
        check("box_iou", (gt, pr), {"kind": kind}, reduction=reduction)


@pytest.mark.parametrize("kind", ["iou", "giou", "diou", "ciou"])
@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
def test_identical_boxes(kind, dtype):
    """Identical boxes: every min/max a tie (half the gradient each side);
    loss 1 - A/(A + eps) (~0)."""
    b = np.array([[0.0, 0.0, 4.0, 2.0], [1.5, -3.0, 10.0, 7.25], [-8.0, -8.0, -1.0, -2.0]], dtype)
    per = fl.box_iou(b, b.copy(), kind=kind, reduction="none")
    assert np.all(per >= 0) and np.all(per < 1e-6), per
    for reduction in REDUCTIONS:
        check("box_iou", (b, b.copy()), {"kind": kind}, reduction=reduction)


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
def test_box_ties_and_touching(dtype):
    """Hand-made ties: shared edges (half gradient), boxes touching along an
    edge (no overlap: intersection clamped, no gradient through it)."""
    gt = np.array([[0, 0, 4, 4], [0, 0, 4, 4], [0, 0, 4, 4], [0, 0, 4, 4], [2, 2, 6, 6]], dtype)
    pr = np.array([[0, 1, 3, 4], [4, 0, 8, 4], [1, 4, 3, 6], [0, 0, 4, 8], [2, 1, 6, 7]], dtype)
    for kind in ("iou", "giou", "diou", "ciou"):
        for reduction in REDUCTIONS:
            check("box_iou", (gt, pr), {"kind": kind}, reduction=reduction)
    # iou of touching boxes is 0 and has no gradient
    g = fl.box_iou.grad(gt[1:3], pr[1:3], kind="iou", reduction="sum")
    assert np.all(g == 0), g


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
def test_focal_tversky_perfect_prediction(dtype):
    """1 - TI == 0 exactly (binary mask predicted exactly): loss 0, gradient 0
    (not inf * 0) for gamma < 1, 0 for gamma > 1; gamma == 1 is tversky (its
    gradient, 0**0 = 1)."""
    y = (np.random.default_rng(62).random((3, 20)) < 0.5).astype(dtype)
    for gamma in (0.25, 0.75, 1.0, 2.0):
        v, g = fl.focal_tversky.value_and_grad(y, y.copy(), axis=-1, gamma=gamma, reduction="sum")
        assert v == 0 and np.all(np.isfinite(g)), (gamma, v, g)
        if gamma != 1.0:
            assert np.all(g == 0), (gamma, g)
        check("focal_tversky", (y, y.copy()), {"axis": -1, "gamma": gamma}, reduction="mean")


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
def test_overlap_identities(dtype):
    """tversky(0.5, 0.5) == dice, tversky(1, 1) == jaccard, focal_tversky with
    gamma = 1 == tversky; dice of a perfect binary prediction is ~0."""
    y, p = cast(make_inputs("dice", {}, ((4, 30), -1), 63), "dice", dtype)
    tol = dict(rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-6 if dtype == np.float32 else 1e-14)
    for reduction in REDUCTIONS:
        kw = dict(axis=-1, reduction=reduction, smooth=0.0)  # smooth enters dice and tversky differently
        np.testing.assert_allclose(fl.tversky(y, p, **kw), fl.dice(y, p, **kw), **tol)
        np.testing.assert_allclose(fl.tversky(y, p, alpha=1.0, beta=1.0, **kw), fl.jaccard(y, p, **kw), **tol)
        np.testing.assert_allclose(fl.focal_tversky(y, p, gamma=1.0, alpha=0.3, beta=0.7, **kw), fl.tversky(y, p, alpha=0.3, beta=0.7, **kw), **tol)
        np.testing.assert_allclose(fl.tversky.grad(y, p, **kw), fl.dice.grad(y, p, **kw), **tol)
    m = (y > 0.5).astype(dtype)
    assert abs(fl.dice(m, m)) < 1e-6


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
def test_contrastive_pairs_identical_rows(dtype):
    """x1 == x2: distance eps*sqrt(D), or exactly 0 with eps = 0 (gradient 0
    there): finite values and gradients."""
    x1 = np.array([[1.0, 2.0, 3.0], [0.5, 0.5, 0.5]], dtype)
    x2 = x1.copy()
    for y in (np.array([1.0, 0.0]), np.array([0.0, 1.0])):
        for eps in (0.0, 1e-6):
            v, (g1, g2) = fl.contrastive_pairs.value_and_grad(y, x1, x2, eps=eps)
            assert np.isfinite(v) and np.all(np.isfinite(g1)) and np.all(np.isfinite(g2))
            check("contrastive_pairs", (y, x1, x2), {"eps": eps}, reduction="sum")


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
def test_gradient_penalty_zero_rows(dtype):
    g = np.zeros((3, 4), dtype)
    g[1] = [3.0, 4.0, 0.0, 0.0]
    v, gr = fl.gradient_penalty.value_and_grad(g, reduction="none")
    np.testing.assert_allclose(v, [1.0, 16.0, 1.0], rtol=1e-6)
    assert np.all(gr[0] == 0) and np.all(gr[2] == 0)
    np.testing.assert_allclose(gr[1], [2 * 4 * 3 / 5, 2 * 4 * 4 / 5, 0, 0], rtol=1e-6)


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
def test_margin_ranking_gradients_opposite(dtype):
    x1, x2, y = cast(make_inputs("margin_ranking", {"margin": 0.5}, (50,), 64), "margin_ranking", dtype)
    g1, g2 = fl.margin_ranking.grad(x1, x2, y, margin=0.5, reduction="sum")
    np.testing.assert_array_equal(g2, -g1)


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
def test_gan_extremes(dtype):
    """Saturated logits: finite values and gradients, the right limits."""
    x = np.array([-1e4, -100.0, -40.0, 0.0, 40.0, 100.0, 1e4, np.inf, -np.inf], dtype)
    for sat in (False, True):
        per = fl.gan_generator(x, saturating=sat, reduction="none")
        g = fl.gan_generator.grad(x, saturating=sat, reduction="none")
        assert np.all(~np.isnan(per)) and np.all(np.isfinite(g)), (sat, per, g)
        check("gan_generator", (x[:7],), {"saturating": sat}, reduction="none")
    v, (gr, gf) = fl.gan_discriminator.value_and_grad(x, x, reduction="sum")
    assert not np.isnan(v) and np.all(np.isfinite(gr)) and np.all(np.isfinite(gf))
    check("gan_discriminator", (x[:7], x[:7]), {}, reduction="none")


# --------------------------------------------------------------------------
# gan_discriminator / wasserstein_critic weights, l2_penalty
# --------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
@pytest.mark.parametrize("name", PAIRED)
def test_paired_weights_either_none(name, dtype):
    rng = np.random.default_rng(80)
    real, fake = rng.normal(size=(5, 3)).astype(dtype), rng.normal(size=(4,)).astype(dtype)
    wr, wf = rng.uniform(0.5, 2, (5, 1)), rng.uniform(0.5, 2, 4)
    for w in ((wr, None), (None, wf), (wr, wf), (None, None), (2.0, 0.5)):
        for reduction in REDUCTIONS:
            check(name, (real, fake), {}, reduction=reduction, weights=w)
    # each half is its own mean: R(real) over 15 elements, R(fake) over 4
    v = fl.wasserstein_critic(real, fake)
    assert_close(v, np.mean(fake.astype(np.float64)) - np.mean(real.astype(np.float64)), rtol=rtol_for(dtype), atol=1e-6 if dtype == np.float32 else 1e-14)


@pytest.mark.parametrize("lam", [0.0, 0.01, 2.5])
def test_l2_penalty(lam):
    rng = np.random.default_rng(81)
    arrays = [
        rng.normal(size=(3, 4)).astype(np.float32),
        rng.normal(size=(7,)),
        rng.normal(size=(2, 3, 2)).astype(np.float32)[:, ::2],
        np.asfortranarray(rng.normal(size=(4, 3))),
        np.zeros((0, 3)),
        np.array(1.5),
    ]
    ev, eg = ref.l2_penalty([a.astype(np.float64) for a in arrays], lam)
    # each array's part known to its own dtype's precision
    mag = lam * sum(float(np.sum(a.astype(np.float64) ** 2)) * rtol_for(a.dtype) for a in arrays)
    for arg in (arrays, tuple(arrays)):
        v = fl.l2_penalty(arg, lam)
        assert type(v) is np.float64, type(v)
        assert_close(v, ev, rtol=0.0, atol=mag + 1e-300, what="l2_penalty value")
        g = fl.l2_penalty.grad(arg, lam)
        v2, g2 = fl.l2_penalty.value_and_grad(arg, lam)
        assert isinstance(g, list) and isinstance(g2, list) and len(g) == len(g2) == len(arrays)
        assert_close(v2, v, rtol=1e-15, atol=1e-300, what="fused value")
        for a, gk, gk2, e in zip(arrays, g, g2, eg):
            for x in (gk, gk2):
                assert isinstance(x, np.ndarray) and x.shape == a.shape and x.dtype == a.dtype, (x.shape, x.dtype, a.shape, a.dtype)
                rt = 1e-6 if a.dtype == np.float32 else 1e-15
                assert_close(x, e, rtol=rt, atol=1e-300, what="l2_penalty grad")
    # one array
    a = arrays[1]
    v, g = fl.l2_penalty.value_and_grad(a, lam)
    assert_close(v, lam * np.sum(a * a), rtol=1e-12, atol=1e-300, what="one array")
    assert isinstance(g, list) and len(g) == 1
    assert_close(g[0], 2 * lam * a, rtol=1e-15, atol=1e-300, what="one array grad")


def test_l2_penalty_errors():
    a = np.ones(3)
    for entry in ENTRY:
        with pytest.raises(ValueError, match="lam"):
            call("l2_penalty", entry, [a], -0.1)
        # an integer array is float64, its gradient too
        v, g = fl.l2_penalty.value_and_grad([a, np.ones(3, np.int32)], 0.1)
        assert g[1].dtype == np.float64 and v == pytest.approx(0.1 * 6)
        with pytest.raises(TypeError):
            call("l2_penalty", entry, [a, np.ones(3, np.complex64)], 0.1)
        with pytest.raises(TypeError):
            call("l2_penalty", entry, [a, np.ones(3, np.float16)], 0.1)


# --------------------------------------------------------------------------
# Every SIMD target
# --------------------------------------------------------------------------

TARGETS = fastloss.testing.simd_targets()
TARGET_CONFIGS = [
    ("dice", {"from_logits": True}),
    ("focal_tversky", {"alpha": 0.7, "beta": 0.3}),
    ("box_iou", {"kind": "ciou"}),
    ("box_iou", {"kind": "giou"}),
    ("cosine_similarity", {}),
    ("triplet_margin", {"swap": True}),
    ("triplet_margin", {"p": 3.0}),
    ("contrastive", {}),
    ("gan_generator", {}),
    ("gradient_penalty", {}),
]


@pytest.mark.parametrize("config", TARGET_CONFIGS, ids=[config_id(c) for c in TARGET_CONFIGS])
@pytest.mark.parametrize("target", TARGETS)
def test_loss_on_target(target, config):
    """Every loop-tail length of every vector width (1..40 along the reduced
    axis / rows / elements), and a strided case."""
    name, opts = config
    fam = FAMILY[name]
    with fastloss.testing.force_target(target):
        for dtype in DTYPES:
            for n in range(1, 41):
                if fam == "overlap":
                    case = ((2, n), -1)
                elif fam == "cosine_similarity":
                    case = ((2, n), D)
                elif fam == "rows":
                    case = (3, n)
                elif fam == "gradient_penalty":
                    case = (2, n)
                else:
                    case = (n,)
                o = with_axis(opts, case) if fam in ("overlap", "cosine_similarity") else dict(opts)
                inputs = cast(make_inputs(name, o, case, n), name, dtype)
                check(name, inputs, o, reduction="none" if fam not in ("overlap",) else "sum", what=target)
            case = cases(name)[0]
            o = with_axis(opts, case) if fam in ("overlap", "cosine_similarity") else dict(opts)
            inputs = cast(make_inputs(name, o, case, 0), name, dtype)
            views = tuple(relayout(a, "step2") for a in inputs)
            check(name, views, o, reduction="mean", weights=sample_weights(name, inputs, o, 0), what=target)


@pytest.mark.parametrize("target", TARGETS)
def test_pairwise_and_combined_on_target(target):
    rng = np.random.default_rng(91)
    loss = 0.5 * fl.mse + 0.3 * fl.mae + 0.2 * fl.huber.with_options(delta=2.0)
    with fastloss.testing.force_target(target):
        for dtype in DTYPES:
            for n in (1, 5, 17, 64):
                rel, s, groups = pairwise_data(n, rng, n_groups=2)
                check_pairwise(rel, s.astype(dtype), groups, reduction="sum", what=target)
                y, p = regression_data((n,), dtype, n)
                check_combined(loss, REG_TERMS, y, p, reduction="none", what=target)


# --------------------------------------------------------------------------
# Threads
# --------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def _thread_jobs():
    specs = [
        ("dice", {"from_logits": True, "axis": (1, 2, 3)}, ((16, 1, 64, 64), None), np.float32),
        ("box_iou", {"kind": "ciou"}, (50_000,), np.float64),
        ("cosine_similarity", {}, ((20_000, 32), D), np.float32),
        ("triplet_margin", {"swap": True}, (10_000, 16), np.float64),
        ("contrastive", {}, (300_000,), np.float32),
        ("gan_discriminator", {}, ((100_000,), (80_000,)), np.float32),
        ("gradient_penalty", {}, (5_000, 64), np.float64),
        ("focal_tversky", {}, ((8, 128, 128), None), np.float64),
    ]
    jobs = []
    for i, (name, opts, case, dtype) in enumerate(specs):
        o = dict(opts)
        if FAMILY[name] == "cosine_similarity":
            o = with_axis(o, case)
        inputs = cast(make_inputs(name, o, case, 200 + i), name, dtype)
        w = sample_weights(name, inputs, o, i) if i % 3 == 0 else None
        jobs.append((name, o, inputs, REDUCTIONS[i % 3], w))
    return jobs


def _fingerprint(name, v, g):
    vs = v if isinstance(v, tuple) else (v,)
    return tuple(np.asarray(x).tobytes() for x in vs) + tuple(x.tobytes() for x in as_tuple(name, g))


def _run_job(job, barrier=None, repeat=1):
    name, o, inputs, reduction, w = job
    kw = dict(reduction=reduction, **o)
    if w is not None:
        kw["weights"] = w
    if barrier is not None:
        barrier.wait(timeout=60)
    out = None
    for _ in range(repeat):
        v, g = call(name, "value_and_grad", *inputs, **kw)
        res = _fingerprint(name, v, g) + _fingerprint(name, call(name, "value", *inputs, **kw), call(name, "grad", *inputs, **kw))
        if out is None:
            out = res
        assert res == out, f"{name}: a repeated call gave a different result"
    return out


def test_eight_python_threads_at_once():
    jobs = _thread_jobs()
    sequential = [_run_job(job) for job in jobs]
    barrier = threading.Barrier(len(jobs))
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(jobs)) as ex:
        futures = [ex.submit(_run_job, job, barrier, 2) for job in jobs]
        results = [f.result(timeout=120) for f in futures]
    for job, seq, res in zip(jobs, sequential, results):
        assert seq == res, f"{job[0]} differs when run concurrently"


def test_same_loss_from_eight_threads():
    rng = np.random.default_rng(92)
    data = [cast(make_boxes((50,), rng), "box_iou", np.float32) for _ in range(16)]
    expect = [_fingerprint("box_iou", *fl.box_iou.value_and_grad(*d, kind="diou")) for d in data]

    def work(k):
        for _ in range(20):
            for i in range(k, len(data), 8):
                if _fingerprint("box_iou", *fl.box_iou.value_and_grad(*data[i], kind="diou")) != expect[i]:
                    return i
        return None

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as ex:
        bad = [r for r in ex.map(work, range(8)) if r is not None]
    assert not bad, f"wrong results for inputs {bad}"


def test_bit_identical_across_thread_counts(restore_threads):
    jobs = _thread_jobs()
    for job in jobs:
        results = {}
        for n in (1, 2, 3):
            fl.set_num_threads(n)
            results[n] = _run_job(job)
        assert results[1] == results[2] == results[3], job[0]
    fl.set_num_threads(3)
    for name, o, inputs, reduction, w in jobs[::3]:
        check(name, inputs, o, reduction=reduction, weights=w, what="threaded")


def test_numpy_bool_options_are_bools():
    # np.True_ is named "bool" under NumPy 2 and "bool_" before: both are bools.
    x = np.linspace(-3.0, 3.0, 11)
    assert fl.gan_generator(x, saturating=np.True_) == fl.gan_generator(x, saturating=True)
    assert fl.gan_generator(x, saturating=np.False_) == fl.gan_generator(x, saturating=False)
    with pytest.raises(TypeError, match="saturating must be a bool"):
        fl.gan_generator(x, saturating="yes")
