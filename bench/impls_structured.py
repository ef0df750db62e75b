"""Structured losses for bench/run.py (``--group structured``): segmentation
(dice family), metric learning (cosine, triplet, embedding, contrastive pairs),
detection (box IoU / GIoU / DIoU / CIoU), ranking (margin, pairwise), GAN losses
and the gradient penalty, and gaussian_nll.

The interface of every group (bench/spec.py):

  make_data(loss, shape, dtype) -> tuple of NumPy arrays, in fastloss's
      positional order (e.g. (anchor, positive, negative)); `shape` is the
      shape of the main differentiable input (boxes: (N, 4); GAN discriminator:
      each of real and fake).
  numpy_baseline(loss, *data) / torch_impl(torch, loss, *data) -> {op: fn};
      fn() returns the value ("value") or (value, gradient or tuple of
      gradients) ("value_and_grad").
  reference(loss, *data) -> (float64 value, tuple of float64 gradients) of
      fastloss.reference

The fastloss call, the check against the reference and the floor's bytes
come from each loss's Spec (spec.fastloss_impl, spec.check,
spec.floor_bytes): a Spec's `diff` names the differentiable inputs. A missing
fastloss function (the C++ side not built yet) raises spec.Missing: run.py
records a note and runs the other libraries.

Options are fixed per benchmark (SPECS[...].kw) and every library computes
the same quantity with them; reduction is "mean" everywhere. JAX is not part of
this group.
"""
from __future__ import annotations

import functools
import math

import numpy as np

from impls import load_reference, reference_mean
from spec import Spec, specs

# ---------------------------------------------------------------- options
SEG_AXIS = (1, 2, 3)
SMOOTH = 1.0                    # the tutorials' smooth (fastloss default is 1e-6)
TV_ALPHA, TV_BETA = 0.3, 0.7    # Tversky: FN weighted more (Salehi et al.)
COS_EPS = 1e-8                  # fastloss / torch cosine_similarity default
EMB_EPS = 1e-12                 # torch cosine_embedding_loss's EPSILON
EMB_MARGIN = 0.0
TRIPLET_MARGIN = 1.0
PD_EPS = 1e-6                   # torch pairwise_distance eps (triplet, contrastive_pairs)
CONTRASTIVE_MARGIN = 1.0
BOX_EPS = 1e-7                  # torchvision's default
MR_MARGIN = 0.0                 # torch margin_ranking_loss default
GNLL_EPS = 1e-6                 # torch gaussian_nll_loss default
PR_MARGIN = 1.0
GP_TARGET = 1.0
PAIRWISE_SMALL = 2000           # NumPy / torch O(n^2) broadcast only up to this n

SEG = (16, 1, 256, 256)
ROWS = (65536, 128)
BOXES = (1_000_000, 4)
BIG = (10_000_000,)
GP = (4096, 3, 32, 32)
PR_BIG, PR_SMALL = (1_000_000,), (PAIRWISE_SMALL,)

Q_SEG, Q_ROWS, Q_BOXES, Q_BIG, Q_GP, Q_PR = (4, 1, 64, 64), (4096, 128), (100_000, 4), (100_000,), \
    (256, 3, 32, 32), (100_000,)

_SEG_D = "y_true binary masks (30% ones), y_pred = sigmoid probabilities, per-sample scores over axes (1,2,3), smooth=1"
_BOX = dict(shapes=(BOXES,), quick=(Q_BOXES,), target="main")

