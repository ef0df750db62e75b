"""Detection losses: box_iou (IoU, GIoU, DIoU, CIoU of (x1, y1, x2, y2) boxes)."""

import math

import numpy as np

from ._common import _f64
from ._result import Result, dmax, dmin

PI = math.pi


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
