"""tweedie (scikit-learn's mean_tweedie_deviance), added through the registry
alone: its functor, its registry row and its NumPy reference. Checked against
the reference and scikit-learn, by finite differences, for every reduction,
weights, dtypes, strides, out= and the fused call."""

import numpy as np
import pytest

import fastloss as fl
import elementwise_checks as checks

SEEDS = [0, 1, 2]


def _tweedie_data(rng, shape, dtype, power):
    mu = rng.uniform(0.1, 4.0, size=shape)
    if power >= 2:
        y = rng.uniform(0.1, 5.0, size=shape)
    elif power >= 1:
        y = rng.poisson(2.0, size=shape).astype(np.float64)
    else:
        y = rng.normal(1.0, 2.0, size=shape)
    return y.astype(dtype), mu.astype(dtype)


CASES = [("tweedie", {"power": p}) for p in (0.0, 1.0, 1.5, 2.0, 3.0, -0.5)]
FUSED = [("tweedie", {"power": 1.5})]


def _data(name, opts, rng, shape, dtype):
    return _tweedie_data(rng, shape, dtype, opts.get("power", 0.0))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name,opts", CASES)
def test_against_reference(name, opts, seed, reduction, dtype):
    rng = np.random.default_rng(seed)
    y, p = _data(name, opts, rng, (37, 5), dtype)
    checks.against_reference(name, opts, y, p, rng.uniform(0, 2, size=(37, 1)), reduction)


@pytest.mark.parametrize("name,opts", CASES)
def test_finite_differences(name, opts):
    y, p = _data(name, opts, np.random.default_rng(5), (40,), np.float64)
    checks.finite_differences(name, opts, y, p)


@pytest.mark.parametrize("power", [0.0, 1.0, 1.5, 2.0, 3.0, -0.5])
def test_tweedie_matches_sklearn(power):
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(4)
    y, mu = _tweedie_data(rng, (200,), np.float64, power)
    w = rng.uniform(0.5, 2.0, 200)
    expected = metrics.mean_tweedie_deviance(y, mu, power=power, sample_weight=w)
    assert fl.tweedie(y, mu, power=power, weights=w) == pytest.approx(expected, rel=1e-12)


def test_tweedie_special_powers_are_the_poisson_and_gamma_deviances():
    rng = np.random.default_rng(6)
    y = rng.poisson(3.0, 50).astype(np.float64)
    mu = rng.uniform(0.5, 5.0, 50)
    with np.errstate(divide="ignore", invalid="ignore"):
        ylogy = np.where(y == 0, 0.0, y * np.log(y / mu))
    np.testing.assert_allclose(fl.tweedie(y, mu, power=1.0, reduction="none"),
                               2 * (ylogy - y + mu), rtol=1e-13)
    y = rng.uniform(0.5, 4.0, 50)
    np.testing.assert_allclose(fl.tweedie(y, mu, power=2.0, reduction="none"),
                               2 * (np.log(mu / y) + y / mu - 1), rtol=1e-12, atol=1e-15)
    # Near p = 1 and p = 2 the general formula approaches the special ones.
    assert fl.tweedie(y, mu, power=2.0 + 1e-7) == pytest.approx(fl.tweedie(y, mu, power=2.0), rel=1e-5)


@pytest.mark.parametrize("power", [0.5, 0.999, float("nan"), float("inf")])
def test_tweedie_power_between_0_and_1_is_an_error(power):
    with pytest.raises(ValueError, match="tweedie: power must be a finite number <= 0 or >= 1"):
        fl.tweedie(np.ones(3), np.ones(3), power=power)


@pytest.mark.parametrize("name,opts", FUSED)
def test_strided_inputs_and_out(name, opts):
    y, p = _data(name, opts, np.random.default_rng(7), (30, 8), np.float32)
    checks.strided_inputs_and_out(name, opts, y, p)


@pytest.mark.parametrize("name,opts", FUSED)
def test_fused_combination(name, opts):
    y, p = _data(name, opts, np.random.default_rng(8), (50,), np.float64)
    checks.fused_combination(name, opts, y, p)


def test_nan_propagates():
    assert np.isnan(fl.tweedie(np.array([1.0]), np.array([np.nan]), power=1.5))
    assert np.isnan(fl.tweedie.grad(np.array([1.0]), np.array([np.nan]), power=1.5)).all()
