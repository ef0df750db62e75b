"""The structured losses of issue #4 (notes/STRUCTURED_SPEC.md) against the
NumPy float64 reference of fastloss.reference.structured: segmentation (dice,
jaccard, tversky, focal_tversky), detection (box_iou: iou/giou/diou/ciou),
metric learning (cosine_similarity, cosine_embedding, triplet_margin,
contrastive, contrastive_pairs, margin_ranking), ranking (pairwise_ranking),
adversarial losses and penalties (gan_discriminator, gan_generator,
wasserstein_critic, wasserstein_generator, gradient_penalty, l2_penalty) and
combined losses (fl.Combined).

Every loss x option set x reduction x dtype x weights; value, grad and the
fused value_and_grad; out= (strided, in place); strided, transposed, Fortran
and reversed inputs; empty inputs; NaN propagation; the option, shape and dtype
errors; the edge cases of the spec (zero vectors, degenerate boxes, ties);
pairwise ranking against the O(n^2) enumeration; every SIMD target and
concurrent callers.

The reference itself is checked here against central finite differences
(test_reference_*); tests/python/torch_crosscheck.py (run by hand, needs torch)
checks it against PyTorch's functions and autograd.
"""

import concurrent.futures
import functools
import threading
import zlib

import numpy as np
import pytest

import fastloss as fl
import fastloss.testing
from fastloss.reference import structured as ref
from checks import DTYPES, REDUCTIONS, assert_close, check_value_type

# --------------------------------------------------------------------------
# The losses: argument names, differentiable arguments, out=
# --------------------------------------------------------------------------

ARGS = {
    "dice": ("y_true", "y_pred"),
    "jaccard": ("y_true", "y_pred"),
    "tversky": ("y_true", "y_pred"),
    "focal_tversky": ("y_true", "y_pred"),
    "box_iou": ("boxes_true", "boxes_pred"),
    "cosine_similarity": ("y_true", "y_pred"),
    "cosine_embedding": ("x1", "x2", "y"),
    "triplet_margin": ("anchor", "positive", "negative"),
    "contrastive": ("y_true", "distance"),
    "contrastive_pairs": ("y_true", "x1", "x2"),
    "margin_ranking": ("x1", "x2", "y"),
    "pairwise_ranking": ("relevance", "scores"),
    "gan_discriminator": ("real_logits", "fake_logits"),
    "gan_generator": ("fake_logits",),
    "wasserstein_critic": ("real_scores", "fake_scores"),
    "wasserstein_generator": ("fake_scores",),
    "gradient_penalty": ("gradients",),
}
DIFF = {
    "dice": (1,),
    "jaccard": (1,),
    "tversky": (1,),
    "focal_tversky": (1,),
    "box_iou": (1,),
    "cosine_similarity": (1,),
    "cosine_embedding": (0, 1),
    "triplet_margin": (0, 1, 2),
    "contrastive": (1,),
    "contrastive_pairs": (1, 2),
    "margin_ranking": (0, 1),
    "pairwise_ranking": (1,),
    "gan_discriminator": (0, 1),
    "gan_generator": (0,),
    "wasserstein_critic": (0, 1),
    "wasserstein_generator": (0,),
    "gradient_penalty": (0,),
}
OVERLAP = ["dice", "jaccard", "tversky", "focal_tversky"]
PAIRED = ["gan_discriminator", "wasserstein_critic"]  # two arrays, each reduced on its own
SINGLE_GRAD = [n for n, d in DIFF.items() if len(d) == 1 and n != "pairwise_ranking"]
MULTI_GRAD = [n for n, d in DIFF.items() if len(d) > 1]
ALL_NAMES = list(ARGS)

CONFIGS = [
    ("dice", {}),
    ("dice", {"squared": True}),
    ("dice", {"from_logits": True}),
    ("dice", {"smooth": 1.0, "from_logits": True, "squared": True}),
    ("dice", {"smooth": 0.0}),
    ("jaccard", {}),
    ("jaccard", {"squared": True, "from_logits": True}),
    ("jaccard", {"smooth": 0.5}),
    ("tversky", {}),
    ("tversky", {"alpha": 0.3, "beta": 0.7}),
    ("tversky", {"alpha": 1.0, "beta": 1.0, "from_logits": True}),
    ("tversky", {"alpha": 0.0, "beta": 2.0, "squared": True, "smooth": 1.0}),
    ("focal_tversky", {}),
    ("focal_tversky", {"alpha": 0.7, "beta": 0.3, "gamma": 1.5}),
    ("focal_tversky", {"gamma": 0.5, "from_logits": True}),
    ("focal_tversky", {"gamma": 1.0, "smooth": 1.0, "squared": True}),
    ("box_iou", {}),
    ("box_iou", {"kind": "giou"}),
    ("box_iou", {"kind": "diou"}),
    ("box_iou", {"kind": "ciou"}),
    ("box_iou", {"kind": "ciou", "eps": 1e-3}),
    ("box_iou", {"kind": "giou", "eps": 0.0}),
    ("cosine_similarity", {}),
    ("cosine_similarity", {"eps": 1e-3}),
    ("cosine_embedding", {}),
    ("cosine_embedding", {"margin": 0.3}),
    ("cosine_embedding", {"margin": -0.4}),
    ("triplet_margin", {}),
    ("triplet_margin", {"p": 1.0}),
    ("triplet_margin", {"p": 3.0}),
    ("triplet_margin", {"p": 1.5, "margin": 0.5}),
    ("triplet_margin", {"swap": True}),
    ("triplet_margin", {"swap": True, "p": 1.0, "margin": 2.0}),
    ("triplet_margin", {"margin": 0.2, "eps": 0.0}),
    ("triplet_margin", {"squared": True}),
    ("triplet_margin", {"squared": True, "swap": True, "margin": 2.0}),
    ("contrastive", {}),
    ("contrastive", {"margin": 2.0}),
    ("contrastive", {"margin": 0.5}),
    ("contrastive_pairs", {}),
    ("contrastive_pairs", {"margin": 2.0, "eps": 0.0}),
    ("contrastive_pairs", {"eps": 0.1}),
    ("margin_ranking", {}),
    ("margin_ranking", {"margin": 0.5}),
    ("gan_discriminator", {}),
    ("gan_generator", {}),
    ("gan_generator", {"saturating": True}),
    ("wasserstein_critic", {}),
    ("wasserstein_generator", {}),
    ("gradient_penalty", {}),
    ("gradient_penalty", {"target": 0.0}),
    ("gradient_penalty", {"target": 2.5}),
]


