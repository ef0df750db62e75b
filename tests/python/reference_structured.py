"""NumPy float64 reference for the fastloss structured losses (issue #4):
segmentation (dice family), detection (box_iou), metric learning, ranking,
adversarial losses and penalties, and combined losses.

Everything is written the plain way, straight from the formulas of
notes/STRUCTURED_SPEC.md, in float64, under ``np.errstate(all="ignore")`` (the
spec wants the IEEE results: NaN in gives NaN out). The gradients are written
by hand (chain rule), never by differencing; tests/python/test_structured.py
checks them against central finite differences and
tests/python/torch_crosscheck.py against PyTorch's autograd.

Each loss ``NAME(*inputs, **options)`` takes its inputs in the order of
``fl.NAME`` and returns a ``Result``:

- ``l``: the per-sample losses (the spec's "losses shape");
- ``grads``: a tuple with the gradient of ``sum(l)`` with respect to each
  differentiable input, in argument order;
- ``axes``: the axes of a differentiable input that are reduced into one
  sample (``np.expand_dims(w, axes)`` broadcasts per-sample weights ``w`` to
  the input; every input element belongs to exactly one sample);
- ``ml`` / ``mg``: the size of the terms that make up ``l`` and each gradient
  (first-order error propagation of a few-ulp error in every sum, product and
  difference). A kernel computing in a dtype with machine epsilon ``u`` is
  wrong by about ``u * ml`` (resp. ``u * mg``) where terms cancel, not by a
  few ulp of the result. Always >= the magnitude of the result itself.

``reduce(result, weights, reduction)`` applies the spec's weighted reduction:
"sum" = sum(w*l), "mean" = sum(w*l)/sum(w) (NaN with a zero gradient over zero
samples), "none" = w*l with the gradient of sum(w*l). It returns
``(value, grads, value_mag, grad_mags)``.

The losses that do not fit that frame have their own entry points:
``pairwise_ranking_reduced`` (pairs, no weights, no "none"),
``gan_discriminator_reduced`` / ``wasserstein_critic_reduced`` (two arrays,
each reduced on its own), ``l2_penalty`` and ``combined``.
"""

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import reference as ref_regression
import reference_classification as ref_classification

PI = math.pi


def _f64(x):
    return np.asarray(x, dtype=np.float64)


@dataclass
class Result:
    l: Any
    grads: tuple
    axes: tuple = ()
    ml: Any = None
    mg: tuple = field(default_factory=tuple)

    def __post_init__(self):
        self.l = _f64(self.l)
        self.grads = tuple(_f64(g) for g in self.grads)
        if self.ml is None:
            self.ml = np.abs(self.l)
        self.ml = np.maximum(_f64(self.ml), np.abs(self.l))
        if not self.mg:
            self.mg = tuple(np.abs(g) for g in self.grads)
        self.mg = tuple(np.maximum(_f64(m), np.abs(g)) for m, g in zip(self.mg, self.grads))
        # NaN magnitudes belong to NaN results, which must match exactly
        self.ml = np.nan_to_num(self.ml, nan=0.0, posinf=1e300)
        self.mg = tuple(np.nan_to_num(m, nan=0.0, posinf=1e300) for m in self.mg)


def softplus(z):
    """log(1 + exp(z)), without overflow."""
    z = _f64(z)
    return np.log1p(np.exp(-np.abs(z))) + np.maximum(z, 0.0)


def sigmoid(z):
    z = _f64(z)
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def dmax(a, b):
    """d max(a, b) / d a with torch's convention: half the gradient at a tie."""
    return np.where(a > b, 1.0, np.where(a == b, 0.5, 0.0))


def dmin(a, b):
    """d min(a, b) / d a, half at a tie."""
    return np.where(a < b, 1.0, np.where(a == b, 0.5, 0.0))


def normalize_axes(axis, ndim):
    """The reduced axes as a sorted tuple of non-negative ints (None: all)."""
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, (int, np.integer)):
        axis = (int(axis),)
    out = []
    for a in axis:
        if not -ndim <= a < ndim:
            raise ValueError(f"axis {a} out of range for {ndim} dimensions")
        a = a % ndim if ndim else a
        if a in out:
            raise ValueError(f"duplicate axis {a}")
        out.append(a)
    return tuple(sorted(out))


# ---------------------------------------------------------------------------
# Segmentation: dice, jaccard, tversky, focal_tversky
# ---------------------------------------------------------------------------


