"""fastloss.reference, the NumPy float64 specification of every loss: it covers
every loss fastloss exports, computes in float64, imports without the compiled
extension, agrees with the library through its one entry point
(value_and_grad); the command line (python -m fastloss) runs on it; and the
benchmarks' NumPy baselines (bench/impls*.py, the fast expressions a user
writes, timed as "numpy") compute the reference's numbers."""

import os
import subprocess
import sys

import numpy as np
import pytest

import fastloss as fl
from fastloss import reference as ref
from fastloss.__main__ import _OPTIONS, _data
from fastloss.__main__ import main as cli_main

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BENCH = os.path.join(ROOT, "bench")
sys.path.append(BENCH)

import impls  # noqa: E402  (bench/impls.py)
import impls_classification  # noqa: E402
import impls_structured  # noqa: E402


def _rel_err(a, b):
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    if b.size == 0:
        return 0.0
    return float(np.max(np.abs(a - b))) / max(float(np.max(np.abs(b))), 1e-300)


def _grads(g):
    """A gradient result as a tuple of arrays (one array, a tuple or l2_penalty's list)."""
    return tuple(g) if isinstance(g, (tuple, list)) else (g,)


def _other_inputs(name, dtype, rng):
    """(args, options) of a small valid call of fl.OTHER_LOSSES[name]."""

    def normal(*shape):
        return rng.standard_normal(shape).astype(dtype)

    def signs(n):
        return rng.choice([-1.0, 1.0], n).astype(dtype)

    if name == "cosine_embedding":
        return (normal(8, 5), normal(8, 5), signs(8)), {}
    if name == "triplet_margin":
        return (normal(8, 5), normal(8, 5), normal(8, 5)), {}
    if name == "contrastive_pairs":
        return ((rng.random(8) < 0.5).astype(dtype), normal(8, 5), 0.3 * normal(8, 5)), {}
    if name == "margin_ranking":
        return (normal(20), normal(20), signs(20)), {}
    if name == "gaussian_nll":
        return (normal(20), normal(20), rng.uniform(0.1, 2.0, 20).astype(dtype)), {}
    if name == "pairwise_ranking":
        return (rng.integers(0, 3, 20).astype(dtype), normal(20)), {}
    if name in ("gan_discriminator", "wasserstein_critic"):
        return (normal(20), normal(20)), {}
    if name in ("gan_generator", "wasserstein_generator"):
        return (normal(20),), {}
    if name == "gradient_penalty":
        return (normal(6, 3, 4),), {}
    if name == "l2_penalty":
        return ([normal(7), normal(3, 2)], 0.1), {}
    raise KeyError(name)


# --------------------------------------------------------------------------
# Coverage, dtype, independence from the extension


def test_every_loss_has_a_reference():
    assert set(fl.LOSSES) == set(ref.LOSSES)
    assert set(fl.OTHER_LOSSES) == set(ref.OTHER_LOSSES)
    for name in [*fl.LOSSES, *fl.OTHER_LOSSES]:
        assert ref.family(name) in (ref.regression, ref.classification, ref.structured)
    for alias in ("mean_squared_error", "mean_absolute_error", "bce", "cce", "sparse_cce"):
        assert getattr(fl, alias).name == ref.canonical(alias)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("name", list(fl.LOSSES))
def test_reference_is_float64(name, reduction):
    y, p = _data(name, 200, np.float32, np.random.default_rng(0))
    v, g = ref.value_and_grad(name, y, p, reduction=reduction, **_OPTIONS.get(name, {}))
    assert np.asarray(v).dtype == np.float64
    assert isinstance(g, np.ndarray) and g.dtype == np.float64 and g.shape == p.shape
    if reduction == "none":  # the per-sample losses (0-d for one dice score over the whole array)
        assert isinstance(v, (np.ndarray, np.float64))
    else:
        assert isinstance(v, float)


@pytest.mark.parametrize("name", list(fl.OTHER_LOSSES))
def test_other_reference_is_float64(name):
    args, opts = _other_inputs(name, np.float32, np.random.default_rng(1))
    v, g = ref.value_and_grad(name, *args, **opts)
    assert np.asarray(v).dtype == np.float64
    for gk in _grads(g):
        assert gk.dtype == np.float64


@pytest.mark.parametrize("name", list(fl.LOSSES))
def test_reference_matches_library_float64(name):
    """value_and_grad(name, ...) is the number fl.NAME.value_and_grad gives."""
    y, p = _data(name, 300, np.float64, np.random.default_rng(2))
    opts = _OPTIONS.get(name, {})
    v_ref, g_ref = ref.value_and_grad(name, y, p, **opts)
    v, g = fl.LOSSES[name].value_and_grad(y, p, **opts)
    assert _rel_err(v, v_ref) <= 1e-10
    assert _rel_err(g, g_ref) <= 1e-10


@pytest.mark.parametrize("name", list(fl.OTHER_LOSSES))
def test_other_reference_matches_library_float64(name):
    args, opts = _other_inputs(name, np.float64, np.random.default_rng(3))
    v_ref, g_ref = ref.value_and_grad(name, *args, **opts)
    v, g = fl.OTHER_LOSSES[name].value_and_grad(*args, **opts)
    assert _rel_err(v, v_ref) <= 1e-10
    assert len(_grads(g)) == len(_grads(g_ref))
    for gk, rk in zip(_grads(g), _grads(g_ref)):
        assert np.shape(gk) == np.shape(rk)
        assert _rel_err(gk, rk) <= 1e-10


