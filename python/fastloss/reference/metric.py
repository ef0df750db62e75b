"""Metric learning and ranking losses: cosine_similarity, cosine_embedding,
triplet_margin, contrastive, contrastive_pairs, margin_ranking and the
pairwise ranking hinge."""

import numpy as np

from ._common import _f64
from ._result import Result, dmin


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
