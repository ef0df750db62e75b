"""Cross-check of fastloss.reference.structured against PyTorch (float64, CPU).

Run by hand, not by pytest (CI does not install torch; the name has no test_
prefix so pytest does not collect it)::

    python3 tests/python/torch_crosscheck.py        # exit status 0: all agree

For every loss of notes/STRUCTURED_SPEC.md it compares the reference's
per-sample losses and hand-written gradients with PyTorch: the library
functions where PyTorch has one (cosine_similarity, cosine_embedding_loss,
triplet_margin_loss with p = 1, 2, 3 and swap, triplet_margin_with_distance_loss
for the squared variant, margin_ranking_loss, binary_cross_entropy_with_logits
for the GAN losses, pairwise_distance), torchvision's IoU/GIoU/DIoU/CIoU losses
transcribed in torch from torchvision/ops/*_loss.py (torchvision itself is not
needed), and for the rest (dice family, contrastive, gradient penalty, pairwise
ranking) the spec's formula written in torch; gradients always by autograd,
with exact ties of min/max planted to check the half-gradient convention.
Also checks the weighted reductions (mean/sum/none) of ``reduce`` against
torch, and the O(n log n) all-active pairwise ranking identity against the
O(n^2) enumeration.
"""

import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

# The reference needs NumPy only: import it from the source tree (python/fastloss/reference),
# so this runs without a built fastloss.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python", "fastloss"))
from reference import structured as ref  # noqa: E402

torch.set_default_dtype(torch.float64)
FAILS = []
COUNT = [0]


def close(name, got, expect, rtol=1e-9, atol=1e-12):
    COUNT[0] += 1
    got = np.asarray(got, dtype=np.float64)
    expect = np.asarray(expect, dtype=np.float64)
    if got.shape != expect.shape:
        FAILS.append(f"{name}: shape {got.shape} vs {expect.shape}")
        return
    ok = np.allclose(got, expect, rtol=rtol, atol=atol, equal_nan=True)
    if not ok:
        bad = ~np.isclose(got, expect, rtol=rtol, atol=atol, equal_nan=True)
        idx = np.argwhere(np.atleast_1d(bad))[:3]
        gf, ef = np.atleast_1d(got), np.atleast_1d(expect)
        FAILS.append(f"{name}: {int(bad.sum())}/{bad.size} differ, e.g. " + ", ".join(f"{tuple(i)}: ref {gf[tuple(i)]!r} torch {ef[tuple(i)]!r}" for i in idx))


def T(a):
    return torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=True)


def grads_of(loss_sum, tensors):
    gs = torch.autograd.grad(loss_sum, tensors, allow_unused=True)
    return [np.zeros(t.shape) if g is None else g.detach().numpy() for g, t in zip(gs, tensors)]


rng = np.random.default_rng(2024)


# --------------------------------------------------------------------------
# cosine_similarity
# --------------------------------------------------------------------------


def check_cosine_similarity():
    for shape, axis in [((7, 5), -1), ((4, 6, 3), 1), ((9,), 0), ((3, 4), 0), ((5, 130), -1)]:
        y = rng.normal(size=shape)
        p = rng.normal(size=shape)
        if len(shape) == 2 and axis == -1:
            p[1] = 3.0 * y[1]  # parallel
            p[2] = -0.5 * y[2]  # antiparallel
            y[3] = 0.0  # zero vector in y_true
        r = ref.result("cosine_similarity", y, p, axis=axis)
        ty, tp = T(y), T(p)
        cos = F.cosine_similarity(ty, tp, dim=axis, eps=1e-8)
        l = 1.0 - cos
        (gp,) = grads_of(l.sum(), [tp])
        close(f"cosine_similarity value {shape} axis={axis}", r.l, l.detach().numpy())
        close(f"cosine_similarity grad {shape} axis={axis}", r.grads[0], gp)


# --------------------------------------------------------------------------
# cosine_embedding_loss
# --------------------------------------------------------------------------