# The fastloss function and options of each name; shapes (full / --quick); `diff`: the indices of the
# differentiable inputs in make_data's tuple; `out`: fastloss takes out= (one gradient);
# target: "main" (>= 5x torch fwd+bwd and >= 10x NumPy v+g, 1 thread), "ranking" (n = 1e6 under 1 s).
SPECS = specs(
    Spec("dice", kw=dict(axis=SEG_AXIS, smooth=SMOOTH), shapes=(SEG,), quick=(Q_SEG,), target="main",
         description=f"fl.dice(y, p, axis=(1,2,3), smooth=1); soft dice written in NumPy / torch; {_SEG_D}"),
    Spec("jaccard", kw=dict(axis=SEG_AXIS, smooth=SMOOTH), shapes=(SEG,), quick=(Q_SEG,),
         description=f"fl.jaccard(y, p, axis=(1,2,3), smooth=1); soft IoU (1 - (I+s)/(Sy+Sp-I+s)); {_SEG_D}"),
    Spec("tversky", kw=dict(axis=SEG_AXIS, smooth=SMOOTH, alpha=TV_ALPHA, beta=TV_BETA), shapes=(SEG,),
         quick=(Q_SEG,),
         description=f"fl.tversky(y, p, axis=(1,2,3), smooth=1, alpha=0.3, beta=0.7) (alpha on FP = sum((1-y)p), "
                     f"beta on FN = sum(y(1-p))); {_SEG_D}"),
    Spec("cosine_similarity", kw=dict(axis=-1, eps=COS_EPS), shapes=(ROWS,), quick=(Q_ROWS,), target="main",
         description="fl.cosine_similarity(y, p) = mean(1 - cos) over rows of 128; torch "
                     "(1 - F.cosine_similarity(p, y, dim=-1)).mean()"),
    Spec("triplet_margin", kw=dict(margin=TRIPLET_MARGIN, p=2.0, eps=PD_EPS), diff=(0, 1, 2), out=False,
         shapes=(ROWS,), quick=(Q_ROWS,), target="main",
         description="fl.triplet_margin(a, p, n, margin=1, p=2, eps=1e-6) -> 3 gradients; torch "
                     "F.triplet_margin_loss; rows of 128 (shape = each of a, p, n)"),
    Spec("cosine_embedding", kw=dict(margin=EMB_MARGIN), diff=(0, 1), out=False, shapes=(ROWS,), quick=(Q_ROWS,),
         description="fl.cosine_embedding(x1, x2, y), y = +-1 per row, margin 0 -> 2 gradients; torch "
                     "F.cosine_embedding_loss"),
    Spec("contrastive_pairs", kw=dict(margin=CONTRASTIVE_MARGIN, eps=PD_EPS), diff=(1, 2), out=False,
         shapes=(ROWS,), quick=(Q_ROWS,),
         description="fl.contrastive_pairs(y, x1, x2, margin=1): d = ||x1 - x2 + 1e-6||, "
                     "y d^2 + (1-y) max(0, 1-d)^2 -> 2 gradients; torch F.pairwise_distance + the formula"),
    Spec("box_iou", kw=dict(kind="iou", eps=BOX_EPS), **_BOX,
         description="fl.box_iou(t, p, kind='iou'), (x1,y1,x2,y2) boxes, 1 - IoU; torchvision-style "
                     "_loss_inter_union written in torch / NumPy (torchvision not installed)"),
    Spec("box_giou", "box_iou", dict(kind="giou", eps=BOX_EPS), **_BOX,
         description="fl.box_iou(t, p, kind='giou'); torchvision generalized_box_iou_loss written in torch / NumPy"),
    Spec("box_diou", "box_iou", dict(kind="diou", eps=BOX_EPS), **_BOX,
         description="fl.box_iou(t, p, kind='diou'); torchvision distance_box_iou_loss written in torch / NumPy"),
    Spec("box_ciou", "box_iou", dict(kind="ciou", eps=BOX_EPS), **_BOX,
         description="fl.box_iou(t, p, kind='ciou'); torchvision complete_box_iou_loss written in torch / NumPy "
                     "(alpha under no_grad)"),
    Spec("margin_ranking", kw=dict(margin=MR_MARGIN), diff=(0, 1), out=False, shapes=(BIG,), quick=(Q_BIG,),
         description="fl.margin_ranking(x1, x2, y), y = +-1, margin 0 -> 2 gradients; torch F.margin_ranking_loss"),
    Spec("gaussian_nll", kw=dict(eps=GNLL_EPS), diff=(0, 2), out=False, shapes=(BIG,), quick=(Q_BIG,),
         description="fl.gaussian_nll(input, target, var) -> gradients for input and var; torch "
                     "F.gaussian_nll_loss"),
    Spec("gan_discriminator", diff=(0, 1), out=False, shapes=(BIG,), quick=(Q_BIG,),
         description="fl.gan_discriminator(real, fake): mean softplus(-real) + mean softplus(fake), "
                     "1e7 logits each -> 2 gradients; torch F.softplus (same as BCE-with-logits vs 1/0 "
                     "labels); NumPy value: -mean(log D(real)) - mean(log(1 - D(fake))), D = sigmoid"),
    Spec("gan_generator", diff=(0,), shapes=(BIG,), quick=(Q_BIG,),
         description="fl.gan_generator(fake) (non-saturating): mean softplus(-fake); torch F.softplus; "
                     "NumPy value -mean(log sigmoid(fake))"),
    Spec("gradient_penalty", kw=dict(target=GP_TARGET), diff=(0,), shapes=(GP,), quick=(Q_GP,),
         description="fl.gradient_penalty(g, target=1): mean over rows of (||g_i|| - 1)^2, rows = samples "
                     "(4096 x 3072); torch ((g.view(N, -1).norm(2, dim=1) - 1) ** 2).mean()"),
    Spec("pairwise_ranking", kw=dict(margin=PR_MARGIN), out=False, shapes=(PR_BIG, PR_SMALL),
         quick=(Q_PR, PR_SMALL), target="ranking",
         description="fl.pairwise_ranking(relevance, scores, margin=1) (O(n log n)), relevance in {0..4}, "
                     "mean over n(n-1)/2 pairs; NumPy and torch: the O(n^2) broadcast, n = 2000 only"),
)
LOSSES = list(SPECS)