def _overlap(y_true, y_pred, axis, squared, from_logits):
    """Sums over the reduced axes (kept as size-1 dims) and their derivatives.

    Returns (y, p, I, Sy, Sp, dSp (dSp/dp_i), chain (dp_i/dy_pred_i), axes,
    (aI, aSy, aSp) the sums of |terms|)."""
    x = _f64(y_pred)
    y = np.broadcast_to(_f64(y_true), x.shape)
    axes = normalize_axes(axis, x.ndim)
    if from_logits:
        p = sigmoid(x)
        chain = p * (1.0 - p)
    else:
        p = x
        chain = np.ones_like(x)
    k = dict(axis=axes, keepdims=True)
    I = np.sum(y * p, **k)
    aI = np.sum(np.abs(y * p), **k)
    if squared:
        Sy, Sp, dSp = np.sum(y * y, **k), np.sum(p * p, **k), 2.0 * p
        aSy, aSp = Sy, Sp
    else:
        Sy, Sp, dSp = np.sum(y, **k), np.sum(p, **k), np.ones_like(p)
        aSy, aSp = np.sum(np.abs(y), **k), np.sum(np.abs(p), **k)
    return y, p, I, Sy, Sp, dSp, chain, axes, (aI, aSy, aSp)


def _overlap_result(y, dSp, chain, axes, l, dI, dSy, dSp_coef, sums_abs, kappa, extra_ml=0.0):
    """Result of a loss l(I, Sy, Sp) with partials dI, dSy, dSp_coef (kept dims).

    kappa: the relative error amplification of the partials (the conditioning of
    the fractions they are made of)."""
    aI, aSy, aSp = sums_abs
    g = (dI * y + dSp_coef * dSp) * chain
    ml = np.abs(l) + np.abs(dI) * aI + np.abs(dSy) * aSy + np.abs(dSp_coef) * aSp + extra_ml
    mg = (np.abs(dI * y) + np.abs(dSp_coef * dSp)) * np.abs(chain) * (1.0 + kappa)
    ml = np.squeeze(ml, axis=axes)
    return Result(np.squeeze(l, axis=axes), (g,), axes, ml, (mg,))


def dice(y_true, y_pred, smooth=1e-6, axis=None, squared=False, from_logits=False):
    y, p, I, Sy, Sp, dSp, chain, axes, sa = _overlap(y_true, y_pred, axis, squared, from_logits)
    N = 2.0 * I + smooth
    D = Sy + Sp + smooth
    l = 1.0 - N / D
    dI = -2.0 / D
    dSy = N / D**2
    dSp_coef = N / D**2
    kappa = (2.0 * sa[0] + smooth) / np.abs(N) + (sa[1] + sa[2] + smooth) / np.abs(D)
    return _overlap_result(y, dSp, chain, axes, l, dI, dSy, dSp_coef, sa, kappa)


def jaccard(y_true, y_pred, smooth=1e-6, axis=None, squared=False, from_logits=False):
    y, p, I, Sy, Sp, dSp, chain, axes, sa = _overlap(y_true, y_pred, axis, squared, from_logits)
    A = I + smooth
    U = Sy + Sp - I
    B = U + smooth
    l = 1.0 - A / B
    # dU/dI = -1, dU/dSy = dU/dSp = 1
    dI = -(1.0 / B + A / B**2)
    dSy = A / B**2
    dSp_coef = A / B**2
    kappa = (sa[0] + smooth) / np.abs(A) + (sa[0] + sa[1] + sa[2] + smooth) / np.abs(B)
    return _overlap_result(y, dSp, chain, axes, l, dI, dSy, dSp_coef, sa, kappa)


def _tversky_parts(I, Sy, Sp, smooth, alpha, beta):
    FP = Sp - I
    FN = Sy - I
    D = I + alpha * FP + beta * FN + smooth
    TI = (I + smooth) / D
    # dD/dI = 1 - alpha - beta, dD/dSp = alpha, dD/dSy = beta
    dTI_dI = 1.0 / D - (I + smooth) * (1.0 - alpha - beta) / D**2
    dTI_dSp = -(I + smooth) * alpha / D**2
    dTI_dSy = -(I + smooth) * beta / D**2
    return TI, dTI_dI, dTI_dSy, dTI_dSp, D


def tversky(y_true, y_pred, smooth=1e-6, axis=None, squared=False, from_logits=False, alpha=0.5, beta=0.5):
    y, p, I, Sy, Sp, dSp, chain, axes, sa = _overlap(y_true, y_pred, axis, squared, from_logits)
    TI, dI, dSy, dSp_c, D = _tversky_parts(I, Sy, Sp, smooth, alpha, beta)
    l = 1.0 - TI
    aD = (1.0 + alpha + beta) * sa[0] + alpha * sa[2] + beta * sa[1] + smooth
    kappa = (sa[0] + smooth) / np.abs(I + smooth) + aD / np.abs(D)
    return _overlap_result(y, dSp, chain, axes, l, -dI, -dSy, -dSp_c, sa, kappa)