def config_id(config):
    name, opts = config
    if not opts:
        return name
    return name + "-" + "-".join(f"{k}={v}" for k, v in opts.items())


IDS = [config_id(c) for c in CONFIGS]


def dtype_id(dtype):
    return np.dtype(dtype).name


# Shape cases per loss: (shape, axis) for the overlap family and cosine
# similarity (axis "default": not passed), the batch shape for boxes, the input
# shape for the others, (real, fake) shapes for the paired losses. Zero-size
# cases last.
D = "default"
CASES = {
    "overlap": [
        ((4, 1, 6, 5), (1, 2, 3)),
        ((3, 7), D),
        ((3, 7), None),
        ((5, 6), -1),
        ((2, 3, 4), (0, -1)),
        ((6,), ()),
        ((2, 5), 0),
        ((2, 40, 33), (1, 2)),
        ((), D),
        ((3, 0, 4), (1, 2)),
        ((0, 5), -1),
    ],
    "box_iou": [(12,), (2, 3), (), (1,), (0,)],
    "cosine_similarity": [((7, 5), D), ((4, 6, 3), 1), ((9,), 0), ((3, 4), 0), ((3, 70), -1), ((4, 0), -1), ((0, 5), -1)],
    "rows": [(8, 5), (6, 17), (5,), (6, 1), (0, 4)],
    "elementwise": [(30,), (4, 5), (), (1,), (0,)],
    "gradient_penalty": [(5, 3, 4), (6,), (4, 7), (1, 1), (0, 3)],
    "paired": [((6, 3), (4,)), ((5,), (5,)), ((), (2, 2)), ((0,), (3,)), ((0,), (0, 2))],
}
FAMILY = {
    **{n: "overlap" for n in OVERLAP},
    "box_iou": "box_iou",
    "cosine_similarity": "cosine_similarity",
    "cosine_embedding": "rows",
    "triplet_margin": "rows",
    "contrastive_pairs": "rows",
    "contrastive": "elementwise",
    "margin_ranking": "elementwise",
    "gan_generator": "elementwise",
    "wasserstein_generator": "elementwise",
    "gradient_penalty": "gradient_penalty",
    "gan_discriminator": "paired",
    "wasserstein_critic": "paired",
}


def cases(name):
    return CASES[FAMILY[name]]


def with_axis(opts, case):
    """The options of a (shape, axis) case."""
    shape, axis = case
    o = dict(opts)
    if axis != D:
        o["axis"] = axis
    return o


# --------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------


def _rng(name, seed, shape, tag=0):
    return np.random.default_rng([zlib.crc32(name.encode()), seed, tag, len(shape), int(np.prod(shape, dtype=np.int64))])


def _fix_rows(bad, make, rng, arrays):
    """Redraw the rows where bad(arrays) holds (up to 200 times)."""
    for _ in range(200):
        b = bad(*arrays)
        if not np.any(b):
            return arrays
        new = make(rng)
        arrays = tuple(np.where(np.expand_dims(b, tuple(range(b.ndim, a.ndim))) if a.ndim > b.ndim else b, n, a) for a, n in zip(arrays, new))
    raise RuntimeError("could not draw data away from the kinks")


def _pnorm(u, p):
    if p == 2:
        return np.sqrt(np.sum(u * u, -1))
    return np.sum(np.abs(u) ** p, -1) ** (1.0 / p)


def make_boxes(batch, rng, fd=False):
    """(boxes_true, boxes_pred) of batch + (4,): overlapping, disjoint and
    nested boxes. Not fd: coordinates on a 1/8 grid (exact in float32) with
    exact ties of coordinates planted (x1 == x1g, ...), an identical pair, a
    disjoint one and a touching one. fd: continuous, no ties, no near-touching."""
    n = int(np.prod(batch, dtype=np.int64))

    def draw(rng):
        c = rng.uniform(4, 60, (n, 2))
        wh = rng.uniform(1, 16, (n, 2))
        gt = np.concatenate([c - wh / 2, c + wh / 2], -1)
        c2 = c + rng.normal(0, 5, (n, 2))
        wh2 = wh * rng.uniform(0.5, 2.0, (n, 2))
        pr = np.concatenate([c2 - wh2 / 2, c2 + wh2 / 2], -1)
        return gt, pr

    gt, pr = draw(rng)
    if fd:
        def bad(gt, pr):
            lo = np.maximum(pr[:, :2], gt[:, :2])
            hi = np.minimum(pr[:, 2:], gt[:, 2:])
            near = np.any(np.abs(hi - lo) < 1e-2, -1) | np.any(np.abs(pr - gt) < 1e-2, -1)
            near |= np.abs(pr[:, 2] - gt[:, 0]) < 1e-2
            near |= np.abs(pr[:, 0] - gt[:, 2]) < 1e-2
            near |= np.abs(pr[:, 3] - gt[:, 1]) < 1e-2
            near |= np.abs(pr[:, 1] - gt[:, 3]) < 1e-2
            return near

        gt, pr = _fix_rows(bad, draw, rng, (gt, pr))
    else:
        gt, pr = np.round(gt * 8) / 8, np.round(pr * 8) / 8
        for k in range(4):
            m = rng.random(n) < 0.2
            pr[m, k] = gt[m, k]
        if n >= 4:
            pr[0] = gt[0]  # identical
            w = gt[1, 2] - gt[1, 0]
            pr[1] = gt[1] + np.array([w, 0.5, w, 0.5])  # touching: x1 == x2g
            pr[2] = gt[2] + 100.0  # disjoint
            pr[3] = gt[3] + np.array([0.5, 0.5, -0.5, -0.5])  # nested
    return gt.reshape(tuple(batch) + (4,)), pr.reshape(tuple(batch) + (4,))