# --------------------------------------------------------------------------- data

def make_data(loss: str, shape, dtype, seed: int = 0):
    """Inputs in the loss's domain, every branch exercised (active and inactive hinges,
    overlapping and disjoint boxes), generated in `dtype`."""
    dtype = np.dtype(dtype)
    shape = tuple(int(d) for d in shape)
    rng = np.random.default_rng(seed)

    def normal(shp=shape, scale=1.0):
        x = rng.standard_normal(shp, dtype=dtype)
        if scale != 1.0:
            x *= dtype.type(scale)
        return x

    def c(x):
        return np.ascontiguousarray(x, dtype=dtype)

    if loss in ("dice", "jaccard", "tversky"):
        y = (rng.random(shape, dtype=np.float32) < 0.3).astype(dtype)
        z = normal(scale=2.0)
        z += dtype.type(2.0) * (y - dtype.type(0.5))        # a half-decent segmenter
        p = c(1.0 / (1.0 + np.exp(-z.astype(np.float64))))
        return y, p
    if loss == "cosine_similarity":
        y = normal()
        p = y + normal(scale=1.0)
        return y, c(p)
    if loss == "triplet_margin":
        a = normal()
        pos = a + normal(scale=1.3)                          # d(a, p) ~ 14.7, d(a, n) ~ 16: ~40% active
        neg = normal()
        return a, c(pos), neg
    if loss == "cosine_embedding":
        x1 = normal()
        x2 = x1 + normal(scale=1.5)
        y = c(2 * rng.integers(0, 2, shape[:-1]) - 1)
        return x1, c(x2), y
    if loss == "contrastive_pairs":
        x1 = normal()
        scale = rng.uniform(0.0, 0.15, shape[:-1] + (1,))   # distances spread over [0, ~1.7]: both sides of 1
        x2 = c(x1 + normal() * scale.astype(dtype))
        y = c(rng.integers(0, 2, shape[:-1]))
        return y, x1, x2
    if loss.startswith("box_"):
        n = shape[:-1]
        x1 = rng.uniform(0, 100, n)
        y1 = rng.uniform(0, 100, n)
        w = rng.uniform(1, 50, n)
        h = rng.uniform(1, 50, n)
        t = np.stack([x1, y1, x1 + w, y1 + h], axis=-1)
        # predictions: shifted centres (~30% of the size: some disjoint), scaled sizes
        cx = x1 + w / 2 + rng.normal(0, 0.3, n) * w
        cy = y1 + h / 2 + rng.normal(0, 0.3, n) * h
        pw = w * rng.uniform(0.5, 1.5, n)
        ph = h * rng.uniform(0.5, 1.5, n)
        p = np.stack([cx - pw / 2, cy - ph / 2, cx + pw / 2, cy + ph / 2], axis=-1)
        return c(t), c(p)
    if loss == "margin_ranking":
        x1 = normal()
        x2 = normal()
        y = c(2 * rng.integers(0, 2, shape) - 1)
        return x1, x2, y
    if loss == "gaussian_nll":
        return normal(), normal(), c(rng.uniform(0.1, 3.0, shape))
    if loss == "gan_discriminator":
        real = normal(scale=2.0)
        real += dtype.type(1.0)
        fake = normal(scale=2.0)
        fake -= dtype.type(1.0)
        return real, fake
    if loss == "gan_generator":
        return (normal(scale=2.0),)
    if loss == "gradient_penalty":
        n = shape[0]
        d = int(np.prod(shape[1:]))
        g = normal()
        g *= (rng.uniform(0.5, 1.5, (n,) + (1,) * (len(shape) - 1)) / math.sqrt(d)).astype(dtype)
        return (g,)
    if loss == "pairwise_ranking":
        r = rng.integers(0, 5, shape)
        s = c(0.5 * r + rng.standard_normal(shape))
        return c(r), s
    raise KeyError(loss)


# --------------------------------------------------------------------------- NumPy baseline
# "value": the loss as tutorials write it; "value_and_grad": a straightforward NumPy
# computation of the value and the gradient(s), in the inputs' dtype. Not
# fastloss.reference (float64, written for reading); run.py checks these against
# it, and so does tests/python/test_reference.py.

def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _np_seg_value(loss):
    ax = SEG_AXIS
    s = SMOOTH
    if loss == "dice":
        def f(y, p):
            inter = np.sum(y * p, axis=ax)
            card = np.sum(y, axis=ax) + np.sum(p, axis=ax)
            return np.mean(1 - (2 * inter + s) / (card + s))
    elif loss == "jaccard":
        def f(y, p):
            inter = np.sum(y * p, axis=ax)
            union = np.sum(y, axis=ax) + np.sum(p, axis=ax) - inter
            return np.mean(1 - (inter + s) / (union + s))
    else:
        def f(y, p):
            tp = np.sum(y * p, axis=ax)
            fp = np.sum((1 - y) * p, axis=ax)
            fn = np.sum(y * (1 - p), axis=ax)
            return np.mean(1 - (tp + s) / (tp + TV_ALPHA * fp + TV_BETA * fn + s))
    return f


