"""Per-segment values for the losses of several inputs (offsets= /
segment_ids=): the losses reduced over elements (margin_ranking,
gaussian_nll, ...) segment their elements, those reduced over rows
(triplet_margin, cosine_embedding, ...) their rows (axis 0). Each value is
the loss's own call on its segment, bit for bit; the gradients are those of
the sum of the segment values; ids may come in any order; accumulators take
num_segments=; bad segments are errors that write nothing.
"""

import numpy as np
import pytest

import fastloss as fl
from checks import FUZZ_SEGMENT_KEYWORDS
from fastloss import _core


def _bits(x):
    return np.asarray(x, dtype=np.float64).tobytes()


def _data(name, n, rng, dtype=np.float64):
    """(positional args, is_rows) of n items of fl.NAME."""
    sign = lambda: np.where(rng.random(n) < 0.5, -1.0, 1.0)  # noqa: E731
    if name == "margin_ranking":
        args = (rng.normal(size=n), rng.normal(size=n), sign())
    elif name == "gaussian_nll":
        args = (rng.normal(size=n), rng.normal(size=n), rng.uniform(0.2, 2.0, n))
    elif name == "triplet_margin":
        args = tuple(rng.normal(size=(n, 5)) for _ in range(3))
    elif name == "cosine_embedding":
        args = (rng.normal(size=(n, 5)), rng.normal(size=(n, 5)), sign())
    elif name == "contrastive_pairs":
        args = ((rng.random(n) < 0.5).astype(np.float64), rng.normal(size=(n, 5)),
                rng.normal(size=(n, 5)))
    else:
        raise KeyError(name)
    return tuple(a.astype(dtype) for a in args)


def _segmented_losses():
    return sorted(n for n in fl.OTHER_LOSSES if _core.loss_info(n).get("segments"))


SEGMENTED = _segmented_losses()


def test_every_elements_and_rows_loss_takes_segments():
    kinds = {n: _core.loss_info(n)["kind"] for n in fl.OTHER_LOSSES}
    assert SEGMENTED == sorted(n for n, k in kinds.items() if k in ("elements", "rows"))
    assert set(SEGMENTED) == {"margin_ranking", "gaussian_nll", "triplet_margin",
                              "cosine_embedding", "contrastive_pairs"}
    for name in SEGMENTED:
        params = set(__import__("inspect").signature(getattr(fl, name)).parameters)
        assert {"offsets", "segment_ids", "num_segments"} <= params
        assert "segment_ids" in getattr(fl, name).__doc__


def _grads(loss, args, **kw):
    g = loss.grad(*args, **kw)
    return g if isinstance(g, tuple) else (g,)


def _inputs(name):
    info = _core.loss_info(name)
    return [info["args"].index(a) for a in info["inputs"]]


@pytest.mark.parametrize("name", SEGMENTED)
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_segments_are_each_segments_own_call(name, reduction, dtype):
    rng = np.random.default_rng(3)
    n = 3000
    args = _data(name, n, rng, dtype)
    loss = getattr(fl, name)
    off = np.array([0, 1, 1, 700, 2048, 2990, n])
    w = rng.uniform(0.5, 2.0, n).astype(dtype)
    v, grads = loss.value_and_grad(*args, offsets=off, reduction=reduction, weights=w)
    grads = grads if isinstance(grads, tuple) else (grads,)
    assert v.shape == (6,) and v.dtype == np.dtype(dtype)
    assert np.isnan(v[1]) if reduction == "mean" else v[1] == 0.0
    for s in range(6):
        a, b = off[s], off[s + 1]
        if a == b:
            continue
        part = tuple(x[a:b] for x in args)
        vs = loss(*part, reduction=reduction, weights=w[a:b])
        assert _bits(v[s]) == _bits(vs), (s, v[s], vs)
        for g, gs in zip(grads, _grads(loss, part, reduction=reduction, weights=w[a:b])):
            np.testing.assert_array_equal(g[a:b], gs)
    # segment_ids (sorted) give the same values
    ids = np.repeat(np.arange(6), np.diff(off))
    v2 = loss(*args, segment_ids=ids, num_segments=6, reduction=reduction, weights=w)
    assert _bits(v2) == _bits(v)


@pytest.mark.parametrize("name", SEGMENTED)
def test_unsorted_ids_group_the_items(name):
    rng = np.random.default_rng(5)
    n = 500
    args = _data(name, n, rng)
    loss = getattr(fl, name)
    ids = rng.integers(0, 4, n)
    w = rng.uniform(0.5, 2.0, n)
    v, grads = loss.value_and_grad(*args, segment_ids=ids, num_segments=5, weights=w)
    grads = grads if isinstance(grads, tuple) else (grads,)
    assert np.isnan(v[4])
    for s in range(4):
        m = ids == s
        part = tuple(x[m] for x in args)
        assert _bits(v[s]) == _bits(loss(*part, weights=w[m]))
        for g, gs in zip(grads, _grads(loss, part, weights=w[m])):
            np.testing.assert_array_equal(g[m], gs)
    for g, k in zip(grads, _inputs(name)):
        assert g.shape == args[k].shape