def make_inputs(name, opts, case, seed, fd=False):
    """float64 inputs of fl.NAME for a shape case, inside the loss's domain and
    away from hinges (fd: also away from every kink, for finite differences)."""
    fam = FAMILY[name]
    if fam == "overlap":
        shape = case[0]
        rng = _rng(name, seed, shape)
        y = (rng.random(shape) < 0.4).astype(np.float64)
        y = np.where(rng.random(shape) < 0.2, rng.random(shape), y)
        if opts.get("from_logits"):
            p = rng.normal(0.0, 2.0, shape)
        else:
            p = rng.uniform(0.02, 0.98, shape)
        return np.asarray(y), np.asarray(p)
    if fam == "box_iou":
        return make_boxes(case, _rng(name, seed, case), fd)
    if fam == "cosine_similarity":
        shape, axis = case
        rng = _rng(name, seed, shape)
        y, p = rng.normal(size=shape), rng.normal(size=shape)
        ax = (-1 if axis == D else axis) % len(shape)
        n = shape[ax]
        if not fd and len(shape) == 2 and shape[1 - ax] >= 4 and n > 0:
            yr, pr = np.moveaxis(y, ax, -1), np.moveaxis(p, ax, -1)
            pr[0] = 2.5 * yr[0]  # parallel
            pr[1] = -0.25 * yr[1]  # antiparallel
            yr[2] = 0.0  # zero y_true row
            pr[3] = 0.0  # zero y_pred row
        return y, p
    if fam == "rows":
        shape = case
        rng = _rng(name, seed, shape)
        R = shape[:-1]
        if name == "cosine_embedding":
            margin = opts.get("margin", 0.0)

            def draw(rng):
                return rng.normal(size=shape), rng.normal(size=shape), rng.choice([-1.0, 1.0], R) if R else np.array(-1.0)

            def bad(x1, x2, y):
                c = np.sum(x1 * x2, -1) / np.sqrt(np.sum(x1 * x1, -1) * np.sum(x2 * x2, -1))
                return (y == -1) & (np.abs(c - margin) < 0.02)

            x1, x2, y = draw(rng)
            if R:
                x1, x2, y = _fix_rows(bad, draw, rng, (x1, x2, y))
            elif bad(x1, x2, y):
                y = np.array(1.0)
            return x1, x2, y
        if name == "triplet_margin":
            p, margin, eps = opts.get("p", 2.0), opts.get("margin", 1.0), opts.get("eps", 1e-6)
            sq, swap = opts.get("squared", False), opts.get("swap", False)

            def dist(a, b):
                return np.sum((a - b) ** 2, -1) if sq else _pnorm(a - b + eps, p)

            def draw(rng):
                a = rng.normal(size=shape)
                return a, a + rng.normal(0, 0.7, shape), a + rng.normal(0, 0.8, shape)

            def bad(a, ps, n):
                dn = np.minimum(dist(a, n), dist(ps, n)) if swap else dist(a, n)
                h = dist(a, ps) - dn + margin
                b = np.abs(h) < 0.02
                if swap:
                    b |= np.abs(dist(a, n) - dist(ps, n)) < 0.02
                if p < 2 and not sq:
                    # |u|^(p-1) is not smooth at u == 0
                    b |= np.any(np.abs(a - ps + eps) < 1e-3, -1) | np.any(np.abs(a - n + eps) < 1e-3, -1)
                    b |= np.any(np.abs(ps - n + eps) < 1e-3, -1)
                return b

            a, ps, n = draw(rng)
            if R:
                a, ps, n = _fix_rows(bad, draw, rng, (a, ps, n))
                if swap and not fd and R[0] >= 3:
                    # an exact tie d(a, n) == d(p, n) (positive == anchor) on an
                    # active hinge: half the gradient to each side of the min
                    ps[1] = a[1]
                    d = rng.normal(size=shape[-1])
                    d *= (0.25 * margin) ** (0.5 if sq else 1.0) / _pnorm(d, 2 if sq else p)
                    n[1] = a[1] + d
            else:
                while bad(a, ps, n):
                    a, ps, n = draw(rng)
            return a, ps, n
        if name == "contrastive_pairs":
            margin, eps = opts.get("margin", 1.0), opts.get("eps", 1e-6)

            def draw(rng):
                x1 = rng.normal(size=shape)
                return (rng.choice([0.0, 1.0, 0.5], R) if R else np.array(0.0)), x1, x1 + rng.normal(0, 0.5 * margin, shape)

            def bad(y, x1, x2):
                return np.abs(margin - _pnorm(x1 - x2 + eps, 2)) < 0.02

            y, x1, x2 = draw(rng)
            if R:
                y, x1, x2 = _fix_rows(bad, draw, rng, (y, x1, x2))
            else:
                while bad(y, x1, x2):
                    y, x1, x2 = draw(rng)
            return y, x1, x2
        raise KeyError(name)
    if fam == "elementwise":
        shape = case
        rng = _rng(name, seed, shape)
        if name == "contrastive":
            margin = opts.get("margin", 1.0)
            y = rng.choice([0.0, 1.0, 0.25], shape)
            d = np.abs(rng.normal(0, margin, shape))
            d = np.where(np.abs(margin - d) < 0.02, d + 0.1, d)
            if not fd and d.size > 3:
                d.flat[2] = 0.0
            return np.asarray(y), np.asarray(d)
        if name == "margin_ranking":
            margin = opts.get("margin", 0.0)
            x1, x2 = rng.normal(size=shape), rng.normal(size=shape)
            y = rng.choice([-1.0, 1.0], shape)
            h = -y * (x1 - x2) + margin
            x1 = np.where(np.abs(h) < 0.02, x1 - 0.1 * y, x1)
            return np.asarray(x1), np.asarray(x2), np.asarray(y)
        x = rng.normal(0.0, 4.0, shape)
        if not fd and x.size > 4:
            x.flat[:4] = [40.0, -40.0, 120.0, -120.0]
        return (np.asarray(x),)
    if fam == "gradient_penalty":
        rng = _rng(name, seed, case)
        g = rng.normal(0.0, 0.5, case)
        if not fd and case[0] > 2:
            g[1] = 0.0
        return (g,)
    if fam == "paired":
        sr, sf = case
        rng = _rng(name, seed, sr + sf)
        return rng.normal(0.0, 3.0, sr), rng.normal(0.0, 3.0, sf)
    raise KeyError(name)