def _np_seg_vg(loss):
    ax = SEG_AXIS
    s = SMOOTH

    def f(y, p):
        inter = np.sum(y * p, axis=ax, keepdims=True)
        sy = np.sum(y, axis=ax, keepdims=True)
        sp = np.sum(p, axis=ax, keepdims=True)
        if loss == "dice":
            num, den = 2 * inter + s, sy + sp + s
            d_i, d_sp = -2 / den, num / den ** 2
        elif loss == "jaccard":
            num, den = inter + s, sy + sp - inter + s
            d_i, d_sp = -(den + num) / den ** 2, num / den ** 2
        else:
            num = inter + s
            den = inter + TV_ALPHA * (sp - inter) + TV_BETA * (sy - inter) + s
            d_i = -(den - num * (1 - TV_ALPHA - TV_BETA)) / den ** 2
            d_sp = num * TV_ALPHA / den ** 2
        k = inter.size
        v = np.mean(1 - num / den)
        return v, (d_i * y + d_sp) / k
    return f


def _np_cos_value(y, p):
    cos = np.sum(y * p, axis=-1) / (np.maximum(np.linalg.norm(y, axis=-1), COS_EPS)
                                    * np.maximum(np.linalg.norm(p, axis=-1), COS_EPS))
    return np.mean(1 - cos)


def _np_cos_vg(y, p):
    dot = np.sum(y * p, axis=-1, keepdims=True)
    ny = np.maximum(np.sqrt(np.sum(y * y, axis=-1, keepdims=True)), COS_EPS)
    npr = np.sqrt(np.sum(p * p, axis=-1, keepdims=True))
    npc = np.maximum(npr, COS_EPS)
    cos = dot / (ny * npc)
    v = np.mean(1 - np.clip(cos, -1, 1))
    g = -(y / (ny * npc) - np.where(npr >= COS_EPS, cos / npc ** 2, 0) * p) / dot.size
    return v, g


def _np_emb_value(x1, x2, y):
    cos = np.sum(x1 * x2, axis=-1) / np.sqrt((np.sum(x1 * x1, axis=-1) + EMB_EPS)
                                             * (np.sum(x2 * x2, axis=-1) + EMB_EPS))
    return np.mean(np.where(y == 1, 1 - cos, np.maximum(0, cos - EMB_MARGIN)))


def _np_emb_vg(x1, x2, y):
    a = np.sum(x1 * x1, axis=-1, keepdims=True) + EMB_EPS
    b = np.sum(x2 * x2, axis=-1, keepdims=True) + EMB_EPS
    sq = np.sqrt(a * b)
    cos = np.sum(x1 * x2, axis=-1, keepdims=True) / sq
    pos = (y == 1)[..., None]
    v = np.mean(np.where(pos, 1 - cos, np.maximum(0, cos - EMB_MARGIN)))
    coef = np.where(pos, -1, (cos > EMB_MARGIN).astype(x1.dtype)).astype(x1.dtype) / cos.size
    g1 = coef * (x2 / sq - cos * x1 / a)
    g2 = coef * (x1 / sq - cos * x2 / b)
    return v, (g1, g2)


def _np_triplet_value(a, p, n):
    d_ap = np.linalg.norm(a - p + PD_EPS, axis=-1)
    d_an = np.linalg.norm(a - n + PD_EPS, axis=-1)
    return np.mean(np.maximum(0, d_ap - d_an + TRIPLET_MARGIN))


def _np_triplet_vg(a, p, n):
    u = a - p + PD_EPS
    w = a - n + PD_EPS
    d_ap = np.sqrt(np.sum(u * u, axis=-1, keepdims=True))
    d_an = np.sqrt(np.sum(w * w, axis=-1, keepdims=True))
    z = d_ap - d_an + TRIPLET_MARGIN
    v = np.mean(np.maximum(0, z))
    act = (z > 0).astype(a.dtype) / z.size
    gp = -u * (act / d_ap)
    gn = w * (act / d_an)
    return v, (-(gp + gn), gp, gn)


def _np_contrastive_value(y, x1, x2):
    d = np.linalg.norm(x1 - x2 + PD_EPS, axis=-1)
    return np.mean(y * d ** 2 + (1 - y) * np.maximum(0, CONTRASTIVE_MARGIN - d) ** 2)