def focal_tversky(y_true, y_pred, smooth=1e-6, axis=None, squared=False, from_logits=False, alpha=0.5, beta=0.5, gamma=0.75):
    t = tversky(y_true, y_pred, smooth=smooth, axis=axis, squared=squared, from_logits=from_logits, alpha=alpha, beta=beta)
    axes = t.axes
    one_m = t.l  # 1 - TI, per score
    l = one_m**gamma
    # gamma (1 - TI)^(gamma - 1); where 1 - TI == 0 that is inf for gamma < 1
    # (the spec's inf * 0) and the gradient is 0; for gamma > 1 it is 0 anyway;
    # for gamma == 1 (focal_tversky == tversky) it is 0**0 = 1: the tversky
    # gradient, as IEEE pow gives.
    F = np.where(one_m == 0, 1.0 if gamma == 1 else 0.0, gamma * np.abs(one_m) ** (gamma - 1.0) * np.sign(one_m))
    F = np.where(np.isnan(one_m), np.nan, F)
    Fk = np.expand_dims(F, axes)
    g = Fk * t.grads[0]
    # an error e in 1 - TI moves l by F e and F by F (gamma - 1) e / (1 - TI)
    rel = np.where(one_m == 0, 0.0, np.abs(gamma - 1.0) / np.abs(one_m))
    ml = np.abs(l) + np.abs(F) * t.ml
    mg = np.abs(Fk) * (t.mg[0] + np.expand_dims(rel * t.ml, axes) * np.abs(t.grads[0]))
    return Result(l, (g,), axes, ml, (mg,))


# ---------------------------------------------------------------------------
# Detection: box_iou
# ---------------------------------------------------------------------------


def _safe_h(h, eps):
    """h with |h| < eps replaced by eps with h's sign (+ for 0)."""
    return np.where(np.abs(h) < eps, np.where(h < 0, -eps, eps), h)


def box_iou(boxes_true, boxes_pred, kind="iou", eps=1e-7, frozen_alpha=None):
    """torchvision's IoU / GIoU / DIoU / CIoU losses, boxes1 = pred,
    boxes2 = true; gradient wrt boxes_pred by hand, torch's autograd
    conventions (ties of min/max split half, no gradient through the
    intersection where it is clamped to 0, ciou's alpha a constant).

    frozen_alpha (tests only): ciou's alpha given instead of computed, so that
    finite differences of the value see the constant the gradient assumes
    (``ciou_alpha`` gives it)."""
    b = _f64(boxes_pred)
    gt = np.broadcast_to(_f64(boxes_true), b.shape)
    x1, y1, x2, y2 = (b[..., k] for k in range(4))
    gx1, gy1, gx2, gy2 = (gt[..., k] for k in range(4))

    # intersection
    xk1, yk1 = np.maximum(x1, gx1), np.maximum(y1, gy1)
    xk2, yk2 = np.minimum(x2, gx2), np.minimum(y2, gy2)
    iw, ih = xk2 - xk1, yk2 - yk1
    overlap = (iw > 0) & (ih > 0)
    inter = np.where(overlap, iw * ih, 0.0)
    d_iw, d_ih = np.where(overlap, ih, 0.0), np.where(overlap, iw, 0.0)
    dinter = np.stack(
        [-d_iw * dmax(x1, gx1), -d_ih * dmax(y1, gy1), d_iw * dmin(x2, gx2), d_ih * dmin(y2, gy2)], axis=-1
    )
    # union
    w, h = x2 - x1, y2 - y1
    wg, hg = gx2 - gx1, gy2 - gy1
    area = w * h
    area_g = wg * hg
    darea = np.stack([-h, -w, h, w], axis=-1)
    union = area + area_g - inter
    dunion = darea - dinter
    Ue = union + eps
    iou = inter / Ue
    diou = dinter / Ue[..., None] - (inter / Ue**2)[..., None] * dunion
    l = 1.0 - iou
    dl = -diou

    # magnitudes: S the scale of the coordinates, kappa the conditioning
    S = np.max(np.abs(np.concatenate([b, gt], axis=-1)), axis=-1) + eps
    kappa = S * S / np.abs(Ue) * (1.0 + np.abs(iou))
    gscale = np.sum(np.abs(dinter), -1) / np.abs(Ue) + np.abs(inter) / Ue**2 * np.sum(np.abs(darea) + np.abs(dinter), -1)
    gscale = gscale + S / np.abs(Ue)

    if kind in ("giou", "diou", "ciou"):
        xc1, yc1 = np.minimum(x1, gx1), np.minimum(y1, gy1)
        xc2, yc2 = np.maximum(x2, gx2), np.maximum(y2, gy2)
        cw, ch = xc2 - xc1, yc2 - yc1
        # d cw / d (x1, x2), d ch / d (y1, y2)
        dcw_x1, dcw_x2 = -dmin(x1, gx1), dmax(x2, gx2)
        dch_y1, dch_y2 = -dmin(y1, gy1), dmax(y2, gy2)
    if kind == "giou":
        C = cw * ch
        dC = np.stack([ch * dcw_x1, cw * dch_y1, ch * dcw_x2, cw * dch_y2], axis=-1)
        Ce = C + eps
        T = (C - union) / Ce
        dT = (dC - dunion) / Ce[..., None] - ((C - union) / Ce**2)[..., None] * dC
        l = l + T
        dl = dl + dT
        kappa = kappa + S * S / np.abs(Ce) * (1.0 + np.abs(T))
        gscale = gscale + (np.sum(np.abs(dC) + np.abs(dunion), -1) + S) / np.abs(Ce) + np.abs(T / Ce) * np.sum(np.abs(dC), -1)
    elif kind in ("diou", "ciou"):
        diag2 = cw**2 + ch**2 + eps
        ddiag2 = np.stack([2 * cw * dcw_x1, 2 * ch * dch_y1, 2 * cw * dcw_x2, 2 * ch * dch_y2], axis=-1)
        dx = (x1 + x2) / 2 - (gx1 + gx2) / 2
        dy = (y1 + y2) / 2 - (gy1 + gy2) / 2
        rho2 = dx**2 + dy**2
        drho2 = np.stack([dx, dy, dx, dy], axis=-1)  # d rho2 / d x1 = 2 dx * 1/2
        R = rho2 / diag2
        dR = drho2 / diag2[..., None] - (rho2 / diag2**2)[..., None] * ddiag2
        l = l + R
        dl = dl + dR
        kappa = kappa + S * S / diag2 * 4.0
        gscale = gscale + (np.sum(np.abs(drho2), -1) + S) / diag2 + np.abs(R / diag2) * np.sum(np.abs(ddiag2), -1)
        if kind == "ciou":
            hs, hgs = _safe_h(h, eps), _safe_h(hg, eps)
            ap, ag = np.arctan(w / hs), np.arctan(wg / hgs)
            K = 4.0 / PI**2
            v = K * (ag - ap) ** 2
            alpha = v / (1.0 - iou + v + eps)  # a constant for the gradient
            if frozen_alpha is not None:
                alpha = np.broadcast_to(_f64(frozen_alpha), v.shape)
            self_alpha = alpha
            dv_dap = -2.0 * K * (ag - ap)
            r2 = hs * hs + w * w
            dap_dw = hs / r2
            dap_dh = np.where(np.abs(h) < eps, 0.0, -w / r2)  # the replaced h is a constant
            dv = dv_dap[..., None] * np.stack([-dap_dw, -dap_dh, dap_dw, dap_dh], axis=-1)
            l = l + alpha * v
            dl = dl + alpha[..., None] * dv
            # an error S u in w, h moves atan(w/h) by S u (|w| + |h|) / (w^2 + h^2)
            cond = S * (np.abs(w) + np.abs(hs)) / r2 + S * (np.abs(wg) + np.abs(hgs)) / (hgs * hgs + wg * wg)
            kappa = kappa + np.abs(2.0 * K * (ag - ap)) * cond * (1.0 + np.abs(alpha)) + np.abs(alpha * v)
            gscale = gscale + np.abs(alpha * dv_dap) * (np.abs(dap_dw) + np.abs(dap_dh)) * (1.0 + cond)
    elif kind != "iou":
        raise ValueError(f"unknown kind {kind!r}")
    ml = np.abs(l) + kappa
    mg = np.abs(dl) + (1.0 + kappa)[..., None] * gscale[..., None]
    r = Result(l, (dl,), (b.ndim - 1,), ml, (mg,))
    if kind == "ciou":
        r.alpha = self_alpha
    return r