def cast(inputs, name, dtype):
    """Inputs in the call's dtype (everything float here)."""
    return tuple(np.asarray(a).astype(dtype) for a in inputs)


def sample_weights(name, inputs, opts, seed, kind="per_sample"):
    """Weights broadcastable to the losses shape: per sample ((N, 1, ...)) or
    full; a pair for the paired losses."""
    rng = np.random.default_rng([seed, 7])
    if name in PAIRED:
        shapes = [np.shape(a) for a in inputs]
        return tuple(rng.uniform(0.5, 2.0, (s[0],) + (1,) * (len(s) - 1) if s else ()) for s in shapes)
    L = ref.result(name, *inputs, **opts).l.shape
    if kind == "full" or len(L) == 0:
        return rng.uniform(0.5, 2.0, L)
    return rng.uniform(0.5, 2.0, (L[0],) + (1,) * (len(L) - 1))


# --------------------------------------------------------------------------
# Expected values and the checker
# --------------------------------------------------------------------------


def rtol_for(dtype):
    return 2e-5 if np.dtype(dtype) == np.float32 else 1e-10


def floor_for(dtype):
    return 1e-30 if np.dtype(dtype) == np.float32 else 1e-290


def compute_dtype(name, inputs):
    return np.asarray(inputs[DIFF[name][0]]).dtype


def _w64(weights, dtype):
    if weights is None:
        return None
    if isinstance(weights, tuple):
        return tuple(None if w is None else np.asarray(w).astype(dtype).astype(np.float64) for w in weights)
    return np.asarray(weights).astype(dtype).astype(np.float64)


def expected(name, inputs, opts, *, weights=None, reduction="mean", groups=None):
    """Reference (value, grads, value_mag, grad_mags): the inputs rounded to the
    computation dtype (the library converts every input to it), then float64."""
    dtype = compute_dtype(name, inputs)
    ins = tuple(np.asarray(a).astype(dtype).astype(np.float64) for a in inputs)
    o = dict(opts)
    if groups is not None:
        o["groups"] = groups
    return ref.reduced(name, *ins, weights=_w64(weights, dtype), reduction=reduction, **o)


def call(name, entry, *inputs, **kw):
    fn = getattr(fl, name)
    if entry == "value":
        return fn(*inputs, **kw)
    return getattr(fn, entry)(*inputs, **kw)


ENTRY = ["value", "grad", "value_and_grad"]


def as_tuple(name, g):
    """The gradient(s) of a call as a tuple."""
    if len(DIFF[name]) == 1:
        assert isinstance(g, np.ndarray), f"{name}: grad is {type(g)}, expected one ndarray"
        return (g,)
    assert isinstance(g, tuple) and len(g) == len(DIFF[name]), f"{name}: grad is {type(g)}, expected a tuple of {len(DIFF[name])}"
    return g


def check_value(name, v, ev, vm, reduction, dtype, what, rtol):
    floor = floor_for(dtype)
    if name in PAIRED and reduction == "none":
        assert isinstance(v, tuple) and len(v) == 2, f"{what}: reduction='none' returned {type(v)}, expected a pair"
        for k in range(2):
            check_value_type(v[k], "none", np.shape(ev[k]), dtype, what)
            assert_close(v[k], ev[k], rtol=0.0, atol=rtol * vm[k] + floor, what=f"{what} value[{k}]")
        return
    check_value_type(v, reduction, np.shape(ev), dtype, what)
    assert_close(v, ev, rtol=0.0, atol=rtol * np.asarray(vm) + floor, what=what + " value")


def check_grads(name, g, inputs, eg, gm, dtype, what, rtol, contiguous=True):
    gs = as_tuple(name, g)
    floor = floor_for(dtype)
    for k, (gk, ek, mk) in enumerate(zip(gs, eg, gm)):
        argname = ARGS[name][DIFF[name][k]]
        assert isinstance(gk, np.ndarray), f"{what}: grad {argname} is {type(gk)}"
        shape = np.shape(inputs[DIFF[name][k]])
        assert gk.shape == shape, f"{what}: grad {argname} shape {gk.shape} != {shape}"
        assert gk.dtype == dtype, f"{what}: grad {argname} dtype {gk.dtype} != {dtype}"
        if contiguous:
            assert gk.flags.c_contiguous, f"{what}: grad {argname} not C-contiguous"
        assert_close(gk, ek, rtol=0.0, atol=rtol * mk + floor, what=f"{what} grad {argname}")