def _np_contrastive_vg(y, x1, x2):
    u = x1 - x2 + PD_EPS
    d = np.sqrt(np.sum(u * u, axis=-1))
    h = np.maximum(0, CONTRASTIVE_MARGIN - d)
    v = np.mean(y * d * d + (1 - y) * h * h)
    dd = (2 * y * d - 2 * (1 - y) * h) / d.size
    g1 = (dd / d)[..., None] * u
    return v, (g1, -g1)


def _np_box_value(kind):
    def f(t, p):
        x1, y1, x2, y2 = p[..., 0], p[..., 1], p[..., 2], p[..., 3]
        x1g, y1g, x2g, y2g = t[..., 0], t[..., 1], t[..., 2], t[..., 3]
        xk1, yk1 = np.maximum(x1, x1g), np.maximum(y1, y1g)
        xk2, yk2 = np.minimum(x2, x2g), np.minimum(y2, y2g)
        inter = np.where((xk2 > xk1) & (yk2 > yk1), (xk2 - xk1) * (yk2 - yk1), 0)
        union = (x2 - x1) * (y2 - y1) + (x2g - x1g) * (y2g - y1g) - inter
        iou = inter / (union + BOX_EPS)
        if kind == "iou":
            return np.mean(1 - iou)
        xc1, yc1 = np.minimum(x1, x1g), np.minimum(y1, y1g)
        xc2, yc2 = np.maximum(x2, x2g), np.maximum(y2, y2g)
        if kind == "giou":
            area_c = (xc2 - xc1) * (yc2 - yc1)
            return np.mean(1 - iou + (area_c - union) / (area_c + BOX_EPS))
        diag2 = (xc2 - xc1) ** 2 + (yc2 - yc1) ** 2 + BOX_EPS
        rho2 = ((x1 + x2) / 2 - (x1g + x2g) / 2) ** 2 + ((y1 + y2) / 2 - (y1g + y2g) / 2) ** 2
        diou = 1 - iou + rho2 / diag2
        if kind == "diou":
            return np.mean(diou)
        v = (4 / math.pi ** 2) * (np.arctan((x2g - x1g) / (y2g - y1g)) - np.arctan((x2 - x1) / (y2 - y1))) ** 2
        alpha = v / (1 - iou + v + BOX_EPS)
        return np.mean(diou + alpha * v)
    return f


def _np_box_vg(kind):
    def f(t, p):
        dt = p.dtype
        half = dt.type(0.5)

        def dmax(a, b):  # d max(a, b) / da, torch's convention: half at a tie
            return (a > b).astype(dt) + (a == b).astype(dt) * half

        x1, y1, x2, y2 = p[..., 0], p[..., 1], p[..., 2], p[..., 3]
        x1g, y1g, x2g, y2g = t[..., 0], t[..., 1], t[..., 2], t[..., 3]
        xk1, yk1 = np.maximum(x1, x1g), np.maximum(y1, y1g)
        xk2, yk2 = np.minimum(x2, x2g), np.minimum(y2, y2g)
        iw, ih = xk2 - xk1, yk2 - yk1
        ov = ((iw > 0) & (ih > 0)).astype(dt)
        inter = iw * ih * ov
        w, h = x2 - x1, y2 - y1
        wg, hg = x2g - x1g, y2g - y1g
        union = w * h + wg * hg - inter
        ue = union + BOX_EPS
        iou = inter / ue
        # d inter, d union, d iou wrt (x1, y1, x2, y2)
        d_inter = [-ih * dmax(x1, x1g) * ov, -iw * dmax(y1, y1g) * ov,
                   ih * dmax(x2g, x2) * ov, iw * dmax(y2g, y2) * ov]
        d_area = [-h, -w, h, w]
        d_union = [da - di for da, di in zip(d_area, d_inter)]
        grad = [-(di - iou * du) / ue for di, du in zip(d_inter, d_union)]   # of 1 - iou
        loss = 1 - iou
        if kind != "iou":
            xc1, yc1 = np.minimum(x1, x1g), np.minimum(y1, y1g)
            xc2, yc2 = np.maximum(x2, x2g), np.maximum(y2, y2g)
            cw, ch = xc2 - xc1, yc2 - yc1
            # d cw / d x1, d cw / d x2, d ch / d y1, d ch / d y2 (cw does not depend on y, ch on x)
            dcw_x1, dcw_x2 = -dmax(x1g, x1), dmax(x2, x2g)
            dch_y1, dch_y2 = -dmax(y1g, y1), dmax(y2, y2g)
        if kind == "giou":
            area_c = cw * ch
            ce = area_c + BOX_EPS
            loss = loss + (area_c - union) / ce
            t1 = (area_c - union) / ce ** 2
            for k, d_c in enumerate((dcw_x1 * ch, dch_y1 * cw, dcw_x2 * ch, dch_y2 * cw)):
                grad[k] = grad[k] + (d_c - d_union[k]) / ce - t1 * d_c
        elif kind in ("diou", "ciou"):
            diag2 = cw * cw + ch * ch + BOX_EPS
            dx = (x1 + x2) / 2 - (x1g + x2g) / 2
            dy = (y1 + y2) / 2 - (y1g + y2g) / 2
            rho2 = dx * dx + dy * dy
            loss = loss + rho2 / diag2
            t1 = 2 * rho2 / diag2 ** 2
            d_rho2 = (dx, dy, dx, dy)
            d_half = (cw * dcw_x1, ch * dch_y1, cw * dcw_x2, ch * dch_y2)   # d diag2 / 2
            for k in range(4):
                grad[k] = grad[k] + d_rho2[k] / diag2 - t1 * d_half[k]
            if kind == "ciou":
                k4 = 4 / math.pi ** 2
                diff = np.arctan(wg / hg) - np.arctan(w / h)
                v = k4 * diff * diff
                alpha = v / (1 - iou + v + BOX_EPS)          # a constant for the gradient
                loss = loss + alpha * v
                r2 = w * w + h * h
                dv_dw = -2 * k4 * diff * h / r2
                dv_dh = 2 * k4 * diff * w / r2
                for k, dd in enumerate((-dv_dw, -dv_dh, dv_dw, dv_dh)):
                    grad[k] = grad[k] + alpha * dd
        m = loss.size
        return np.mean(loss), np.stack(grad, axis=-1) / m
    return f