@pytest.mark.parametrize("name", SEGMENTED)
def test_segmented_accumulators(name):
    rng = np.random.default_rng(7)
    n = 4096
    args = _data(name, n, rng)
    loss = getattr(fl, name)
    ids = np.sort(rng.integers(0, 3, n))
    acc = loss.accumulator(num_segments=3)
    for lo in range(0, n, 1024):
        acc.update(*(x[lo:lo + 1024] for x in args), segment_ids=ids[lo:lo + 1024])
    got = acc.result()
    for s in range(3):
        m = ids == s
        np.testing.assert_allclose(got[s], loss(*(x[m] for x in args)), rtol=1e-13)
    assert acc.state().shape[0] == 3


def test_bad_segments_name_the_argument_and_write_nothing():
    rng = np.random.default_rng(9)
    x1, x2, y = _data("margin_ranking", 10, rng)
    with pytest.raises(ValueError, match="offsets"):
        fl.margin_ranking(x1, x2, y, offsets=[0, 5, 4, 10])
    with pytest.raises(ValueError, match="offsets"):
        fl.margin_ranking(x1, x2, y, offsets=[0, 5, 9])
    with pytest.raises(ValueError, match="segment_ids"):
        fl.margin_ranking(x1, x2, y, segment_ids=np.arange(10), num_segments=3)
    with pytest.raises(ValueError, match="segment_ids"):
        fl.margin_ranking(x1, x2, y, segment_ids=np.arange(9), num_segments=10)
    with pytest.raises(TypeError, match="num_segments"):
        fl.margin_ranking(x1, x2, y, segment_ids=np.zeros(10, np.int64))
    with pytest.raises(ValueError, match="none"):
        fl.margin_ranking(x1, x2, y, offsets=[0, 10], reduction="none")
    a, p, n_ = _data("triplet_margin", 8, rng)
    with pytest.raises(ValueError, match="positive|rows"):
        fl.triplet_margin(a, p[:7], n_[:7], offsets=[0, 8])
    with pytest.raises(TypeError, match="segments"):
        fl.gan_generator(np.zeros(4), offsets=[0, 4])
    # out= untouched on error
    out = np.full(10, 3.0)
    with pytest.raises(ValueError):
        fl.gaussian_nll.grad(x1, x2, np.abs(y), offsets=[0, 11], out=out) \
            if "out" in __import__("inspect").signature(fl.gaussian_nll.grad).parameters \
            else fl.gaussian_nll.grad(x1, x2, np.abs(y), offsets=[0, 11])
    assert np.all(out == 3.0)


def test_fuzz_multi_segment_arguments_never_crash_or_write_on_error():
    """Random offsets / segment_ids / num_segments and mismatched inputs for
    the losses of several inputs, in a subprocess that would report a crash;
    an error leaves out= (the one-input form's) untouched."""
    import subprocess
    import sys
    code = FUZZ_SEGMENT_KEYWORDS + r"""
import numpy as np, fastloss as fl
rng = np.random.default_rng(1)
bad = 0
for trial in range(3000):
    name = ["margin_ranking", "gaussian_nll", "triplet_margin", "cosine_embedding",
            "contrastive_pairs"][trial % 5]
    n = int(rng.integers(0, 30))
    m = n if rng.random() < 0.85 else int(rng.integers(0, 30))
    if name == "margin_ranking":
        args = (rng.normal(size=n), rng.normal(size=m), np.sign(rng.normal(size=n)))
    elif name == "gaussian_nll":
        args = (rng.normal(size=n), rng.normal(size=m), rng.uniform(0.1, 1, n))
    elif name == "triplet_margin":
        args = (rng.normal(size=(n, 3)), rng.normal(size=(m, 3)), rng.normal(size=(n, 3)))
    elif name == "cosine_embedding":
        args = (rng.normal(size=(n, 3)), rng.normal(size=(m, 3)), np.sign(rng.normal(size=n)))
    else:
        args = ((rng.random(n) < 0.5) * 1.0, rng.normal(size=(m, 3)), rng.normal(size=(n, 3)))
    kw = fuzz_segment_keywords(rng, n)
    if rng.random() < 0.3:
        kw["weights"] = rng.uniform(0, 1, int(rng.integers(0, 31)))
    try:
        getattr(fl, name).value_and_grad(*args, **kw)
    except (ValueError, TypeError, OverflowError):
        bad += 1
print("ok", bad)
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.startswith("ok")