def check_cosine_embedding():
    for shape in [(8, 5), (6, 1), (5,), (3, 40)]:
        for margin in (0.0, 0.3, -0.4):
            x1, x2 = rng.normal(size=shape), rng.normal(size=shape)
            ys = shape[:-1]
            y = rng.choice([-1.0, 1.0], ys) if ys else np.array(-1.0)
            r = ref.result("cosine_embedding", x1, x2, y, margin=margin)
            t1, t2 = T(x1), T(x2)
            tl = F.cosine_embedding_loss(t1, t2, torch.tensor(y), margin=margin, reduction="none")
            g1, g2 = grads_of(tl.sum(), [t1, t2])
            close(f"cosine_embedding value {shape} m={margin}", r.l, tl.detach().numpy())
            close(f"cosine_embedding g1 {shape} m={margin}", r.grads[0], g1)
            close(f"cosine_embedding g2 {shape} m={margin}", r.grads[1], g2)


# --------------------------------------------------------------------------
# triplet_margin_loss
# --------------------------------------------------------------------------


def check_triplet():
    for shape in [(10, 4), (6, 17), (3,)]:
        for p in (1.0, 2.0, 3.0, 1.5):
            for swap in (False, True):
                for margin, eps in [(1.0, 1e-6), (0.2, 0.0), (2.0, 1e-3)]:
                    a, ps, n = (rng.normal(size=shape) for _ in range(3))
                    r = ref.result("triplet_margin", a, ps, n, margin=margin, p=p, eps=eps, swap=swap)
                    ta, tp, tn = T(a), T(ps), T(n)
                    tl = F.triplet_margin_loss(ta, tp, tn, margin=margin, p=p, eps=eps, swap=swap, reduction="none")
                    gs = grads_of(tl.sum(), [ta, tp, tn])
                    what = f"triplet {shape} p={p} swap={swap} margin={margin} eps={eps}"
                    close(what + " value", r.l, tl.detach().numpy())
                    for k in range(3):
                        close(what + f" grad{k}", r.grads[k], gs[k])
        for swap in (False, True):
            a, ps, n = (rng.normal(size=shape) for _ in range(3))
            r = ref.result("triplet_margin", a, ps, n, margin=1.5, swap=swap, squared=True)
            ta, tp, tn = T(a), T(ps), T(n)
            tl = F.triplet_margin_with_distance_loss(
                ta, tp, tn, distance_function=lambda u, v: ((u - v) ** 2).sum(-1), margin=1.5, swap=swap, reduction="none"
            )
            gs = grads_of(tl.sum(), [ta, tp, tn])
            close(f"triplet squared {shape} swap={swap} value", r.l, tl.detach().numpy())
            for k in range(3):
                close(f"triplet squared {shape} swap={swap} grad{k}", r.grads[k], gs[k])


# --------------------------------------------------------------------------
# margin_ranking_loss, contrastive, contrastive_pairs
# --------------------------------------------------------------------------


def check_margin_ranking():
    for shape in [(20,), (4, 5), ()]:
        for margin in (0.0, 0.5):
            x1, x2 = rng.normal(size=shape), rng.normal(size=shape)
            y = rng.choice([-1.0, 1.0], shape) if shape else np.array(1.0)
            r = ref.result("margin_ranking", x1, x2, y, margin=margin)
            t1, t2 = T(x1), T(x2)
            tl = F.margin_ranking_loss(t1, t2, torch.tensor(y), margin=margin, reduction="none")
            g1, g2 = grads_of(tl.sum(), [t1, t2])
            close(f"margin_ranking value {shape}", r.l, tl.detach().numpy())
            close(f"margin_ranking g1 {shape}", r.grads[0], g1)
            close(f"margin_ranking g2 {shape}", r.grads[1], g2)


def torch_contrastive(y, d, margin):
    return y * d**2 + (1 - y) * torch.clamp(margin - d, min=0) ** 2