def _np_mr_value(x1, x2, y):
    return np.mean(np.maximum(0, -y * (x1 - x2) + MR_MARGIN))


def _np_mr_vg(x1, x2, y):
    z = -y * (x1 - x2) + MR_MARGIN
    g1 = np.where(z > 0, -y, 0) / z.size
    return np.mean(np.maximum(0, z)), (g1, -g1)


def _np_gnll_value(x, t, var):
    v = np.maximum(var, GNLL_EPS)
    return np.mean(0.5 * (np.log(v) + (x - t) ** 2 / v))


def _np_gnll_vg(x, t, var):
    v = np.maximum(var, GNLL_EPS)
    q = (x - t) / v
    n = x.size
    return np.mean(0.5 * (np.log(v) + q * (x - t))), (q / n, 0.5 * (1 / v - q * q) / n)


def _np_gan_d_value(real, fake):
    return -np.mean(np.log(_sigmoid(real))) - np.mean(np.log(1 - _sigmoid(fake)))


def _np_gan_d_vg(real, fake):
    er = np.exp(-real)
    ef = np.exp(fake)
    v = np.mean(np.log1p(er)) + np.mean(np.log1p(ef))
    return v, (-er / (1 + er) / real.size, ef / (1 + ef) / fake.size)


def _np_gan_g_value(fake):
    return -np.mean(np.log(_sigmoid(fake)))


def _np_gan_g_vg(fake):
    e = np.exp(-fake)
    return np.mean(np.log1p(e)), -e / (1 + e) / fake.size


def _np_gp_value(g):
    norms = np.linalg.norm(g.reshape(len(g), -1), axis=1)
    return np.mean((norms - GP_TARGET) ** 2)


def _np_gp_vg(g):
    flat = g.reshape(len(g), -1)
    nrm = np.sqrt(np.sum(flat * flat, axis=1))
    v = np.mean((nrm - GP_TARGET) ** 2)
    coef = np.where(nrm > 0, 2 * (nrm - GP_TARGET) / np.where(nrm > 0, nrm, 1), 0) / len(g)
    return v, (coef[:, None] * flat).reshape(g.shape)


def _np_pr_value(r, s):
    """The O(n^2) broadcast every tutorial writes."""
    r, s = r.ravel(), s.ravel()
    n = s.size
    diff = s[:, None] - s[None, :]
    mask = r[:, None] > r[None, :]
    return np.sum(np.maximum(0, PR_MARGIN - diff)[mask]) / (n * (n - 1) / 2)


def _np_pr_vg(r, s):
    shape = s.shape
    r, s = r.ravel(), s.ravel()
    n = s.size
    npairs = n * (n - 1) / 2
    h = PR_MARGIN - (s[:, None] - s[None, :])
    act = (r[:, None] > r[None, :]) & (h > 0)
    v = np.sum(h, where=act) / npairs
    g = ((act.sum(axis=0) - act.sum(axis=1)) / npairs).astype(s.dtype)
    return v, g.reshape(shape)


_NP = {
    "cosine_similarity": (_np_cos_value, _np_cos_vg),
    "cosine_embedding": (_np_emb_value, _np_emb_vg),
    "triplet_margin": (_np_triplet_value, _np_triplet_vg),
    "contrastive_pairs": (_np_contrastive_value, _np_contrastive_vg),
    "margin_ranking": (_np_mr_value, _np_mr_vg),
    "gaussian_nll": (_np_gnll_value, _np_gnll_vg),
    "gan_discriminator": (_np_gan_d_value, _np_gan_d_vg),
    "gan_generator": (_np_gan_g_value, _np_gan_g_vg),
    "gradient_penalty": (_np_gp_value, _np_gp_vg),
    "pairwise_ranking": (_np_pr_value, _np_pr_vg),
}