def check(name, inputs, opts=None, *, reduction="mean", weights=None, what="", rtol=None):
    """value, grad and value_and_grad of a call: types, shapes, the numbers
    against the reference, the fused call against the separate ones."""
    opts = dict(opts or {})
    dtype = compute_dtype(name, inputs)
    if rtol is None:
        rtol = rtol_for(dtype)
    kw = dict(reduction=reduction, **opts)
    if weights is not None:
        kw["weights"] = weights
    shapes = [np.shape(a) for a in inputs]
    what = f"{name}{opts} reduction={reduction} dtype={dtype.name} shapes={shapes} weighted={weights is not None} {what}"
    ev, eg, vm, gm = expected(name, inputs, opts, weights=weights, reduction=reduction)

    v = call(name, "value", *inputs, **kw)
    check_value(name, v, ev, vm, reduction, dtype, what, rtol)
    g = call(name, "grad", *inputs, **kw)
    check_grads(name, g, inputs, eg, gm, dtype, what, rtol)
    vg = call(name, "value_and_grad", *inputs, **kw)
    assert isinstance(vg, tuple) and len(vg) == 2, f"{what}: value_and_grad returned {type(vg)}"
    v2, g2 = vg
    check_value(name, v2, ev, vm, reduction, dtype, what + " value_and_grad", rtol)
    check_grads(name, g2, inputs, eg, gm, dtype, what + " value_and_grad", rtol)
    # fused against separate: a few ulp of the terms
    same = 32 * float(np.finfo(dtype).eps)
    floor = floor_for(dtype)
    if name in PAIRED and reduction == "none":
        for k in range(2):
            assert_close(v2[k], v[k], rtol=0.0, atol=same * vm[k] + floor, what=what + " fused value vs value")
    else:
        assert_close(v2, v, rtol=0.0, atol=same * np.asarray(vm) + floor, what=what + " fused value vs value")
    for a, b, m in zip(as_tuple(name, g2), as_tuple(name, g), gm):
        assert_close(a, b, rtol=0.0, atol=same * m + floor, what=what + " fused grad vs grad")
    return v, g


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


def relayout(a, kind):
    """An array equal to a with another memory layout."""
    a = np.asarray(a)
    if a.ndim == 0:
        return a
    if kind == "step2":
        buf = np.full((2 * a.shape[0],) + a.shape[1:], np.nan, a.dtype)
        buf[::2] = a
        return buf[::2]
    if kind == "last_step3":
        buf = np.full(a.shape[:-1] + (3 * a.shape[-1],), np.nan, a.dtype)
        buf[..., 1::3] = a
        return buf[..., 1::3]
    if kind == "transposed":
        return np.ascontiguousarray(a.T).T
    if kind == "fortran":
        return np.asfortranarray(a)
    if kind == "reversed":
        idx = (slice(None, None, -1),) * a.ndim
        return np.ascontiguousarray(a[idx])[idx]
    raise KeyError(kind)


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


SENTINEL = 12345.5


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


BAD_DTYPES = [np.int8, np.int32, np.int64, np.uint8, np.bool_, np.float16, np.complex64, np.complex128, object]


@pytest.mark.parametrize("name", ALL_NAMES)
def test_bad_dtype_of_differentiable_input(name):
    """The (first) differentiable input, which sets the computation dtype, not
    float32/float64: TypeError naming it. (The other differentiable inputs are
    converted to its dtype, like the non-differentiable ones.)"""
    if name == "pairwise_ranking":
        inputs, o = (np.array([2.0, 1.0, 0.0]), np.array([0.1, 0.5, 0.2])), {}
    else:
        inputs, o = base_inputs(name)
    for k in DIFF[name][:1]:
        for bad in BAD_DTYPES:
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
# pairwise_ranking
# --------------------------------------------------------------------------


def pairwise_data(n, rng, *, int_scores=False, n_groups=0):
    rel = rng.integers(0, 5, n).astype(np.float64)  # many ties
    if int_scores:
        s = rng.integers(-3, 4, n).astype(np.float64)  # pairs exactly at the hinge
    else:
        # on a 1/8 grid: ties in the scores and exact hinges, with every
        # difference exact in float32 (no rounding decides a pair)
        s = np.round(rng.normal(size=n) * 8) / 8
    groups = rng.integers(0, n_groups, n) if n_groups else None
    return rel, s, groups


def check_pairwise(rel, s, groups, *, margin=1.0, normalization="all_pairs", reduction="mean", what=""):
    fn = fl.pairwise_ranking
    dtype = np.asarray(s).dtype
    kw = dict(margin=margin, normalization=normalization, reduction=reduction)
    if groups is not None:
        kw["groups"] = groups
    ev, (eg,), vm, (gm,) = expected("pairwise_ranking", (rel, s), {"margin": margin, "normalization": normalization}, reduction=reduction, groups=groups)
    rtol = rtol_for(dtype)
    what = f"pairwise_ranking n={np.size(s)} {kw.get('margin')} {normalization} {reduction} groups={groups is not None} {dtype.name} {what}"
    v = fn(rel, s, **kw)
    g = fn.grad(rel, s, **kw)
    v2, g2 = fn.value_and_grad(rel, s, **kw)
    check_value_type(v, reduction, (), dtype, what)
    check_value_type(v2, reduction, (), dtype, what)
    floor = floor_for(dtype)
    assert_close(v, ev, rtol=0.0, atol=rtol * vm + floor, what=what + " value")
    assert_close(v2, ev, rtol=0.0, atol=rtol * vm + floor, what=what + " fused value")
    for gg in (g, g2):
        assert isinstance(gg, np.ndarray) and gg.shape == np.shape(s) and gg.dtype == dtype, what
        assert_close(gg, eg, rtol=0.0, atol=rtol * gm + floor, what=what + " grad")
    return v, g


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
@pytest.mark.parametrize("normalization", ["all_pairs", "ordered_pairs"])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_pairwise_ranking_against_all_pairs(reduction, normalization, dtype):
    """Against the O(n^2) enumeration: n from 0 to 300, ties in relevance and
    in scores, pairs exactly at the hinge (integer scores, margin 1), groups."""
    rng = np.random.default_rng(70)
    for n in (0, 1, 2, 3, 7, 16, 33, 100, 300):
        for int_scores in (False, True):
            for n_groups in (0, 1, 4):
                for margin in (1.0, 0.0, 0.5):
                    rel, s, groups = pairwise_data(n, rng, int_scores=int_scores, n_groups=n_groups)
                    check_pairwise(rel, s.astype(dtype), groups, margin=margin, normalization=normalization, reduction=reduction)


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
def test_pairwise_ranking_shapes_and_inputs(dtype):
    """Any shape (treated flat); relevance of another dtype; strided inputs;
    int groups of any integer dtype."""
    rng = np.random.default_rng(71)
    rel, s, groups = pairwise_data(60, rng, n_groups=3)
    s = s.astype(dtype)
    check_pairwise(rel.reshape(6, 10), s.reshape(6, 10), groups.reshape(6, 10), reduction="sum")
    check_pairwise(rel.astype(np.int32), s, groups.astype(np.int16), reduction="mean")
    big_s = np.repeat(s, 2)
    big_r = np.repeat(rel, 3)
    check_pairwise(big_r[::3], big_s[::-2][::-1], groups, reduction="sum", what="strided")
    check_pairwise(rel.reshape(6, 10).T, s.reshape(6, 10).T, groups.reshape(6, 10).T, reduction="mean", what="transposed")
    # the hinge exactly: no loss, no gradient
    v, g = fl.pairwise_ranking.value_and_grad(np.array([1.0, 0.0]), np.array([1.0, 0.0], dtype), reduction="sum")
    assert v == 0 and np.all(g == 0)
    # all relevances tied: no ordered pairs; mean with ordered_pairs is NaN
    v = fl.pairwise_ranking(np.ones(5), s[:5], normalization="ordered_pairs")
    assert np.isnan(v)
    assert fl.pairwise_ranking(np.ones(5), s[:5]) == 0
    # NaN in the scores: NaN out
    sn = s.copy()
    sn[7] = np.nan
    for reduction in ("sum", "mean"):
        assert np.isnan(fl.pairwise_ranking(rel, sn, reduction=reduction)), reduction
        assert np.isnan(fl.pairwise_ranking.value_and_grad(rel, sn, groups=groups, reduction=reduction)[0]), reduction