def check_contrastive():
    for margin in (1.0, 0.5, 2.0):
        d = np.abs(rng.normal(size=30)) * 1.5
        y = rng.choice([0.0, 1.0, 0.3], 30)
        r = ref.result("contrastive", y, d, margin=margin)
        td = T(d)
        tl = torch_contrastive(torch.tensor(y), td, margin)
        (g,) = grads_of(tl.sum(), [td])
        close(f"contrastive value m={margin}", r.l, tl.detach().numpy())
        close(f"contrastive grad m={margin}", r.grads[0], g)
        for shape in [(12, 3), (7,), (5, 2, 4)]:
            x1, x2 = rng.normal(size=shape), rng.normal(size=shape) * 0.3
            y = rng.choice([0.0, 1.0, 0.5], shape[:-1]) if len(shape) > 1 else np.array(0.0)
            for eps in (1e-6, 0.0, 0.1):
                r = ref.result("contrastive_pairs", y, x1, x2, margin=margin, eps=eps)
                t1, t2 = T(x1), T(x2)
                dist = F.pairwise_distance(t1, t2, p=2.0, eps=eps)
                tl = torch_contrastive(torch.tensor(y), dist, margin)
                g1, g2 = grads_of(tl.sum(), [t1, t2])
                close(f"contrastive_pairs value {shape} m={margin} eps={eps}", r.l, tl.detach().numpy())
                close(f"contrastive_pairs g1 {shape} m={margin} eps={eps}", r.grads[0], g1)
                close(f"contrastive_pairs g2 {shape} m={margin} eps={eps}", r.grads[1], g2)


# --------------------------------------------------------------------------
# Boxes: torchvision's losses transcribed
# --------------------------------------------------------------------------


def tv_inter_union(boxes1, boxes2):
    x1, y1, x2, y2 = boxes1.unbind(dim=-1)
    x1g, y1g, x2g, y2g = boxes2.unbind(dim=-1)
    xkis1 = torch.max(x1, x1g)
    ykis1 = torch.max(y1, y1g)
    xkis2 = torch.min(x2, x2g)
    ykis2 = torch.min(y2, y2g)
    intsctk = torch.zeros_like(x1)
    mask = (ykis2 > ykis1) & (xkis2 > xkis1)
    intsctk[mask] = (xkis2[mask] - xkis1[mask]) * (ykis2[mask] - ykis1[mask])
    unionk = (x2 - x1) * (y2 - y1) + (x2g - x1g) * (y2g - y1g) - intsctk
    return intsctk, unionk


def tv_iou_loss(boxes1, boxes2, eps):
    inter, union = tv_inter_union(boxes1, boxes2)
    return 1 - inter / (union + eps)


def tv_giou_loss(boxes1, boxes2, eps):
    intsctk, unionk = tv_inter_union(boxes1, boxes2)
    iouk = intsctk / (unionk + eps)
    x1, y1, x2, y2 = boxes1.unbind(dim=-1)
    x1g, y1g, x2g, y2g = boxes2.unbind(dim=-1)
    xc1 = torch.min(x1, x1g)
    yc1 = torch.min(y1, y1g)
    xc2 = torch.max(x2, x2g)
    yc2 = torch.max(y2, y2g)
    area_c = (xc2 - xc1) * (yc2 - yc1)
    miouk = iouk - ((area_c - unionk) / (area_c + eps))
    return 1 - miouk


def tv_diou_iou_loss(boxes1, boxes2, eps):
    intsct, union = tv_inter_union(boxes1, boxes2)
    iou = intsct / (union + eps)
    x1, y1, x2, y2 = boxes1.unbind(dim=-1)
    x1g, y1g, x2g, y2g = boxes2.unbind(dim=-1)
    xc1 = torch.min(x1, x1g)
    yc1 = torch.min(y1, y1g)
    xc2 = torch.max(x2, x2g)
    yc2 = torch.max(y2, y2g)
    diagonal_distance_squared = ((xc2 - xc1) ** 2) + ((yc2 - yc1) ** 2) + eps
    x_p = (x2 + x1) / 2
    y_p = (y2 + y1) / 2
    x_g = (x1g + x2g) / 2
    y_g = (y1g + y2g) / 2
    centers_distance_squared = ((x_p - x_g) ** 2) + ((y_p - y_g) ** 2)
    loss = 1 - iou + (centers_distance_squared / diagonal_distance_squared)
    return loss, iou


