"""Checks every elementwise loss of the registry must pass, written once:
against fastloss.reference (every reduction, weights, both dtypes), finite
differences, strided inputs with a strided out= between sentinels, and the
fused call. A loss's test file supplies its data and its cases."""

import numpy as np
import pytest

import fastloss as fl
from fastloss import reference as ref

RTOL = {np.float32: 2e-5, np.float64: 1e-12}


def against_reference(name, opts, y, p, w, reduction):
    dtype = p.dtype.type
    for weights in (None, w):
        v, g = fl.LOSSES[name].value_and_grad(y, p, reduction=reduction, weights=weights, **opts)
        rv, rg = ref.value_and_grad(name, y, p, reduction=reduction, weights=weights, **opts)
        assert np.asarray(v).dtype == dtype and g.dtype == dtype and g.shape == p.shape
        scale = np.max(np.abs(rv)) if np.ndim(rv) else abs(rv)
        np.testing.assert_allclose(v, rv, rtol=RTOL[dtype], atol=RTOL[dtype] * (1 + scale))
        gscale = np.max(np.abs(rg)) + 1e-300
        np.testing.assert_allclose(g, rg, rtol=RTOL[dtype], atol=RTOL[dtype] * gscale)
        assert np.array_equal(fl.LOSSES[name](y, p, reduction=reduction, weights=weights, **opts), v)
        assert np.array_equal(fl.LOSSES[name].grad(y, p, reduction=reduction, weights=weights, **opts), g)


def finite_differences(name, opts, y, p, h=1e-6):
    g = fl.LOSSES[name].grad(y, p, reduction="sum", **opts)
    for i in range(0, p.size, 7):
        e = np.zeros_like(p)
        e[i] = h
        num = (fl.LOSSES[name](y, p + e, reduction="sum", **opts)
               - fl.LOSSES[name](y, p - e, reduction="sum", **opts)) / (2 * h)
        assert num == pytest.approx(g[i], rel=1e-5, abs=1e-7), (i, y[i], p[i])


def strided_inputs_and_out(name, opts, y, p):
    ys, ps = y[::3, ::2], p[::3, ::2]
    v, g = fl.LOSSES[name].value_and_grad(ys, ps, **opts)
    v2, g2 = fl.LOSSES[name].value_and_grad(np.ascontiguousarray(ys), np.ascontiguousarray(ps), **opts)
    assert v == v2 and np.array_equal(g, g2)
    buf = np.full((2 * ps.shape[0] + 2, ps.shape[1]), 7.0, p.dtype)
    out = buf[1:-1:2]  # every other row: strided, sentinels between and around
    fl.LOSSES[name].grad(ys, ps, out=out, **opts)
    assert np.array_equal(out, g2)
    assert (buf[0] == 7).all() and (buf[-1] == 7).all() and (buf[2:-1:2] == 7).all()


def fused_combination(name, opts, y, p):
    loss = 0.25 * fl.mse + 2.0 * fl.LOSSES[name].with_options(**opts)
    v, g = loss.value_and_grad(y, p)
    v1, g1 = fl.mse.value_and_grad(y, p)
    v2, g2 = fl.LOSSES[name].value_and_grad(y, p, **opts)
    assert v == pytest.approx(0.25 * v1 + 2.0 * v2, rel=1e-13)
    np.testing.assert_allclose(g, 0.25 * g1 + 2.0 * g2, rtol=1e-13, atol=1e-16)
