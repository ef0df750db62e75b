"""pairwise_ranking (the ranking driver) against the NumPy float64 reference
of fastloss.reference.structured: against the O(n^2) enumeration of pairs
(ties, pairs exactly at the hinge, groups, both normalizations), any shape,
strided inputs and other dtypes, the errors, and n = 200000 against the
counting identity of every pair active.
"""

import numpy as np
import pytest

import fastloss as fl
from fastloss.reference import structured as ref
from checks import DTYPES, assert_close
from structured_checks import D, ENTRY, call, check_pairwise, dtype_id, pairwise_data, rtol_for

# --------------------------------------------------------------------------
# pairwise_ranking
# --------------------------------------------------------------------------


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