def tv_ciou_loss(boxes1, boxes2, eps, safe=True):
    diou_loss, iou = tv_diou_iou_loss(boxes1, boxes2, eps)
    x1, y1, x2, y2 = boxes1.unbind(dim=-1)
    x1g, y1g, x2g, y2g = boxes2.unbind(dim=-1)
    w_pred = x2 - x1
    h_pred = y2 - y1
    w_gt = x2g - x1g
    h_gt = y2g - y1g
    if safe:  # the spec's replacement of |h| < eps by +-eps (a constant there)
        def sh(h):
            return torch.where(h.abs() < eps, torch.where(h < 0, -eps, eps) * torch.ones_like(h), h)

        h_pred, h_gt = sh(h_pred), sh(h_gt)
    v = (4 / (torch.pi**2)) * torch.pow((torch.atan(w_gt / h_gt) - torch.atan(w_pred / h_pred)), 2)
    with torch.no_grad():
        alpha = v / (1 - iou + v + eps)
    return diou_loss + alpha * v


TV = {
    "iou": tv_iou_loss,
    "giou": tv_giou_loss,
    "diou": lambda a, b, e: tv_diou_iou_loss(a, b, e)[0],
    "ciou": tv_ciou_loss,
}


def random_boxes(n, ties=True, degenerate=False):
    """(true, pred): overlapping, disjoint, nested, planted exact ties of
    coordinates (x1 == x1g, x2 == x2g, ...), identical boxes, touching edges."""
    c = rng.uniform(0, 50, (n, 2))
    wh = rng.uniform(1, 20, (n, 2))
    gt = np.concatenate([c - wh / 2, c + wh / 2], -1)
    shift = rng.normal(0, 6, (n, 2))
    wh2 = wh * rng.uniform(0.5, 2.0, (n, 2))
    c2 = c + shift
    pr = np.concatenate([c2 - wh2 / 2, c2 + wh2 / 2], -1)
    gt, pr = np.round(gt, 2), np.round(pr, 2)
    if ties:
        for k in range(4):
            m = rng.random(n) < 0.25
            pr[m, k] = gt[m, k]
        pr[0] = gt[0]  # identical
        pr[1] = gt[1] + np.array([gt[1, 2] - gt[1, 0], 0, gt[1, 2] - gt[1, 0], 0])  # touching on the right
        pr[2] = gt[2] + np.array([100, 100, 100, 100])  # disjoint
        pr[3] = np.array([gt[3, 0] + 1, gt[3, 1] + 1, gt[3, 2] - 1, gt[3, 3] - 1])  # nested
    if degenerate:
        pr[4] = np.array([5.0, 5.0, 5.0, 9.0])  # zero width
        pr[5] = np.array([5.0, 5.0, 9.0, 5.0])  # zero height
        pr[6] = np.array([5.0, 5.0, 5.0, 5.0])  # a point
        pr[7] = np.array([9.0, 9.0, 5.0, 5.0])  # inverted
        gt[8] = np.array([3.0, 3.0, 3.0, 3.0])  # a point as the truth
        pr[9] = np.array([9.0, 4.0, 5.0, 8.0])  # inverted in x only
    return gt, pr


def check_boxes():
    for kind in ("iou", "giou", "diou", "ciou"):
        for eps in (1e-7, 1e-3):
            for degenerate in (False, True):
                gt, pr = random_boxes(40, degenerate=degenerate)
                r = ref.result("box_iou", gt, pr, kind=kind, eps=eps)
                tp = T(pr)
                tl = TV[kind](tp, torch.tensor(gt), eps)
                (g,) = grads_of(tl.sum(), [tp])
                what = f"box_iou {kind} eps={eps} degenerate={degenerate}"
                tv = tl.detach().numpy()
                close(what + " value", r.l, tv)
                close(what + " grad", r.grads[0], g, rtol=1e-8, atol=1e-9)
        # (2, 3, 4) batch shape
        gt, pr = random_boxes(24)
        gt, pr = gt.reshape(2, 3, 4, 4), pr.reshape(2, 3, 4, 4)
        r = ref.result("box_iou", gt, pr, kind=kind)
        tp = T(pr)
        tl = TV[kind](tp, torch.tensor(gt), 1e-7)
        (g,) = grads_of(tl.sum(), [tp])
        close(f"box_iou {kind} batch value", r.l, tl.detach().numpy())
        close(f"box_iou {kind} batch grad", r.grads[0], g, rtol=1e-8, atol=1e-9)
    # torch's own convention at ties: maximum/minimum split the gradient in half
    a, b = T([1.0, 2.0, 3.0]), torch.tensor([1.0, 1.0, 4.0])
    (g,) = grads_of(torch.max(a, b).sum(), [a])
    close("torch max tie convention", g, [0.5, 1.0, 0.0])