def ciou_alpha(boxes_true, boxes_pred, eps=1e-7):
    """ciou's alpha = v / (1 - iou + v + eps) per box."""
    with np.errstate(all="ignore"):
        return np.array(box_iou(boxes_true, boxes_pred, kind="ciou", eps=eps).alpha)


# ---------------------------------------------------------------------------
# Metric learning
# ---------------------------------------------------------------------------


def cosine_similarity(y_true, y_pred, axis=-1, eps=1e-8):
    p = _f64(y_pred)
    y = np.broadcast_to(_f64(y_true), p.shape)
    ax = axis % p.ndim
    S = np.sum(y * p, axis=ax, keepdims=True)
    aS = np.sum(np.abs(y * p), axis=ax, keepdims=True)
    ny = np.sqrt(np.sum(y * y, axis=ax, keepdims=True))
    npn = np.sqrt(np.sum(p * p, axis=ax, keepdims=True))
    nyc, npc = np.maximum(ny, eps), np.maximum(npn, eps)
    cos_u = S / (nyc * npc)
    cos = np.clip(cos_u, -1.0, 1.0)
    l = 1.0 - cos
    big = ~(npn < eps)  # NaN norms take the first branch (NaN out)
    g = np.where(big, -(y / (nyc * npc) - cos_u * p / np.where(big, npn, 1.0) ** 2), -y / (nyc * eps))
    ml = np.abs(l) + aS / (nyc * npc) + 2.0 * np.abs(cos_u)
    mg = np.abs(y) / (nyc * npc) + np.where(big, (np.abs(cos_u) + ml) * np.abs(p) / np.where(big, npn, 1.0) ** 2, 0.0)
    mg = mg * 2.0
    return Result(np.squeeze(l, ax), (g,), (ax,), np.squeeze(ml, ax), (mg,))


