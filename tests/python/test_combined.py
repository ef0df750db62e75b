"""Combined losses (fl.Combined): against the reference sum of their terms
(fastloss.reference.structured) and the sum of the separate calls (type and
repr, regression terms, empty and NaN inputs, arithmetic, with_options, terms
of mixed kinds, errors; the checker is structured_checks.check_combined), and
the seams of combined losses that mix fused terms (the elementwise losses, one
pass in C++) with terms that run on their own (dice, row-wise losses, boxes,
...):

- ``out=`` may be ``y_pred`` or ``y_true`` itself (as for every single loss):
  no term reads an input after the gradient was written over it;
- an error in any term (an option, a shape) leaves ``out=`` untouched;
- ``out=`` is checked with the single losses' messages (named "combined")
  whatever the terms are.

Every output lies inside a larger buffer of sentinels whose margins must stay
unchanged; results are compared with the sum of the separate calls.
"""

import numpy as np
import pytest

import fastloss as fl
from checks import DTYPES, REDUCTIONS
from structured_checks import REG_TERMS, check_combined, dtype_id, make_boxes, regression_data, relayout

SENTINEL = 12345.5
PAD = 5


def framed(a):
    """A copy of ``a`` inside a larger buffer of sentinels: (buffer, view)."""
    a = np.asarray(a)
    buf = np.full(a.size + 2 * PAD, SENTINEL, a.dtype)
    view = buf[PAD:PAD + a.size].reshape(a.shape)
    view[...] = a
    return buf, view


def margins_intact(buf):
    return np.all(buf[:PAD] == SENTINEL) and np.all(buf[-PAD:] == SENTINEL)


def seg_data(dtype, shape=(4, 30), seed=0):
    rng = np.random.default_rng(seed)
    y = (rng.random(shape) < 0.4).astype(dtype)
    p = rng.uniform(0.02, 0.98, shape).astype(dtype)
    return y, p


# (loss, [(coefficient, single loss, options)]): fused + other terms, others only, fused only
MIXED = [
    (fl.mse + fl.dice, [(1.0, fl.mse, {}), (1.0, fl.dice, {})]),
    (0.5 * fl.bce + 0.3 * fl.jaccard + fl.mae,
     [(0.5, fl.bce, {}), (0.3, fl.jaccard, {}), (1.0, fl.mae, {})]),
    (fl.huber.with_options(delta=0.25) - 0.5 * fl.dice.with_options(axis=1) + 2.0 * fl.tversky.with_options(axis=1),
     [(1.0, fl.huber, {"delta": 0.25}), (-0.5, fl.dice, {"axis": 1}), (2.0, fl.tversky, {"axis": 1})]),
    (fl.dice + fl.jaccard, [(1.0, fl.dice, {}), (1.0, fl.jaccard, {})]),
    (0.7 * fl.dice.with_options(axis=1) + fl.focal_tversky.with_options(axis=1),
     [(0.7, fl.dice, {"axis": 1}), (1.0, fl.focal_tversky, {"axis": 1})]),
    (fl.mse + 0.5 * fl.mae, [(1.0, fl.mse, {}), (0.5, fl.mae, {})]),
]
IDS = [repr(m[0]) for m in MIXED]


def separate(terms, y, p, **kw):
    """The sum of the separate calls, in float64."""
    value, grad = 0.0, 0.0
    for c, loss, opts in terms:
        v, g = loss.value_and_grad(y, p, **kw, **opts)
        value = value + c * np.asarray(v, np.float64)
        grad = grad + c * g.astype(np.float64)
    return value, grad


def assert_matches(v, g, ev, eg, dtype):
    tol = 64 * float(np.finfo(dtype).eps)
    np.testing.assert_allclose(np.asarray(v, np.float64), ev, rtol=tol, atol=tol * np.max(np.abs(ev)))
    np.testing.assert_allclose(g.astype(np.float64), eg, rtol=tol, atol=tol * np.max(np.abs(eg)))