def test_reference_imports_without_the_extension():
    """The reference package needs NumPy only: importable from the source tree
    with no fastloss (and no _core) on the path."""
    pkg_parent = os.path.dirname(os.path.dirname(os.path.abspath(ref.__file__)))
    code = (
        "import sys\n"
        f"sys.path.insert(0, {pkg_parent!r})\n"
        "import reference\n"
        "assert not any(m == 'fastloss' or m.startswith('fastloss.') for m in sys.modules), sys.modules\n"
        "v, g = reference.value_and_grad('mse', [1.0, 2.0], [1.5, 2.0])\n"
        "assert v == 0.125 and list(g) == [0.5, 0.0], (v, g)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=pkg_parent)


# --------------------------------------------------------------------------
# python -m fastloss


def test_cli_runs_on_the_reference(capsys):
    assert cli_main(["-n", "2000", "--time", "0.001"]) == 0
    out = capsys.readouterr().out
    assert "all losses agree with NumPy" in out
    for name in fl.LOSSES:
        assert f"\n{name} " in out


# --------------------------------------------------------------------------
# The benchmarks' NumPy baselines compute the reference's numbers

_SMALL = {
    impls_classification.BIG_BINARY: (1000,),
    impls_classification.BIG_VOCAB: (40, 50),
    impls_classification.MANY_ROWS: (40, 10),
    impls_classification.MID: (40, 50),
}
_SMALL_STRUCTURED = {
    impls_structured.SEG: (3, 1, 8, 8),
    impls_structured.ROWS: (50, 16),
    impls_structured.BOXES: (300, 4),
    impls_structured.BIG: (1000,),
    impls_structured.GP: (6, 3, 4, 4),
    impls_structured.PR_BIG: (300,),
    impls_structured.PR_SMALL: (300,),
}
BENCH_CASES = (
    [(impls, loss, 1001) for loss in impls.LOSSES]
    + [(impls_classification, loss, _SMALL[s]) for loss in impls_classification.LOSSES
       for s in impls_classification.SPECS[loss].shapes[:1]]
    + [(impls_structured, loss, _SMALL_STRUCTURED[s]) for loss in impls_structured.LOSSES
       for s in impls_structured.SPECS[loss].shapes[:1]]
)


@pytest.mark.parametrize("module,loss,shape", BENCH_CASES,
                         ids=[f"{m.__name__}-{loss}" for m, loss, _ in BENCH_CASES])
def test_bench_numpy_baseline_matches_reference(module, loss, shape):
    """Both ops of the bench's NumPy baseline (in float64) against the bench's
    reference(), which is fastloss.reference."""
    data = tuple(module.make_data(loss, shape, np.dtype(np.float64)))
    ref_v, ref_g = module.reference(loss, *data)
    ref_gs = _grads(ref_g)
    fns = module.numpy_baseline(loss, *data)
    assert set(fns) == {"value", "value_and_grad"}
    assert _rel_err(fns["value"](), ref_v) <= 1e-9
    v, g = fns["value_and_grad"]()
    assert _rel_err(v, ref_v) <= 1e-9
    assert len(_grads(g)) == len(ref_gs)
    for gk, rk in zip(_grads(g), ref_gs):
        assert np.shape(gk) == np.shape(rk)
        assert _rel_err(gk, rk) <= 1e-9


def test_bench_reference_mean_slices():
    """reference_mean (the bench's mean over slices of the samples) is the mean
    of value_and_grad over the whole input."""
    rng = np.random.default_rng(4)
    y, p = rng.standard_normal(1000), rng.standard_normal(1000)
    v, (g,) = impls.reference_mean("huber", y, p, chunk=64)
    v_ref, g_ref = ref.value_and_grad("huber", y, p)
    assert v == pytest.approx(v_ref, rel=1e-13)
    np.testing.assert_allclose(g, g_ref, rtol=1e-13, atol=0)
    data = impls_structured.make_data("triplet_margin", (50, 16), np.float64)
    v, gs = impls.reference_mean("triplet_margin", *data, chunk=100)
    v_ref, gs_ref = ref.value_and_grad("triplet_margin", *data)
    assert v == pytest.approx(v_ref, rel=1e-13)
    for gk, rk in zip(gs, gs_ref):
        np.testing.assert_allclose(gk, rk, rtol=1e-13, atol=1e-15)


def test_bench_pairwise_reference_matches_reference():
    """The bench's O(n log n) pairwise hinge (used at n = 1e6, where the
    reference's O(n^2) enumeration is out of reach) against the reference."""
    r, s = impls_structured.make_data("pairwise_ranking", (500,), np.float64)
    v, g = impls_structured._pairwise_reference(r.astype(np.float64), s)
    v_ref, g_ref = ref.value_and_grad("pairwise_ranking", r, s, margin=impls_structured.PR_MARGIN)
    assert v == pytest.approx(v_ref, rel=1e-12)
    np.testing.assert_allclose(g, g_ref, rtol=1e-12, atol=0)


def test_reference_defaults_are_the_registry_defaults():
    # The reference states each option's default in its signature (it needs
    # NumPy only); the registry's row is where a default is written: every
    # default the reference repeats must be the row's.
    import inspect

    checked = 0
    for table in (ref.LOSSES, ref.OTHER_LOSSES):
        for name, fn in table.items():
            options = dict(getattr(fl, name).options)
            for p in inspect.signature(fn).parameters.values():
                if p.default is not inspect.Parameter.empty and p.name in options:
                    assert p.default == options[p.name], (name, p.name, p.default, options[p.name])
                    checked += 1
    assert checked >= 100
