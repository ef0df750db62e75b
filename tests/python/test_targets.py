"""Every SIMD target compiled into fastloss and supported by this CPU, forced one
at a time: each loss against the reference on every size from 1 to 40 (all the
loop-tail lengths of every vector width) and on 1000."""

import numpy as np
import pytest

import fastloss as fl
import fastloss.testing
import test_regression as edge
from checks import CONFIG_IDS, CONFIGS, DTYPES, REDUCTIONS, check_call, make_data

TARGETS = fastloss.testing.simd_targets()


def test_targets_listed():
    assert isinstance(TARGETS, list) and TARGETS
    assert len(set(TARGETS)) == len(TARGETS)
    assert fl.simd_target() in TARGETS


@pytest.mark.parametrize("target", TARGETS)
def test_force_target_is_reported_and_restored(target):
    before = fl.simd_target()
    with fastloss.testing.force_target(target):
        assert fl.simd_target() == target
    assert fl.simd_target() == before


def test_force_target_restored_after_exception():
    before = fl.simd_target()
    with pytest.raises(RuntimeError, match="inside"):
        with fastloss.testing.force_target(TARGETS[-1]):
            raise RuntimeError("inside")
    assert fl.simd_target() == before


@pytest.mark.parametrize("config", CONFIGS, ids=CONFIG_IDS)
@pytest.mark.parametrize("target", TARGETS)
def test_every_loss_on_target(target, config):
    name, opts = config
    with fastloss.testing.force_target(target):
        for dtype in DTYPES:
            for n in range(1, 41):
                y, p = make_data(name, opts, (n,), dtype, n)
                check_call(name, opts, y, p, reduction="none")
                if n in (1, 7, 16, 17, 33):
                    check_call(name, opts, y, p, reduction="mean")
            y, p = make_data(name, opts, (1000,), dtype, 0)
            for reduction in REDUCTIONS:
                check_call(name, opts, y, p, reduction=reduction)
                check_call(name, opts, y[::-3], p[::-3], reduction=reduction)
            # NaN, in the vector body and in the tail
            y, p = make_data(name, opts, (37,), dtype, 1)
            y, p = y.copy(), p.copy()
            p[[3, 36]] = np.nan
            y[[10, 35]] = np.nan
            for reduction in REDUCTIONS:
                check_call(name, opts, y, p, reduction=reduction)


@pytest.mark.parametrize("target", TARGETS)
def test_large_threaded_call_on_target(target, restore_threads):
    fl.set_num_threads(2)
    with fastloss.testing.force_target(target):
        for dtype in DTYPES:
            y, p = make_data("log_cosh", {}, (1_000_001,), dtype, 3)
            check_call("log_cosh", {}, y, p, reduction="sum")
            y, p = make_data("poisson_nll", {}, (1_000_001,), dtype, 3)
            check_call("poisson_nll", {}, y, p, reduction="mean")


EDGE_CASES = [
    ("log_cosh_huge", lambda d: edge.test_log_cosh_huge_residuals(d)),
    ("log_cosh_tiny", lambda d: edge.test_log_cosh_tiny_residuals(d)),
    ("msle_domain", lambda d: edge.test_msle_domain_edges(d)),
    ("poisson_overflow", lambda d: [edge.test_poisson_exp_overflow_is_inf(f, d) for f in (False, True)]),
    ("poisson_log_zero", lambda d: [edge.test_poisson_log_of_zero(f, d) for f in (False, True)]),
    ("poisson_negative_rate", lambda d: edge.test_poisson_negative_rate_is_nan(d)),
    ("huber_at_delta", lambda d: edge.test_huber_continuity_at_delta(0.5, d)),
    ("smooth_l1_beta0", lambda d: [edge.test_smooth_l1_beta0_is_mae(r, d) for r in REDUCTIONS]),
    ("mae_sign", lambda d: edge.test_mae_sign_at_zero(d)),
    ("mape_eps", lambda d: edge.test_mape_zero_targets_use_eps(d)),
]


@pytest.mark.parametrize("case", EDGE_CASES, ids=[c[0] for c in EDGE_CASES])
@pytest.mark.parametrize("target", TARGETS)
def test_edge_cases_on_target(target, case):
    """The SIMD math pitfalls (Log(0), Exp overflow, Min/Max and NaN) differ by
    instruction set: run the edge cases of test_regression on each target."""
    with fastloss.testing.force_target(target):
        for dtype in DTYPES:
            case[1](dtype)