def test_pairwise_ranking_errors():
    rel, s = np.array([2.0, 1.0, 0.0]), np.array([0.1, 0.5, 0.2])
    for entry in ENTRY:
        with pytest.raises(ValueError):
            call("pairwise_ranking", entry, rel, s, reduction="none")
        with pytest.raises(ValueError, match="relevance|scores"):
            call("pairwise_ranking", entry, rel[:2], s)
        with pytest.raises(ValueError, match="groups"):
            call("pairwise_ranking", entry, rel, s, groups=np.zeros(2, np.int64))
        with pytest.raises(ValueError, match="normalization"):
            call("pairwise_ranking", entry, rel, s, normalization="pairs")
        with pytest.raises(ValueError, match="margin"):
            call("pairwise_ranking", entry, rel, s, margin=-1.0)
        with pytest.raises((TypeError, ValueError)):
            call("pairwise_ranking", entry, rel, s, weights=np.ones(3))
        with pytest.raises(TypeError, match="groups"):
            call("pairwise_ranking", entry, rel, s, groups=np.zeros(3))  # float groups


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
def test_pairwise_ranking_large(dtype):
    """n = 200000 (O(n log n); the O(n^2) reference is out of reach): the
    gradient of the sum is integer-valued and sums to 0 (each active pair
    gives -1 and +1); with every pair active (margin > range of the scores)
    value and gradient equal the counting identity."""
    rng = np.random.default_rng(72)
    n = 200_000
    rel = rng.integers(0, 50, n).astype(np.float64)
    s = rng.uniform(0, 1, n).astype(dtype)
    groups = rng.integers(0, 7, n)
    for gp in (None, groups):
        v, g = fl.pairwise_ranking.value_and_grad(rel, s, margin=0.1, groups=gp, reduction="sum")
        assert np.isfinite(v) and v > 0
        g64 = g.astype(np.float64)
        assert np.all(g64 == np.round(g64)), "gradient of the sum is not integer-valued"
        assert np.sum(g64) == 0
        assert np.sum(np.abs(g64)) > 0
        gm = fl.pairwise_ranking.grad(rel, s, margin=0.1, groups=gp, reduction="mean")
        assert abs(float(np.sum(gm.astype(np.float64)))) <= 1e-6 * float(np.sum(np.abs(gm.astype(np.float64))))
        # every ordered pair active
        ev, eg, pairs, allp = ref.pairwise_ranking_all_active(rel, s.astype(np.float64), 3.0, gp)
        v, g = fl.pairwise_ranking.value_and_grad(rel, s, margin=3.0, groups=gp, reduction="sum")
        mag = 3.0 * pairs + float(np.sum(np.abs(eg)))
        assert_close(v, ev, rtol=0.0, atol=rtol_for(dtype) * mag, what="all-active value")
        np.testing.assert_array_equal(g.astype(np.float64), eg)
        for norm, D in (("all_pairs", allp), ("ordered_pairs", pairs)):
            vm = fl.pairwise_ranking(rel, s, margin=3.0, groups=gp, normalization=norm)
            assert_close(vm, ev / D, rtol=0.0, atol=rtol_for(dtype) * mag / D, what=f"all-active mean {norm}")


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
        with pytest.raises(TypeError):
            call("l2_penalty", entry, [a, np.ones(3, np.int32)], 0.1)
        with pytest.raises(TypeError):
            call("l2_penalty", entry, [a, np.ones(3, np.float16)], 0.1)


# --------------------------------------------------------------------------
# Combined losses
# --------------------------------------------------------------------------


def combined_reference(terms, y, p, weights=None, reduction="mean"):
    dtype = np.asarray(p).dtype
    y64 = np.asarray(y).astype(dtype).astype(np.float64)
    p64 = np.asarray(p).astype(np.float64)
    return ref.combined(terms, y64, p64, weights=_w64(weights, dtype), reduction=reduction)


