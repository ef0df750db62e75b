"""Property tests (hypothesis): arbitrary finite inputs of arbitrary shapes and
weights, every loss against the reference; and identities between reductions."""

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastloss as fl
from checks import CONFIG_IDS, CONFIGS, DTYPES, REDUCTIONS, assert_close, check_call, rtol_for


def dtype_id(dtype):
    return np.dtype(dtype).name


def floats(dtype, lo, hi):
    """Finite floats of ``dtype`` in [lo, hi] (bounds rounded inward to dtype)."""
    width = 32 if np.dtype(dtype) == np.float32 else 64
    flo, fhi = np.asarray(lo, dtype), np.asarray(hi, dtype)
    if flo < lo:
        flo = np.nextafter(flo, fhi)
    if fhi > hi:
        fhi = np.nextafter(fhi, flo)
    return st.floats(float(flo), float(fhi), allow_nan=False, allow_infinity=False, allow_subnormal=False, width=width)


def domains(name, opts):
    """(y_true range, y_pred range) where the loss is finite."""
    if name == "msle":
        return (-0.999, 1e3), (-0.999, 1e3)
    if name == "poisson_nll":
        if opts.get("log_input", True):
            return (0.0, 1e3), (-30.0, 30.0)
        return (0.0, 1e3), (1e-3, 1e3)
    if name == "log_cosh":
        return (-1e6, 1e6), (-1e6, 1e6)
    return (-1e3, 1e3), (-1e3, 1e3)


@st.composite
def cases(draw, name, opts, dtype):
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=9))
    (ylo, yhi), (plo, phi) = domains(name, opts)
    y = draw(hnp.arrays(dtype, shape, elements=floats(dtype, ylo, yhi)))
    p = draw(hnp.arrays(dtype, shape, elements=floats(dtype, plo, phi)))
    if (ylo, yhi) == (plo, phi) and draw(st.booleans()):
        # ties and near-ties: r == 0 and tiny r are where kinks and cancellation live
        mask = draw(hnp.arrays(np.bool_, shape))
        p = np.where(mask, y, p).astype(dtype)
    reduction = draw(st.sampled_from(REDUCTIONS))
    weights = None
    if draw(st.booleans()):
        drop = draw(st.integers(0, len(shape)))
        wshape = tuple(1 if draw(st.booleans()) else s for s in shape[drop:])
        weights = draw(hnp.arrays(np.float64, wshape, elements=st.floats(0.1, 10.0)))
    return y, p, reduction, weights


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
@pytest.mark.parametrize("config", CONFIGS, ids=CONFIG_IDS)
def test_matches_reference(config, dtype):
    name, opts = config

    @settings(max_examples=25)
    @given(cases(name, opts, dtype))
    def prop(case):
        y, p, reduction, weights = case
        check_call(name, opts, y, p, reduction=reduction, weights=weights)

    prop()


@pytest.mark.parametrize("dtype", DTYPES, ids=dtype_id)
@pytest.mark.parametrize("config", CONFIGS, ids=CONFIG_IDS)
def test_reductions_agree(config, dtype):
    """sum == sum(none), mean == sum / n, grad(mean) == grad(sum) / n."""
    name, opts = config
    fn = getattr(fl, name)
    rtol = 4 * rtol_for(name, dtype)

    @settings(max_examples=15)
    @given(cases(name, opts, dtype))
    def prop(case):
        y, p, _, _ = case
        if p.size == 0:
            return
        none = fn(y, p, reduction="none", **opts).astype(np.float64)
        s = fn(y, p, reduction="sum", **opts)
        m = fn(y, p, reduction="mean", **opts)
        mag = np.sum(np.abs(none)) + 1e-300
        assert_close(s, np.sum(none), rtol=rtol, mag=mag, what="sum vs none")
        assert_close(m, np.float64(s) / p.size, rtol=rtol, mag=mag / p.size, what="mean vs sum")
        gs = fn.grad(y, p, reduction="sum", **opts).astype(np.float64)
        gm = fn.grad(y, p, reduction="mean", **opts).astype(np.float64)
        gn = fn.grad(y, p, reduction="none", **opts).astype(np.float64)
        np.testing.assert_array_equal(gs, gn)
        assert_close(gm, gs / p.size, rtol=rtol, atol=1e-36, what="grad mean vs sum")

    prop()
