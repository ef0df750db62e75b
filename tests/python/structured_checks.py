"""The structured losses' test tables, data and checkers, shared by
test_structured.py (the family), test_ranking.py (pairwise_ranking, the
ranking driver) and test_combined.py (fl.Combined): each loss's argument
names, differentiable arguments and shape cases, data inside each loss's
domain, the expected values of the NumPy float64 reference of
fastloss.reference.structured, and the checkers of value, gradient and fused
call (single losses, pairwise_ranking, combined losses).
"""

import zlib

import numpy as np

import fastloss as fl
from fastloss.reference import structured as ref
from checks import assert_close, check_value_type

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
    "gaussian_nll": ("input", "target", "var"),
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
    "gaussian_nll": (0, 2),
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
    ("gaussian_nll", {}),
    ("gaussian_nll", {"full": True}),
    ("gaussian_nll", {"eps": 0.05, "full": True}),
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
    "gaussian_nll": "elementwise",
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
        if name == "gaussian_nll":
            x, t = rng.normal(size=shape), rng.normal(size=shape)
            var = rng.uniform(0.2, 3.0, shape)
            if not fd and var.size > 3:
                var.flat[1] = opts.get("eps", 1e-6) / 4  # clamped to eps
                var.flat[2] = 0.0
            return np.asarray(x), np.asarray(t), np.asarray(var)
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
# Layouts and out=
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


SENTINEL = 12345.5  # the fill of out= buffers before a call


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