def _np_fns(loss):
    if loss in ("dice", "jaccard", "tversky"):
        return _np_seg_value(loss), _np_seg_vg(loss)
    if loss.startswith("box_"):
        kind = SPECS[loss].kw["kind"]
        return _np_box_value(kind), _np_box_vg(kind)
    return _NP[loss]


def numpy_baseline(loss, *data):
    """{op: fn} of the NumPy baseline (the rows impl=numpy)."""
    if loss == "pairwise_ranking" and data[1].size > PAIRWISE_SMALL:
        return {}  # O(n^2): only at n = 2000
    fv, fvg = _np_fns(loss)
    return {"value": functools.partial(fv, *data), "value_and_grad": functools.partial(fvg, *data)}


# --------------------------------------------------------------------------- reference

def _pairwise_reference(r, s):
    """O(n log n) float64 pairwise hinge (value, gradient) per the spec, via per-level
    sorted scores and prefix sums (relevance takes few distinct values): the
    reference's enumeration of pairs (fastloss.reference.structured.
    pairwise_ranking_reduced) is O(n^2), out of reach at n = 1e6;
    tests/python/test_reference.py checks the two agree."""
    shape = s.shape
    r = r.ravel()
    s = s.ravel().astype(np.float64)
    n = s.size
    idx = [np.flatnonzero(r == lv) for lv in np.unique(r)]
    srt = [np.sort(s[i]) for i in idx]
    csum = [np.concatenate([[0.0], np.cumsum(x)]) for x in srt]
    total = 0.0
    g = np.zeros(n)
    for a in range(len(idx)):          # higher relevance level
        si = s[idx[a]]
        for b in range(a):             # every lower level
            sj = srt[b]
            # pair (i, j) active iff m - s_i + s_j > 0 iff s_j > s_i - m (exact in float64)
            k = np.searchsorted(sj, si - PR_MARGIN, side="right")
            cnt = sj.size - k
            total += float(np.sum(cnt * (PR_MARGIN - si) + (csum[b][-1] - csum[b][k])))
            g[idx[a]] -= cnt
            # for each j: the i of level a with s_i < s_j + m
            g[idx[b]] += np.searchsorted(srt[a], s[idx[b]] + PR_MARGIN, side="left")
    npairs = n * (n - 1) / 2
    return total / npairs, (g / npairs).reshape(shape)


def reference(loss, *data):
    """float64 value and tuple of float64 gradients of fastloss.reference, for the
    sanity check (pairwise_ranking: the O(n log n) _pairwise_reference)."""
    spec = SPECS[loss]
    if loss == "pairwise_ranking":
        v, g = _pairwise_reference(*(np.asarray(a, dtype=np.float64) for a in data))
        return float(v), (g,)
    if loss == "gan_discriminator":  # two arrays, each reduced on its own: not sliced
        v, g = load_reference().value_and_grad(spec.fl, *data, **spec.kw)
        return float(v), tuple(g)
    v, g = reference_mean(spec.fl, *data, **spec.kw)
    return float(v), g


# --------------------------------------------------------------------------- PyTorch

def _torch_loss(torch, loss):
    """f(*inputs) in make_data's order -> scalar tensor."""
    F = torch.nn.functional
    if loss in ("dice", "jaccard", "tversky"):
        dims = SEG_AXIS
        s = SMOOTH

        def f(y, p):
            inter = (p * y).sum(dim=dims)
            if loss == "dice":
                card = p.sum(dim=dims) + y.sum(dim=dims)
                return (1 - (2 * inter + s) / (card + s)).mean()
            if loss == "jaccard":
                union = p.sum(dim=dims) + y.sum(dim=dims) - inter
                return (1 - (inter + s) / (union + s)).mean()
            fp = ((1 - y) * p).sum(dim=dims)
            fn = (y * (1 - p)).sum(dim=dims)
            return (1 - (inter + s) / (inter + TV_ALPHA * fp + TV_BETA * fn + s)).mean()
        return f
    if loss == "cosine_similarity":
        return lambda y, p: (1 - F.cosine_similarity(p, y, dim=-1, eps=COS_EPS)).mean()
    if loss == "triplet_margin":
        return lambda a, p, n: F.triplet_margin_loss(a, p, n, margin=TRIPLET_MARGIN, p=2.0, eps=PD_EPS)
    if loss == "cosine_embedding":
        return lambda x1, x2, y: F.cosine_embedding_loss(x1, x2, y, margin=EMB_MARGIN)
    if loss == "contrastive_pairs":
        def f(y, x1, x2):
            d = F.pairwise_distance(x1, x2, p=2.0, eps=PD_EPS)
            return (y * d.pow(2) + (1 - y) * torch.clamp(CONTRASTIVE_MARGIN - d, min=0).pow(2)).mean()
        return f
    if loss.startswith("box_"):
        kind = SPECS[loss].kw["kind"]
        return functools.partial(_torch_box, torch, kind)
    if loss == "margin_ranking":
        return lambda x1, x2, y: F.margin_ranking_loss(x1, x2, y, margin=MR_MARGIN)
    if loss == "gaussian_nll":
        return lambda x, t, var: F.gaussian_nll_loss(x, t, var, eps=GNLL_EPS)
    if loss == "gan_discriminator":
        return lambda real, fake: F.softplus(-real).mean() + F.softplus(fake).mean()
    if loss == "gan_generator":
        return lambda fake: F.softplus(-fake).mean()
    if loss == "gradient_penalty":
        return lambda g: ((g.view(g.size(0), -1).norm(2, dim=1) - GP_TARGET) ** 2).mean()
    if loss == "pairwise_ranking":
        def f(r, s):
            r, s = r.reshape(-1), s.reshape(-1)
            n = s.numel()
            diff = s[:, None] - s[None, :]
            mask = r[:, None] > r[None, :]
            return (torch.clamp(PR_MARGIN - diff, min=0) * mask).sum() / (n * (n - 1) / 2)
        return f
    raise KeyError(loss)