# --------------------------------------------------------------------------
# Dice family (formula in torch, autograd)
# --------------------------------------------------------------------------


def torch_overlap(name, y, x, smooth, axis, squared, from_logits, alpha=0.5, beta=0.5, gamma=0.75):
    p = torch.sigmoid(x) if from_logits else x
    dims = tuple(range(x.ndim)) if axis is None else axis
    I = (y * p).sum(dim=dims) if dims != () else y * p
    if squared:
        Sy = (y * y).sum(dim=dims) if dims != () else y * y
        Sp = (p * p).sum(dim=dims) if dims != () else p * p
    else:
        Sy = y.sum(dim=dims) if dims != () else y
        Sp = p.sum(dim=dims) if dims != () else p
    if name == "dice":
        return 1 - (2 * I + smooth) / (Sy + Sp + smooth)
    if name == "jaccard":
        return 1 - (I + smooth) / (Sy + Sp - I + smooth)
    TI = (I + smooth) / (I + alpha * (Sp - I) + beta * (Sy - I) + smooth)
    if name == "tversky":
        return 1 - TI
    return (1 - TI) ** gamma


def check_dice():
    configs = [
        ("dice", {}),
        ("dice", {"squared": True}),
        ("dice", {"from_logits": True, "smooth": 1.0}),
        ("jaccard", {}),
        ("jaccard", {"squared": True, "from_logits": True}),
        ("tversky", {"alpha": 0.3, "beta": 0.7}),
        ("tversky", {"alpha": 1.0, "beta": 1.0, "from_logits": True}),
        ("focal_tversky", {}),
        ("focal_tversky", {"alpha": 0.7, "beta": 0.3, "gamma": 1.5, "from_logits": True}),
        ("focal_tversky", {"gamma": 0.5, "smooth": 0.1}),
    ]
    for name, opts in configs:
        for shape, axis in [((4, 1, 6, 5), (1, 2, 3)), ((3, 7), None), ((5, 4), -1), ((2, 3, 4), (0, 2)), ((6,), ())]:
            y = (rng.random(shape) < 0.4).astype(np.float64)
            y = np.where(rng.random(shape) < 0.2, rng.random(shape), y)
            x = rng.normal(0, 2, shape) if opts.get("from_logits") else rng.uniform(0.01, 0.99, shape)
            full = dict(opts, axis=axis)
            r = ref.result(name, y, x, **full)
            tx = T(x)
            smooth = opts.get("smooth", 1e-6)
            ax = None if axis is None else tuple(a % len(shape) for a in ((axis,) if isinstance(axis, int) else axis))
            tl = torch_overlap(
                name, torch.tensor(y), tx, smooth, ax, opts.get("squared", False), opts.get("from_logits", False),
                opts.get("alpha", 0.5), opts.get("beta", 0.5), opts.get("gamma", 0.75),
            )
            (g,) = grads_of(tl.sum(), [tx])
            close(f"{name}{opts} {shape} axis={axis} value", r.l, tl.detach().numpy())
            close(f"{name}{opts} {shape} axis={axis} grad", r.grads[0], g)


# --------------------------------------------------------------------------
# GAN losses (binary_cross_entropy_with_logits), gradient penalty
# --------------------------------------------------------------------------