def kwargs_cases(p):
    # a scalar weight broadcasts to the per-element losses of every term
    return [dict(), dict(reduction="sum"), dict(reduction="sum", weights=1.75), dict(weights=0.5)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", MIXED, ids=IDS)
def test_out_is_y_pred(case, dtype):
    loss, terms = case
    y, p = seg_data(dtype)
    for kw in kwargs_cases(p):
        ev, eg = separate(terms, y, p, **kw)
        for method in ("grad", "value_and_grad"):
            buf, pp = framed(p)
            r = getattr(loss, method)(y, pp, out=pp, **kw)
            v, g = r if method == "value_and_grad" else (ev, r)
            assert g is pp
            assert margins_intact(buf)
            assert_matches(v, g, ev, eg, dtype)
            if method == "value_and_grad":
                assert v.dtype == dtype


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", MIXED, ids=IDS)
def test_out_is_y_true(case, dtype):
    loss, terms = case
    y, p = seg_data(dtype, seed=1)
    for kw in kwargs_cases(p):
        ev, eg = separate(terms, y, p, **kw)
        for method in ("grad", "value_and_grad"):
            buf, yy = framed(y)
            r = getattr(loss, method)(yy, p, out=yy, **kw)
            v, g = r if method == "value_and_grad" else (ev, r)
            assert g is yy
            assert margins_intact(buf)
            assert_matches(v, g, ev, eg, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", MIXED, ids=IDS)
def test_out_and_fresh_results(case, dtype):
    """out= apart from the inputs, and no out=: the sum of the separate calls;
    the inputs are not modified."""
    loss, terms = case
    y, p = seg_data(dtype, seed=2)
    y0, p0 = y.copy(), p.copy()
    for kw in kwargs_cases(p):
        ev, eg = separate(terms, y, p, **kw)
        buf, out = framed(np.zeros_like(p))
        v, g = loss.value_and_grad(y, p, out=out, **kw)
        assert g is out and margins_intact(buf)
        assert_matches(v, g, ev, eg, dtype)
        v2, g2 = loss.value_and_grad(y, p, **kw)
        assert_matches(v2, g2, ev, eg, dtype)
        assert_matches(loss(y, p, **kw), loss.grad(y, p, **kw), ev, eg, dtype)
        # a strided out=
        big = np.full((p.shape[0], 2 * p.shape[1]), SENTINEL, dtype)
        g3 = loss.grad(y, p, out=big[:, ::2], **kw)
        assert np.all(big[:, 1::2] == SENTINEL)
        assert_matches(ev, g3, ev, eg, dtype)
    np.testing.assert_array_equal(y, y0)
    np.testing.assert_array_equal(p, p0)


def test_the_reported_case():
    """fl.mse + fl.dice with out=y_pred gave 1.258 where the terms sum to
    0.693: dice read the gradient written over y_pred."""
    y, p = seg_data(np.float64, (8, 8), seed=3)
    ev, eg = separate([(1.0, fl.mse, {}), (1.0, fl.dice, {})], y, p)
    pp = p.copy()
    v, g = (fl.mse + fl.dice).value_and_grad(y, pp, out=pp)
    assert g is pp
    np.testing.assert_allclose(v, fl.mse(y, p) + fl.dice(y, p), rtol=1e-14)
    np.testing.assert_allclose(g, eg, rtol=1e-13, atol=1e-16)


# --------------------------------------------------------------------------
# An error in any term: out= untouched
# --------------------------------------------------------------------------

FAILING = [
    # a later, non-fused term with a bad option
    lambda: fl.mse + fl.dice.with_options(axis=5),
    lambda: 0.5 * fl.bce + fl.mae + fl.jaccard.with_options(smooth=-1.0),
    lambda: fl.dice + fl.jaccard.with_options(axis=5),
    lambda: fl.dice.with_options(axis=5) + fl.mse,
    # a fused term with a bad option
    lambda: fl.huber.with_options(delta=-1.0) + fl.dice,
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("make", FAILING, ids=[f"failing{i}" for i in range(len(FAILING))])
def test_error_leaves_out_untouched(make, dtype):
    loss = make()
    y, p = seg_data(dtype)
    for method in ("grad", "value_and_grad"):
        for kw in (dict(), dict(reduction="sum")):
            buf = np.full(p.size + 2 * PAD, SENTINEL, dtype)
            out = buf[PAD:-PAD].reshape(p.shape)
            with pytest.raises(ValueError):
                getattr(loss, method)(y, p, out=out, **kw)
            assert np.all(buf == SENTINEL), (loss, method, kw)
            # out= is y_pred: y_pred is unchanged
            pp = p.copy()
            with pytest.raises(ValueError):
                getattr(loss, method)(y, pp, out=pp, **kw)
            np.testing.assert_array_equal(pp, p)


@pytest.mark.parametrize("dtype", DTYPES)
def test_per_element_shape_mismatch_leaves_out_untouched(dtype):
    """reduction='none' of per-element and per-image terms is a ValueError,
    found before out= is written."""
    y, p = seg_data(dtype)
    for loss in (0.5 * fl.bce + 0.5 * fl.dice.with_options(axis=1),
                 fl.dice.with_options(axis=1) + fl.jaccard,
                 fl.dice + fl.mse + fl.jaccard.with_options(axis=1)):
        buf = np.full(p.size + 2 * PAD, SENTINEL, dtype)
        out = buf[PAD:-PAD].reshape(p.shape)
        with pytest.raises(ValueError, match="reduction='none'"):
            loss.value_and_grad(y, p, reduction="none", out=out)
        assert np.all(buf == SENTINEL), loss
        with pytest.raises(ValueError, match="reduction='none'"):
            loss(y, p, reduction="none")


@pytest.mark.parametrize("dtype", DTYPES)
def test_bad_inputs_leave_out_untouched(dtype):
    y, p = seg_data(dtype)
    for loss in (fl.mse + fl.dice, fl.dice + fl.mse, fl.dice + fl.jaccard, fl.mse + fl.mae):
        for yb, pb, weights in ((y[:, :-1], p, None), (y, p.astype(np.complex64), None),
                                (y, p, np.ones(3))):
            buf = np.full(p.size + 2 * PAD, SENTINEL, dtype)
            out = buf[PAD:-PAD].reshape(p.shape)
            with pytest.raises((ValueError, TypeError)):
                loss.grad(yb, pb, out=out, weights=weights)
            assert np.all(buf == SENTINEL), loss


# --------------------------------------------------------------------------
# out= checked with the single losses' messages
# --------------------------------------------------------------------------


def bad_outs(p):
    dtype = p.dtype
    other = np.float64 if dtype == np.float32 else np.float32
    ro = np.zeros_like(p)
    ro.flags.writeable = False
    raw = np.zeros(p.size * p.itemsize + 1, np.uint8)[1:].view(dtype).reshape(p.shape)  # misaligned
    return [
        ("list", p.tolist()),
        ("scalar", 1.0),
        ("read-only", ro),
        ("float16", np.zeros(p.shape, np.float16)),
        ("int32", np.zeros(p.shape, np.int32)),
        ("other float", np.zeros(p.shape, other)),
        ("byte-swapped", np.zeros(p.shape, np.dtype(dtype).newbyteorder())),
        ("shape", np.zeros(p.shape[::-1], dtype)),
        ("flat", np.zeros(p.size, dtype)),
        ("0-d", np.zeros((), dtype)),
        ("misaligned", raw),
    ]


@pytest.mark.parametrize("dtype", DTYPES)
def test_bad_out_messages(dtype):
    y, p = seg_data(dtype)
    for what, bad in bad_outs(p):
        with pytest.raises((TypeError, ValueError)) as single:
            fl.dice.grad(y, p, out=bad)
        expected = str(single.value)
        assert expected.startswith("dice: out"), (what, expected)
        expected = "combined" + expected[len("dice"):]
        for loss in (fl.dice + fl.jaccard, fl.dice.with_options(axis=1) - 0.5 * fl.tversky,
                     fl.mse + fl.dice, fl.dice + fl.mse, fl.mse + fl.mae):
            for method in ("grad", "value_and_grad"):
                before = np.array(bad, copy=True) if isinstance(bad, np.ndarray) else None
                with pytest.raises(type(single.value)) as got:
                    getattr(loss, method)(y, p, out=bad)
                assert str(got.value) == expected, (what, repr(loss), method)
                if before is not None:
                    np.testing.assert_array_equal(bad, before)


def test_good_out_of_non_fused_terms():
    """Strided, Fortran-ordered and 0-d outputs are accepted, as by the single losses."""
    for dtype in DTYPES:
        y, p = seg_data(dtype)
        loss = fl.dice + fl.jaccard
        ev, eg = separate([(1.0, fl.dice, {}), (1.0, fl.jaccard, {})], y, p)
        f = np.zeros(p.shape, dtype, order="F")
        assert loss.grad(y, p, out=f) is f
        assert_matches(ev, f, ev, eg, dtype)
        r = np.zeros(p.shape, dtype)[::-1]
        assert loss.grad(y, p[::-1], out=r) is r
        v = np.full((), SENTINEL, dtype)
        y0 = np.asarray(dtype(1.0))
        p0 = np.asarray(dtype(0.7))
        ev0, eg0 = separate([(1.0, fl.dice, {}), (1.0, fl.jaccard, {})], y0, p0)
        assert loss.grad(y0, p0, out=v) is v
        np.testing.assert_allclose(v, eg0, rtol=1e-5)


@pytest.mark.parametrize("dtype", DTYPES)
def test_target_errors_of_fused_terms_leave_out_untouched(dtype):
    """A fused term's input check (targets in [0, 1]) fails after the other
    terms ran: still nothing written."""
    rng = np.random.default_rng(4)
    y = (rng.random(40) < 0.5).astype(dtype)
    y[7] = 2.0
    d = rng.uniform(0.1, 0.9, 40).astype(dtype)
    for loss in (fl.contrastive + fl.dice, fl.dice + 0.5 * fl.bce, fl.jaccard - fl.contrastive + fl.mse):
        for method in ("grad", "value_and_grad"):
            buf = np.full(d.size + 2 * PAD, SENTINEL, dtype)
            with pytest.raises(ValueError, match="y_true"):
                getattr(loss, method)(y, d, out=buf[PAD:-PAD])
            assert np.all(buf == SENTINEL), loss
            dd = d.copy()
            with pytest.raises(ValueError, match="y_true"):
                getattr(loss, method)(y, dd, out=dd)
            np.testing.assert_array_equal(dd, d)


# --------------------------------------------------------------------------
# Against the reference sum of the terms
# --------------------------------------------------------------------------


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
        loss(y, p.astype(np.complex64))  # (integers are float64, as lists)
    with pytest.raises(ValueError):
        loss(y, p[:4])
    with pytest.raises(ValueError, match="weights"):
        loss(y, p, weights=np.ones(4))
    with pytest.raises(ValueError, match="out"):
        loss.grad(y, p, out=np.zeros(4))