def cosine_embedding(x1, x2, y, margin=0.0):
    """PyTorch's cosine_embedding_loss with rows along the last axis."""
    EPS = 1e-12
    a, b = _f64(x1), _f64(x2)
    t = _f64(y)
    S = np.sum(a * b, axis=-1)
    aS = np.sum(np.abs(a * b), axis=-1)
    A = np.sum(a * a, axis=-1) + EPS
    B = np.sum(b * b, axis=-1) + EPS
    r = np.sqrt(A * B)
    cos = S / r
    pos = t == 1
    hinge = cos - margin
    l = np.where(pos, 1.0 - cos, np.maximum(0.0, hinge))
    l = np.where(np.isnan(cos) | np.isnan(t), np.nan, l)
    # d cos / d a = b / r - cos a / A
    dca = b / r[..., None] - (cos / A)[..., None] * a
    dcb = a / r[..., None] - (cos / B)[..., None] * b
    coef = np.where(pos, -1.0, np.where(hinge > 0, 1.0, 0.0))[..., None]
    ml = np.abs(l) + aS / r + 2.0 * np.abs(cos) + abs(margin)
    mc = (np.abs(cos) + aS / r + 1.0)[..., None]
    m1 = np.abs(coef) * (np.abs(b) / r[..., None] + mc * np.abs(a) / A[..., None]) * 2.0
    m2 = np.abs(coef) * (np.abs(a) / r[..., None] + mc * np.abs(b) / B[..., None]) * 2.0
    return Result(l, (coef * dca, coef * dcb), (a.ndim - 1,), ml, (m1, m2))


def _pdist(a, b, p, eps, squared=False):
    """Distance along the last axis and its derivative wrt a (-that wrt b),
    plus the magnitudes (error scale) of both."""
    if squared:
        u = a - b
        d = np.sum(u * u, axis=-1)
        dd = 2.0 * u
        md = np.sum((np.abs(a) + np.abs(b)) ** 2, axis=-1) * 2.0
        mdd = 2.0 * (np.abs(a) + np.abs(b))
        return d, dd, md, mdd
    u = a - b + eps
    au = np.abs(u)
    scale = np.abs(a) + np.abs(b) + eps  # the error of u is a few ulp of this
    if p == 2:
        d = np.sqrt(np.sum(u * u, axis=-1))
    elif p == 1:
        d = np.sum(au, axis=-1)
    else:
        d = np.sum(au**p, axis=-1) ** (1.0 / p)
    dk = d[..., None]
    safe = np.where(dk > 0, dk, 1.0)
    if p == 1:
        dd = np.sign(u)
    else:
        dd = np.sign(u) * au ** (p - 1) / safe ** (p - 1)
    dd = np.where(dk > 0, dd, 0.0)
    dd = np.where(np.isnan(dk), np.nan, dd)
    # |d(u + e) - d(u)| <= ||e||_p for p >= 1
    if p >= 1:
        md = np.sum(scale**p, axis=-1) ** (1.0 / p)
    else:
        md = np.sum(scale**p, axis=-1) ** (1.0 / p) * 10.0
    if p == 1:
        mdd = np.zeros_like(u)
    else:
        # an error e_k in u_k moves dd_k by (p-1) |u_k|^(p-2) e_k / d^(p-1), an
        # error e in d by (p-1) dd_k e / d
        mdd = abs(p - 1) * (scale * au ** (p - 2) / safe ** (p - 1) + np.abs(dd) * (md / safe.squeeze(-1))[..., None]) * 2.0
        mdd = np.where(dk > 0, mdd, 0.0)
    return d, dd, md, mdd


def triplet_margin(anchor, positive, negative, margin=1.0, p=2.0, eps=1e-6, swap=False, squared=False):
    """PyTorch's triplet_margin_loss; squared=True: squared Euclidean distances."""
    a, ps, n = _f64(anchor), _f64(positive), _f64(negative)
    dap, ddap, m_ap, mdd_ap = _pdist(a, ps, p, eps, squared)
    dan, ddan, m_an, mdd_an = _pdist(a, n, p, eps, squared)
    if swap:
        dpn, ddpn, m_pn, mdd_pn = _pdist(ps, n, p, eps, squared)
        dneg = np.minimum(dan, dpn)
        c_an, c_pn = dmin(dan, dpn), dmin(dpn, dan)
    else:
        dneg = dan
        c_an, c_pn = np.ones_like(dan), np.zeros_like(dan)
        m_pn, ddpn, mdd_pn = 0.0, np.zeros_like(ddan), np.zeros_like(ddan)
    h = dap - dneg + margin
    l = np.maximum(0.0, h)
    l = np.where(np.isnan(h), np.nan, l)
    act = np.where(h > 0, 1.0, 0.0)
    act = np.where(np.isnan(h), np.nan, act)
    s = act[..., None]
    can, cpn = (act * c_an)[..., None], (act * c_pn)[..., None]
    ga = s * ddap - can * ddan
    gp = -s * ddap - cpn * ddpn
    gn = can * ddan + cpn * ddpn
    ml = np.abs(l) + np.where(h > 0, m_ap + m_an + m_pn + abs(margin), 0.0)
    m1 = np.abs(s) * mdd_ap + np.abs(can) * mdd_an
    m2 = np.abs(s) * mdd_ap + np.abs(cpn) * mdd_pn
    m3 = np.abs(can) * mdd_an + np.abs(cpn) * mdd_pn
    return Result(l, (ga, gp, gn), (a.ndim - 1,), ml, (m1, m2, m3))