def check_gan():
    for shape in [(50,), (4, 6), ()]:
        x = rng.normal(0, 5, shape)
        if shape == (50,):
            x[:4] = [40.0, -40.0, 800.0, -800.0]
        tx = T(x)
        ones, zeros = torch.ones(shape), torch.zeros(shape)
        tl = F.binary_cross_entropy_with_logits(tx, ones, reduction="none")
        (g,) = grads_of(tl.sum(), [tx])
        r = ref.gan_real(x)
        close(f"gan real half {shape}", r.l, tl.detach().numpy())
        close(f"gan real half grad {shape}", r.grads[0], g)
        r = ref.result("gan_generator", x)
        close(f"gan_generator {shape}", r.l, tl.detach().numpy())
        close(f"gan_generator grad {shape}", r.grads[0], g)
        tx = T(x)
        tl = F.binary_cross_entropy_with_logits(tx, zeros, reduction="none")
        (g,) = grads_of(tl.sum(), [tx])
        r = ref.gan_fake(x)
        close(f"gan fake half {shape}", r.l, tl.detach().numpy())
        close(f"gan fake half grad {shape}", r.grads[0], g)
        r = ref.result("gan_generator", x, saturating=True)
        close(f"gan_generator saturating {shape}", r.l, -tl.detach().numpy())
        close(f"gan_generator saturating grad {shape}", r.grads[0], -g)
        # log(1 - sigmoid(x)) directly, where 1 - sigmoid(x) keeps its digits
        tx = T(np.clip(x, -15, 15))
        tl = torch.log(1 - torch.sigmoid(tx))
        (g,) = grads_of(tl.sum(), [tx])
        r = ref.result("gan_generator", np.clip(x, -15, 15), saturating=True)
        close(f"gan_generator saturating log(1-sigmoid) {shape}", r.l, tl.detach().numpy(), rtol=1e-6)
        close(f"gan_generator saturating log(1-sigmoid) grad {shape}", r.grads[0], g, rtol=1e-6)
    # the discriminator with weights and reductions, the critic
    real, fake = rng.normal(size=(6, 3)), rng.normal(size=(4,))
    wr, wf = rng.uniform(0.5, 2, (6, 1)), rng.uniform(0.5, 2, (4,))
    for red in ("mean", "sum", "none"):
        for weights in (None, (wr, wf), (None, wf), (wr, None)):
            tr, tf = T(real), T(fake)
            lr = F.binary_cross_entropy_with_logits(tr, torch.ones(6, 3), reduction="none")
            lf = F.binary_cross_entropy_with_logits(tf, torch.zeros(4), reduction="none")
            cr = -tr
            cf = tf
            wrt = torch.tensor(weights[0]) if weights and weights[0] is not None else torch.ones(1)
            wft = torch.tensor(weights[1]) if weights and weights[1] is not None else torch.ones(1)

            def R(l, w):
                wl = (w * l)
                if red == "sum":
                    return wl.sum()
                if red == "mean":
                    return wl.sum() / torch.broadcast_to(w, l.shape).sum()
                return wl

            for nm, fn, a, b in [("gan_discriminator", ref.gan_discriminator_reduced, lr, lf), ("wasserstein_critic", ref.wasserstein_critic_reduced, cr, cf)]:
                v, (gr_, gf_), _, _ = fn(real, fake, weights=weights, reduction=red)
                ta, tb = R(a, wrt), R(b, wft)
                if red == "none":
                    close(f"{nm} none real", v[0], ta.detach().numpy())
                    close(f"{nm} none fake", v[1], tb.detach().numpy())
                    tot = ta.sum() + tb.sum()
                else:
                    tot = ta + tb
                    close(f"{nm} {red} value", v, tot.detach().numpy())
                g1, g2 = grads_of(tot, [tr, tf])
                close(f"{nm} {red} w={weights is not None} g_real", gr_, g1)
                close(f"{nm} {red} w={weights is not None} g_fake", gf_, g2)
    # gradient penalty
    for shape in [(5, 3, 4), (6,), (4, 7)]:
        for target in (1.0, 0.0, 2.5):
            g = rng.normal(size=shape)
            tg = T(g)
            n = tg.reshape(shape[0], -1).norm(dim=1)
            tl = (n - target) ** 2
            (gg,) = grads_of(tl.sum(), [tg])
            r = ref.result("gradient_penalty", g, target=target)
            close(f"gradient_penalty {shape} t={target} value", r.l, tl.detach().numpy())
            close(f"gradient_penalty {shape} t={target} grad", r.grads[0], gg)