def check_combined(loss, terms, y, p, *, reduction="mean", weights=None, what=""):
    """loss (an fl.Combined) against the reference sum of terms and against the
    sum of the separate fastloss calls."""
    dtype = np.asarray(p).dtype
    rtol = rtol_for(dtype)
    floor = floor_for(dtype)
    kw = dict(reduction=reduction)
    if weights is not None:
        kw["weights"] = weights
    what = f"{loss!r} {reduction} {dtype.name} weighted={weights is not None} {what}"
    ev, eg, vm, gm = combined_reference(terms, y, p, weights, reduction)
    v = loss(y, p, **kw)
    g = loss.grad(y, p, **kw)
    v2, g2 = loss.value_and_grad(y, p, **kw)
    L = np.shape(ev)
    check_value_type(v, reduction, L, dtype, what)
    check_value_type(v2, reduction, L, dtype, what)
    for x in (g, g2):
        assert isinstance(x, np.ndarray) and x.shape == np.shape(p) and x.dtype == dtype, what
    assert_close(v, ev, rtol=0.0, atol=rtol * np.asarray(vm) + floor, what=what + " value")
    assert_close(v2, ev, rtol=0.0, atol=rtol * np.asarray(vm) + floor, what=what + " fused value")
    assert_close(g, eg, rtol=0.0, atol=rtol * gm + floor, what=what + " grad")
    assert_close(g2, eg, rtol=0.0, atol=rtol * gm + floor, what=what + " fused grad")
    # the sum of the separate calls
    sv, sg = 0.0, 0.0
    for c, name, opts in terms:
        fn = getattr(fl, name)
        sv = sv + c * np.asarray(fn(y, p, **kw, **opts), dtype=np.float64)
        sg = sg + c * fn.grad(y, p, **kw, **opts).astype(np.float64)
    same = 64 * float(np.finfo(dtype).eps)
    assert_close(v, sv, rtol=0.0, atol=same * np.asarray(vm) + floor, what=what + " value vs separate calls")
    assert_close(g, sg, rtol=0.0, atol=same * gm + floor, what=what + " grad vs separate calls")
    # out=
    out = np.full(np.shape(p), SENTINEL, dtype)
    assert loss.grad(y, p, out=out, **kw) is out
    assert_close(out, eg, rtol=0.0, atol=rtol * gm + floor, what=what + " grad out=")
    out[...] = SENTINEL
    v3, g3 = loss.value_and_grad(y, p, out=out, **kw)
    assert g3 is out
    assert_close(out, eg, rtol=0.0, atol=rtol * gm + floor, what=what + " value_and_grad out=")
    return v, g


REG_TERMS = [(0.5, "mse", {}), (0.3, "mae", {}), (0.2, "huber", {"delta": 2.0})]


def regression_data(shape, dtype, seed):
    rng = np.random.default_rng(seed)
    y = rng.normal(0, 2, shape)
    p = y + rng.normal(0, 2, shape)
    return np.asarray(y).astype(dtype), np.asarray(p).astype(dtype)