def contrastive(y_true, distance, margin=1.0):
    d = _f64(distance)
    y = np.broadcast_to(_f64(y_true), d.shape)
    hinge = np.maximum(0.0, margin - d)
    l = y * d * d + (1.0 - y) * hinge * hinge
    g = 2.0 * y * d - 2.0 * (1.0 - y) * hinge
    g = np.where(np.isnan(d), np.nan, g)
    ml = np.abs(y) * d * d + np.abs(1.0 - y) * (abs(margin) + np.abs(d)) ** 2
    mg = 2.0 * (np.abs(y * d) + np.abs(1.0 - y) * (abs(margin) + np.abs(d)))
    return Result(l, (g,), (), ml, (mg,))


def contrastive_pairs(y_true, x1, x2, margin=1.0, eps=1e-6):
    a, b = _f64(x1), _f64(x2)
    t = _f64(y_true)
    d, dd, md, mdd = _pdist(a, b, 2, eps)
    c = contrastive(t, d, margin)
    dl_dd = c.grads[0][..., None]
    g1 = dl_dd * dd
    # the chain through d: an error of md in d moves dl/dd by 2 md
    m1 = c.mg[0][..., None] * (np.abs(dd) + mdd) + 2.0 * (np.abs(t) + np.abs(1.0 - t))[..., None] * md[..., None] * np.abs(dd)
    ml = c.ml + 2.0 * (np.abs(t * d) + np.abs(1.0 - t) * (abs(margin) + d)) * md
    return Result(c.l, (g1, -g1), (a.ndim - 1,), ml, (m1, m1))


def margin_ranking(x1, x2, y, margin=0.0):
    a, b = _f64(x1), _f64(x2)
    t = np.broadcast_to(_f64(y), a.shape)
    h = -t * (a - b) + margin
    l = np.maximum(0.0, h)
    l = np.where(np.isnan(h), np.nan, l)
    g1 = np.where(h > 0, -t, 0.0)
    g1 = np.where(np.isnan(h), np.nan, g1)
    ml = np.abs(l) + np.abs(t) * (np.abs(a) + np.abs(b)) + abs(margin)
    return Result(l, (g1, -g1), (), ml)


# ---------------------------------------------------------------------------
# Ranking: pairwise hinge over ordered pairs, O(n^2)
# ---------------------------------------------------------------------------