def _torch_box(torch, kind, t, p):
    """torchvision.ops' box losses (giou_loss.py, diou_loss.py, ciou_loss.py, _utils.py),
    reduction="mean", boxes1 = predictions; kind "iou" = 1 - IoU from the same helper."""
    eps = BOX_EPS
    x1, y1, x2, y2 = p.unbind(dim=-1)
    x1g, y1g, x2g, y2g = t.unbind(dim=-1)
    # _loss_inter_union
    xkis1 = torch.max(x1, x1g)
    ykis1 = torch.max(y1, y1g)
    xkis2 = torch.min(x2, x2g)
    ykis2 = torch.min(y2, y2g)
    intsctk = torch.zeros_like(x1)
    mask = (ykis2 > ykis1) & (xkis2 > xkis1)
    intsctk[mask] = (xkis2[mask] - xkis1[mask]) * (ykis2[mask] - ykis1[mask])
    unionk = (x2 - x1) * (y2 - y1) + (x2g - x1g) * (y2g - y1g) - intsctk
    iou = intsctk / (unionk + eps)
    if kind == "iou":
        return (1 - iou).mean()
    xc1 = torch.min(x1, x1g)
    yc1 = torch.min(y1, y1g)
    xc2 = torch.max(x2, x2g)
    yc2 = torch.max(y2, y2g)
    if kind == "giou":
        area_c = (xc2 - xc1) * (yc2 - yc1)
        miouk = iou - ((area_c - unionk) / (area_c + eps))
        return (1 - miouk).mean()
    diagonal_distance_squared = ((xc2 - xc1) ** 2) + ((yc2 - yc1) ** 2) + eps
    x_p = (x2 + x1) / 2
    y_p = (y2 + y1) / 2
    x_g = (x1g + x2g) / 2
    y_g = (y1g + y2g) / 2
    centers_distance_squared = ((x_p - x_g) ** 2) + ((y_p - y_g) ** 2)
    loss = 1 - iou + (centers_distance_squared / diagonal_distance_squared)
    if kind == "diou":
        return loss.mean()
    w_pred = x2 - x1
    h_pred = y2 - y1
    w_gt = x2g - x1g
    h_gt = y2g - y1g
    v = (4 / (torch.pi ** 2)) * torch.pow((torch.atan(w_gt / h_gt) - torch.atan(w_pred / h_pred)), 2)
    with torch.no_grad():
        alpha = v / (1 - iou + v + eps)
    return (loss + alpha * v).mean()


def torch_impl(torch, loss, *data):
    if loss == "pairwise_ranking" and data[1].size > PAIRWISE_SMALL:
        return {}  # O(n^2): only at n = 2000
    f = _torch_loss(torch, loss)
    diff = SPECS[loss].diff
    plain = [torch.from_numpy(a) for a in data]            # shares memory: no copies
    leaves = [torch.from_numpy(a).requires_grad_(True) if i in diff else torch.from_numpy(a)
              for i, a in enumerate(data)]
    grads_of = [leaves[i] for i in diff]

    def fwd():
        with torch.no_grad():
            return f(*plain)

    def fwd_bwd():
        for x in grads_of:
            x.grad = None  # fresh gradients each call, like the other libraries
        out = f(*leaves)
        out.backward()
        gs = tuple(x.grad for x in grads_of)
        return out, (gs if len(gs) > 1 else gs[0])

    return {"value": fwd, "value_and_grad": fwd_bwd}