def test_combined_type_and_repr():
    loss = 0.5 * fl.mse + 0.3 * fl.mae + 0.2 * fl.huber.with_options(delta=2.0)
    assert isinstance(loss, fl.Combined)
    assert repr(loss) == "0.5 * mse + 0.3 * mae + 0.2 * huber(delta=2.0)"
    for m in ("__call__", "grad", "value_and_grad"):
        assert callable(getattr(loss, m))


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_combined_regression(reduction, dtype):
    loss = 0.5 * fl.mse + 0.3 * fl.mae + 0.2 * fl.huber.with_options(delta=2.0)
    for i, shape in enumerate([(50,), (7, 9), (), (1,), (1000,)]):
        y, p = regression_data(shape, dtype, i)
        check_combined(loss, REG_TERMS, y, p, reduction=reduction)
        rng = np.random.default_rng(i)
        for w in (rng.uniform(0.5, 2, shape), rng.uniform(0.5, 2, shape[:1] + (1,) * (len(shape) - 1)) if shape else 2.0):
            check_combined(loss, REG_TERMS, y, p, reduction=reduction, weights=w)
        # strided inputs
        if len(shape) == 2:
            check_combined(loss, REG_TERMS, relayout(y, "transposed"), relayout(p, "step2"), reduction=reduction, what="strided")


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
def test_combined_empty_and_nan(dtype):
    loss = 0.5 * fl.mse + 0.3 * fl.mae + 0.2 * fl.huber.with_options(delta=2.0)
    e = np.zeros(0, dtype)
    assert loss(e, e, reduction="sum") == 0
    assert np.isnan(loss(e, e))
    assert loss.grad(e, e).shape == (0,)
    y, p = regression_data((10,), dtype, 3)
    p[4] = np.nan
    assert np.isnan(loss(y, p))
    per = loss(y, p, reduction="none")
    assert np.isnan(per[4]) and np.all(np.isfinite(np.delete(per, 4)))
    check_combined(loss, REG_TERMS, y, p, reduction="none")


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
def test_combined_arithmetic(dtype):
    """c * loss, loss * c, loss / c, a + b, a - b, -a, nested combinations."""
    y, p = regression_data((6, 5), dtype, 4)
    huber2 = fl.huber.with_options(delta=2.0)
    cases_ = [
        (fl.mse * 2.0, [(2.0, "mse", {})]),
        (2.0 * fl.mse, [(2.0, "mse", {})]),
        (fl.mae / 4.0, [(0.25, "mae", {})]),
        (fl.mse + fl.mae, [(1.0, "mse", {}), (1.0, "mae", {})]),
        (fl.mse - fl.mae, [(1.0, "mse", {}), (-1.0, "mae", {})]),
        (-fl.mse, [(-1.0, "mse", {})]),
        (-(fl.mse + 0.5 * huber2), [(-1.0, "mse", {}), (-0.5, "huber", {"delta": 2.0})]),
        (0.5 * (fl.mse + fl.mae) + fl.log_cosh, [(0.5, "mse", {}), (0.5, "mae", {}), (1.0, "log_cosh", {})]),
        (fl.smooth_l1.with_options(beta=0.5) + fl.quantile.with_options(q=0.9), [(1.0, "smooth_l1", {"beta": 0.5}), (1.0, "quantile", {"q": 0.9})]),
        (3 * fl.mse, [(3.0, "mse", {})]),
    ]
    for loss, terms in cases_:
        assert isinstance(loss, fl.Combined), loss
        for reduction in REDUCTIONS:
            check_combined(loss, terms, y, p, reduction=reduction)


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
def test_with_options_on_a_loss(dtype):
    y, p = regression_data((20,), dtype, 5)
    h = fl.huber.with_options(delta=2.0)
    assert h(y, p) == fl.huber(y, p, delta=2.0)
    np.testing.assert_array_equal(h.grad(y, p, reduction="sum"), fl.huber.grad(y, p, delta=2.0, reduction="sum"))
    with pytest.raises(TypeError):
        fl.huber.with_options(bogus=1.0)
    with pytest.raises(TypeError):
        fl.mse.with_options(delta=1.0)


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
def test_combined_mixed_kinds(dtype):
    """bce + dice (elementwise + whole-array score), classification + overlap
    terms with options, a box term."""
    rng = np.random.default_rng(90)
    y = (rng.random((4, 30)) < 0.4).astype(dtype)
    p = rng.uniform(0.02, 0.98, (4, 30)).astype(dtype)
    loss = 0.5 * fl.bce + 0.5 * fl.dice
    for reduction in ("mean", "sum"):
        check_combined(loss, [(0.5, "binary_cross_entropy", {}), (0.5, "dice", {})], y, p, reduction=reduction)
    # reduction="none" needs the same per-element shape for every term (the
    # gradient alone, of sum(w*l), is defined anyway: not checked)
    with pytest.raises(ValueError):
        loss(y, p, reduction="none")
    with pytest.raises(ValueError):
        loss.value_and_grad(y, p, reduction="none")
    # per-image dice along axis 1 + per-element bce: "none" still mismatched
    x = rng.normal(0, 2, (4, 30)).astype(dtype)
    loss2 = 0.7 * fl.bce.with_options(from_logits=True) + 0.3 * fl.jaccard.with_options(from_logits=True, axis=1, smooth=1.0)
    terms2 = [(0.7, "binary_cross_entropy", {"from_logits": True}), (0.3, "jaccard", {"from_logits": True, "axis": 1, "smooth": 1.0})]
    for reduction in ("mean", "sum"):
        check_combined(loss2, terms2, y, x, reduction=reduction)
    # dice + tversky, both per image: "none" works, weights per image
    loss3 = fl.dice.with_options(axis=1) + 0.5 * fl.focal_tversky.with_options(axis=1, alpha=0.7, beta=0.3)
    terms3 = [(1.0, "dice", {"axis": 1}), (0.5, "focal_tversky", {"axis": 1, "alpha": 0.7, "beta": 0.3})]
    for reduction in REDUCTIONS:
        check_combined(loss3, terms3, y, p, reduction=reduction)
        check_combined(loss3, terms3, y, p, reduction=reduction, weights=rng.uniform(0.5, 2, 4))
    # boxes: iou + giou + l1 on the coordinates (all per box except mae)
    gt, pr = make_boxes((9,), rng)
    gt, pr = gt.astype(dtype), pr.astype(dtype)
    loss4 = fl.box_iou + 0.5 * fl.box_iou.with_options(kind="giou")
    terms4 = [(1.0, "box_iou", {}), (0.5, "box_iou", {"kind": "giou"})]
    for reduction in REDUCTIONS:
        check_combined(loss4, terms4, gt, pr, reduction=reduction)
    loss5 = fl.box_iou.with_options(kind="ciou") + 0.1 * fl.mae
    check_combined(loss5, [(1.0, "box_iou", {"kind": "ciou"}), (0.1, "mae", {})], gt, pr, reduction="mean")
    # cosine similarity + mse, elementwise classification + contrastive
    a = rng.normal(size=(5, 8)).astype(dtype)
    b = rng.normal(size=(5, 8)).astype(dtype)
    check_combined(fl.cosine_similarity + 0.1 * fl.mse, [(1.0, "cosine_similarity", {}), (0.1, "mse", {})], a, b, reduction="sum")
    yy = (rng.random(40) < 0.5).astype(dtype)
    d = np.abs(rng.normal(size=40)).astype(dtype)
    d = np.where(np.abs(1 - d) < 0.02, d + 0.1, d).astype(dtype)
    loss6 = 0.5 * fl.contrastive + 0.5 * fl.hinge + fl.squared_hinge
    terms6 = [(0.5, "contrastive", {}), (0.5, "hinge", {}), (1.0, "squared_hinge", {})]
    for reduction in REDUCTIONS:
        check_combined(loss6, terms6, yy, d, reduction=reduction, weights=rng.uniform(0.5, 2, 40))


def test_combined_errors():
    loss = 0.5 * fl.mse + 0.3 * fl.mae
    y, p = regression_data((5,), np.float64, 6)
    with pytest.raises((TypeError, ValueError)):
        loss(y, p, delta=1.0)  # call-time options are not accepted
    with pytest.raises((TypeError, ValueError)):
        loss.grad(y, p, delta=1.0)
    with pytest.raises(TypeError):
        fl.huber.with_options(bogus=2.0)
    with pytest.raises(TypeError):
        _ = fl.mse + 1.0
    with pytest.raises(TypeError):
        _ = "a" * fl.mse
    with pytest.raises(TypeError):
        _ = fl.mse * fl.mae
    with pytest.raises(ValueError, match="reduction"):
        loss(y, p, reduction="avg")
    with pytest.raises(TypeError, match="y_pred"):
        loss(y, p.astype(np.int32))
    with pytest.raises(ValueError):
        loss(y, p[:4])
    with pytest.raises(ValueError, match="weights"):
        loss(y, p, weights=np.ones(4))
    with pytest.raises(ValueError, match="out"):
        loss.grad(y, p, out=np.zeros(4))


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