def pairwise_ranking_reduced(relevance, scores, margin=1.0, groups=None, normalization="all_pairs", reduction="mean"):
    """(value, grad, value_mag, grad_mag) by enumerating every pair."""
    s = _f64(scores)
    r = np.broadcast_to(_f64(relevance), s.shape).ravel()
    sf = s.ravel()
    gr = np.zeros(sf.shape, np.int64) if groups is None else np.broadcast_to(np.asarray(groups), s.shape).ravel()
    n = sf.size
    same = gr[:, None] == gr[None, :]
    ordered = (r[:, None] > r[None, :]) & same  # i more relevant than j
    h = margin - (sf[:, None] - sf[None, :])
    act = ordered & (h > 0)
    total = float(np.sum(np.where(act, h, 0.0)))
    mag = float(np.sum(np.where(act, np.abs(margin) + np.abs(sf[:, None]) + np.abs(sf[None, :]), 0.0)))
    # pair (i, j) active: d/ds_i = -1, d/ds_j = +1
    g = -np.sum(act, axis=1).astype(np.float64) + np.sum(act, axis=0).astype(np.float64)
    if np.isnan(sf).any() or np.isnan(r).any():
        total = float("nan")
    if reduction == "sum":
        return total, g.reshape(s.shape), mag, np.abs(g).reshape(s.shape)
    if reduction != "mean":
        raise ValueError(f"unknown reduction {reduction!r}")
    if normalization == "all_pairs":
        _, counts = np.unique(gr, return_counts=True)
        D = float(np.sum(counts * (counts - 1) // 2))
    elif normalization == "ordered_pairs":
        D = float(np.sum(ordered))
    else:
        raise ValueError(f"unknown normalization {normalization!r}")
    if D == 0:
        return float("nan"), np.zeros(s.shape), 0.0, np.zeros(s.shape)
    return total / D, (g / D).reshape(s.shape), mag / D, (np.abs(g) / D).reshape(s.shape)


def pairwise_ranking_all_active(relevance, scores, margin, groups=None):
    """O(n log n) value and gradient of the "sum" reduction when every ordered
    pair is active (margin > max(s) - min(s)): sum over ordered pairs of
    margin - s_i + s_j, by counting per element the less and more relevant
    elements of its group. Returns (value, grad, pairs, all_pairs)."""
    s = _f64(scores).ravel()
    r = _f64(relevance).ravel()
    gr = np.zeros(s.shape, np.int64) if groups is None else np.asarray(groups).ravel()
    # sort by (group, relevance); per element, the number of elements of its
    # group with a strictly smaller (lo) and strictly larger (hi) relevance
    order = np.lexsort((r, gr))
    rs, gs = r[order], gr[order]
    n = s.size
    idx = np.arange(n)
    gstart = np.searchsorted(gs, gs, side="left")
    gend = np.searchsorted(gs, gs, side="right")
    new_run = np.ones(n, bool)
    new_run[1:] = (gs[1:] != gs[:-1]) | (rs[1:] != rs[:-1])
    end_run = np.ones(n, bool)
    end_run[:-1] = new_run[1:]
    run_start = np.maximum.accumulate(np.where(new_run, idx, 0))
    run_end = (np.minimum.accumulate(np.where(end_run, idx, n)[::-1])[::-1]) + 1
    lo = run_start - gstart
    hi = gend - run_end
    less = np.empty(n, np.int64)
    more = np.empty(n, np.int64)
    less[order] = lo
    more[order] = hi
    pairs = int(np.sum(less))
    value = margin * pairs - float(np.sum(s * less)) + float(np.sum(s * more))
    grad = (more - less).astype(np.float64)
    _, counts = np.unique(gr, return_counts=True)
    return value, grad.reshape(np.shape(scores)), pairs, int(np.sum(counts * (counts - 1) // 2))


# ---------------------------------------------------------------------------
# Adversarial losses and penalties
# ---------------------------------------------------------------------------


def gan_generator(fake_logits, saturating=False):
    x = _f64(fake_logits)
    if saturating:
        return Result(-softplus(x), (-sigmoid(x),), ())
    return Result(softplus(-x), (-sigmoid(-x),), ())


def gan_real(real_logits):
    """The real half of the discriminator loss: softplus(-real)."""
    x = _f64(real_logits)
    return Result(softplus(-x), (-sigmoid(-x),), ())


def gan_fake(fake_logits):
    """The fake half of the discriminator loss: softplus(fake)."""
    x = _f64(fake_logits)
    return Result(softplus(x), (sigmoid(x),), ())


def wasserstein_generator(fake_scores):
    x = _f64(fake_scores)
    return Result(-x, (-np.ones_like(x) + 0.0 * x,), ())


def _identity_result(x, sign):
    x = _f64(x)
    return Result(sign * x, (sign * np.ones_like(x) + 0.0 * x,), ())


def _pair_reduced(r_real, r_fake, weights, reduction):
    wr, wf = (None, None) if weights is None else weights
    vr, (gr,), mr, (mgr,) = reduce(r_real, wr, reduction)
    vf, (gf,), mf, (mgf,) = reduce(r_fake, wf, reduction)
    if reduction == "none":
        return (vr, vf), (gr, gf), (mr, mf), (mgr, mgf)
    return vr + vf, (gr, gf), mr + mf, (mgr, mgf)


def gan_discriminator_reduced(real_logits, fake_logits, weights=None, reduction="mean"):
    """R(softplus(-real)) + R(softplus(fake)); "none": the pair of arrays."""
    return _pair_reduced(gan_real(real_logits), gan_fake(fake_logits), weights, reduction)


def wasserstein_critic_reduced(real_scores, fake_scores, weights=None, reduction="mean"):
    """R(fake) - R(real); "none": the pair (-w_real*real, w_fake*fake)."""
    return _pair_reduced(_identity_result(real_scores, -1.0), _identity_result(fake_scores, 1.0), weights, reduction)


def gradient_penalty(gradients, target=1.0):
    g = _f64(gradients)
    N = g.shape[0]
    rows = g.reshape(N, int(np.prod(g.shape[1:], dtype=np.int64)))
    n = np.sqrt(np.sum(rows * rows, axis=1))
    l = (n - target) ** 2
    nk = n.reshape((N,) + (1,) * (g.ndim - 1))
    safe = np.where(nk > 0, nk, 1.0)
    grad = np.where(nk > 0, 2.0 * (nk - target) * g / safe, 0.0)
    grad = np.where(np.isnan(nk), np.nan, grad)
    ml = np.abs(l) + 2.0 * np.abs(n - target) * (n + abs(target))
    mg = np.abs(grad) + 2.0 * (nk + abs(target)) * np.abs(g) / safe * 2.0
    return Result(l, (grad,), tuple(range(1, g.ndim)), ml, (mg,))


def l2_penalty(arrays, lam):
    """(value, [grad_k]) of lam * sum_k sum(w_k^2)."""
    if isinstance(arrays, np.ndarray):
        arrays = [arrays]
    arrs = [_f64(a) for a in arrays]
    value = lam * sum(float(np.sum(a * a)) for a in arrs)
    return value, [2.0 * lam * a for a in arrs]


# ---------------------------------------------------------------------------
# Reduction
# ---------------------------------------------------------------------------


def reduce(res, weights, reduction):
    """The spec's weighted reduction of a Result.

    Returns (value, grads, value_mag, grad_mags); value is a float for
    "mean"/"sum", an array of the losses shape for "none"; grads are the
    gradients of value (of sum(value) for "none")."""
    L = res.l.shape
    with np.errstate(all="ignore"):
        w = np.ones(L) if weights is None else np.broadcast_to(_f64(weights), L)
        wx = np.expand_dims(w, res.axes) if res.axes else w
        wl = w * res.l
        grads = tuple(wx * g for g in res.grads)
        vm = np.abs(w) * res.ml
        gm = tuple(np.abs(wx) * m for m in res.mg)
        grads = tuple(np.broadcast_to(g, m.shape).copy() for g, m in zip(grads, res.grads))
        gm = tuple(np.broadcast_to(m, g.shape).copy() for m, g in zip(gm, res.grads))
        if reduction == "none":
            return wl, grads, vm, gm
        if reduction == "sum":
            return float(np.sum(wl)), grads, float(np.sum(vm)), gm
        if reduction == "mean":
            if res.l.size == 0:
                return float("nan"), tuple(np.zeros(g.shape) for g in res.grads), 0.0, tuple(np.zeros(g.shape) for g in res.grads)
            D = float(np.sum(w))
            aD = float(np.sum(np.abs(w)))
            k = (1.0 + aD / abs(D)) / abs(D)  # the error of D itself too
            return float(np.sum(wl)) / D, tuple(g / D for g in grads), float(np.sum(vm)) * k, tuple(m * k for m in gm)
    raise ValueError(f"unknown reduction {reduction!r}")


LOSSES = {
    "dice": dice,
    "jaccard": jaccard,
    "tversky": tversky,
    "focal_tversky": focal_tversky,
    "box_iou": box_iou,
    "cosine_similarity": cosine_similarity,
    "cosine_embedding": cosine_embedding,
    "triplet_margin": triplet_margin,
    "contrastive": contrastive,
    "contrastive_pairs": contrastive_pairs,
    "margin_ranking": margin_ranking,
    "gan_generator": gan_generator,
    "wasserstein_generator": wasserstein_generator,
    "gradient_penalty": gradient_penalty,
}


def result(name, *inputs, **options):
    """Result of loss ``name`` in float64."""
    with np.errstate(all="ignore"):
        return LOSSES[name](*inputs, **options)


def reduced(name, *inputs, weights=None, reduction="mean", **options):
    """(value, grads, value_mag, grad_mags) of a call of fl.NAME."""
    with np.errstate(all="ignore"):
        if name == "pairwise_ranking":
            v, g, vm, gm = pairwise_ranking_reduced(*inputs, reduction=reduction, **options)
            return v, (g,), vm, (gm,)
        if name == "gan_discriminator":
            return gan_discriminator_reduced(*inputs, weights=weights, reduction=reduction, **options)
        if name == "wasserstein_critic":
            return wasserstein_critic_reduced(*inputs, weights=weights, reduction=reduction, **options)
        return reduce(LOSSES[name](*inputs, **options), weights, reduction)


# ---------------------------------------------------------------------------
# Combined losses: sum_k c_k loss_k(y_true, y_pred, reduction, weights)
# ---------------------------------------------------------------------------


def term_result(name, y_true, y_pred, **options):
    """A Result for any (y_true, y_pred) loss: regression and binary
    classification losses from the existing references, the rest from here."""
    with np.errstate(all="ignore"):
        if name in ref_regression.LOSSES:
            l, dl = ref_regression.loss(name, y_true, y_pred, **options)
            ml, mdl = ref_regression.magnitude(name, y_true, y_pred, **options)
            return Result(l, (dl,), (), ml, (mdl,))
        cname = ref_classification.canonical(name)
        if cname in ref_classification.BINARY:
            t = ref_classification.terms(cname, y_true, y_pred, **options)
            return Result(t.l, (t.dl,), (), t.ml, (t.mdl,))
        if cname in ref_classification.DENSE_ROWS:
            t = ref_classification.terms(cname, y_true, y_pred, **options)
            return Result(t.l, (t.dl,), (t.axis,), t.ml, (t.mdl,))
        return LOSSES[name](y_true, y_pred, **options)


def combined(terms, y_true, y_pred, weights=None, reduction="mean"):
    """terms: [(coef, name, options)]. Returns (value, grad, value_mag, grad_mag)
    of sum_k coef_k * fl.name_k(y_true, y_pred, reduction, weights, **options_k)."""
    value, grad, vm, gm = 0.0, 0.0, 0.0, 0.0
    for c, name, opts in terms:
        v, (g,), m, (mg,) = reduce(term_result(name, y_true, y_pred, **opts), weights, reduction)
        value = value + c * v
        grad = grad + c * g
        vm = vm + abs(c) * m
        gm = gm + abs(c) * mg
    return value, grad, vm, gm