# --------------------------------------------------------------------------
# Pairwise ranking
# --------------------------------------------------------------------------


def check_pairwise():
    for n in (1, 2, 5, 40, 120):
        for margin in (1.0, 0.0, 0.3):
            for grouped in (False, True):
                rel = rng.integers(0, 4, n).astype(np.float64)
                s = np.round(rng.normal(size=n), 1)  # ties in the scores
                groups = rng.integers(0, 3, n) if grouped else None
                for norm in ("all_pairs", "ordered_pairs"):
                    for red in ("sum", "mean"):
                        v, g, _, _ = ref.pairwise_ranking_reduced(rel, s, margin=margin, groups=groups, normalization=norm, reduction=red)
                        ts = T(s)
                        gr = np.zeros(n, np.int64) if groups is None else groups
                        M = torch.tensor((rel[:, None] > rel[None, :]) & (gr[:, None] == gr[None, :]))
                        h = margin - (ts[:, None] - ts[None, :])
                        # relu: no gradient at exactly 0, as the spec asks
                        tl = torch.where(M, torch.relu(h), torch.zeros(()))
                        tot = tl.sum()
                        if red == "mean":
                            if norm == "all_pairs":
                                _, c = np.unique(gr, return_counts=True)
                                D = float(np.sum(c * (c - 1) // 2))
                            else:
                                D = float(M.sum())
                            tot = tot / D if D else tot * float("nan")
                        (tg,) = grads_of(tot, [ts])
                        if red == "mean" and not np.isfinite(v):
                            tg = np.zeros(n)
                        what = f"pairwise n={n} margin={margin} groups={grouped} {norm} {red}"
                        close(what + " value", v, tot.detach().numpy())
                        close(what + " grad", g, tg)
        # every pair active: the O(n log n) identity
        rel = rng.integers(0, 5, n).astype(np.float64)
        s = rng.uniform(0, 1, n)
        groups = rng.integers(0, 3, n)
        for gp in (None, groups):
            v, g, pairs, allp = ref.pairwise_ranking_all_active(rel, s, 5.0, gp)
            v2, g2, _, _ = ref.pairwise_ranking_reduced(rel, s, margin=5.0, groups=gp, reduction="sum")
            close(f"pairwise all-active identity n={n}", v, v2)
            close(f"pairwise all-active identity grad n={n}", g, g2)


# --------------------------------------------------------------------------
# Weighted reductions
# --------------------------------------------------------------------------


def check_reduce():
    for shape, wshape in [((6, 5), (6,)), ((3, 4, 5), (3, 1)), ((4, 5), ())]:
        y, p = rng.normal(size=shape), rng.normal(size=shape)
        w = rng.uniform(0.5, 2, wshape)
        L = shape[:-1]
        for red in ("mean", "sum", "none"):
            v, (g,), _, _ = ref.reduced("cosine_similarity", y, p, weights=w, reduction=red)
            tp = T(p)
            l = (1 - F.cosine_similarity(torch.tensor(y), tp, dim=-1)) * torch.tensor(w)
            if red == "sum":
                tot = l.sum()
            elif red == "mean":
                tot = l.sum() / torch.broadcast_to(torch.tensor(w), L).sum()
            else:
                tot = l
                close(f"reduce none {shape} value", v, l.detach().numpy())
            (tg,) = grads_of(tot.sum(), [tp])
            if red != "none":
                close(f"reduce {red} {shape} value", v, tot.detach().numpy())
            close(f"reduce {red} {shape} grad", g, tg)


def main():
    for fn in (check_cosine_similarity, check_cosine_embedding, check_triplet, check_margin_ranking, check_contrastive,
               check_boxes, check_dice, check_gan, check_pairwise, check_reduce):
        with np.errstate(all="ignore"):
            fn()
    print(f"{COUNT[0]} comparisons, {len(FAILS)} failures")
    for f in FAILS:
        print("FAIL", f)
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
