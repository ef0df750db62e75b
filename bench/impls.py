"""The regression losses for bench/run.py (the default group, ``--group
regression``; the interface every group shares is bench/spec.py's).

Each factory takes (loss, y_true, y_pred) as NumPy arrays and returns
{op: fn} where fn() runs one call and returns something spec.check() can turn
into (value, gradients or None); the fastloss one is spec.fastloss_impl.
reference(loss, y_true, y_pred) is the float64 value and gradient of
fastloss.reference (the NumPy specification of every loss) that run.py checks
every implementation against, the NumPy baseline included. This module also
holds reference_mean and load_reference, which the other groups use. Options
are the fastloss defaults everywhere:
huber delta=1, smooth_l1 beta=1, mape eps=finfo(float64).eps,
poisson_nll log_input=True/full=False/eps=1e-8, quantile q=0.5.

op names: "value" (the loss, reduction mean; torch: forward) and
"value_and_grad" (loss and d loss / d y_pred; torch: forward + backward).
"""
from __future__ import annotations

import functools
import os
import sys

import numpy as np

from spec import Spec, specs

# target: which of the targets each loss is held to (bench/table.py's "class").
SPECS = specs(
    *(Spec(name, target="bandwidth") for name in ("mse", "mae", "huber", "smooth_l1", "quantile")),
    *(Spec(name, target="transcendental") for name in ("log_cosh", "msle", "poisson_nll")),
    Spec("mape", target="other"),
)
LOSSES = list(SPECS)

DELTA = 1.0
BETA = 1.0
MAPE_EPS = float(np.finfo(np.float64).eps)
Q = 0.5


def make_data(loss: str, shape, dtype, seed: int = 0):
    """Inputs that exercise every branch (|r| on both sides of delta/beta) and stay in domain;
    shape: (N,) or N."""
    rng = np.random.default_rng(seed)
    if loss == "poisson_nll":
        y_true = rng.poisson(2.0, shape).astype(np.float64)
        y_pred = rng.normal(0.5, 0.5, shape)  # log-rate
    else:
        y_true = rng.uniform(0.1, 3.0, shape)
        y_pred = y_true + rng.normal(0.0, 1.0, shape)
        if loss == "msle":
            y_pred = np.abs(y_pred)  # log1p domain
    return np.ascontiguousarray(y_true, dtype=dtype), np.ascontiguousarray(y_pred, dtype=dtype)


# --------------------------------------------------------------------------- NumPy baseline
# What a NumPy user writes, timed in the inputs' dtype: "value" the way a tutorial
# writes it; "value_and_grad" a straightforward NumPy expression computing both
# (sharing the residual). Deliberately not fastloss.reference (float64, written for
# reading, not speed); run.py checks these against it (reference() below), and so
# does tests/python/test_reference.py.

def _np_value(loss):
    if loss == "mse":
        return lambda t, p: np.mean((p - t) ** 2)
    if loss == "mae":
        return lambda t, p: np.mean(np.abs(p - t))
    if loss == "huber":
        def f(t, p):
            r = p - t
            a = np.abs(r)
            return np.mean(np.where(a <= DELTA, 0.5 * r ** 2, DELTA * (a - 0.5 * DELTA)))
        return f
    if loss == "smooth_l1":
        def f(t, p):
            r = p - t
            a = np.abs(r)
            return np.mean(np.where(a < BETA, 0.5 * r ** 2 / BETA, a - 0.5 * BETA))
        return f
    if loss == "log_cosh":
        return lambda t, p: np.mean(np.log(np.cosh(p - t)))
    if loss == "msle":
        return lambda t, p: np.mean((np.log1p(p) - np.log1p(t)) ** 2)
    if loss == "mape":
        return lambda t, p: np.mean(np.abs(p - t) / np.maximum(np.abs(t), MAPE_EPS))
    if loss == "poisson_nll":
        return lambda t, p: np.mean(np.exp(p) - t * p)
    if loss == "quantile":
        def f(t, p):
            u = t - p
            return np.mean(np.maximum(Q * u, (Q - 1) * u))
        return f
    raise KeyError(loss)


def _np_value_and_grad(loss):
    if loss == "mse":
        def f(t, p):
            r = p - t
            return np.mean(r * r), r * (2.0 / r.size)
    elif loss == "mae":
        def f(t, p):
            r = p - t
            return np.mean(np.abs(r)), np.sign(r) / r.size
    elif loss == "huber":
        def f(t, p):
            r = p - t
            a = np.abs(r)
            v = np.mean(np.where(a <= DELTA, 0.5 * r * r, DELTA * (a - 0.5 * DELTA)))
            return v, np.clip(r, -DELTA, DELTA) / r.size
    elif loss == "smooth_l1":
        def f(t, p):
            r = p - t
            a = np.abs(r)
            small = a < BETA
            v = np.mean(np.where(small, 0.5 * r * r / BETA, a - 0.5 * BETA))
            return v, np.where(small, r / BETA, np.sign(r)) / r.size
    elif loss == "log_cosh":
        def f(t, p):
            r = p - t
            return np.mean(np.log(np.cosh(r))), np.tanh(r) / r.size
    elif loss == "msle":
        def f(t, p):
            d = np.log1p(p) - np.log1p(t)
            return np.mean(d * d), 2.0 * d / (1.0 + p) / d.size
    elif loss == "mape":
        def f(t, p):
            r = p - t
            den = np.maximum(np.abs(t), MAPE_EPS)
            return np.mean(np.abs(r) / den), np.sign(r) / den / r.size
    elif loss == "poisson_nll":
        def f(t, p):
            e = np.exp(p)
            return np.mean(e - t * p), (e - t) / p.size
    elif loss == "quantile":
        def f(t, p):
            u = t - p
            v = np.mean(np.maximum(Q * u, (Q - 1) * u))
            q = p.dtype.type(Q)  # keeps the gradient in y_pred's dtype
            return v, ((u < 0) - q * (u != 0)) / p.size  # -q, 1-q, 0 for u >0, <0, ==0
    else:
        raise KeyError(loss)
    return f


def numpy_baseline(loss, t, p):
    """{op: fn} of the NumPy baseline (the rows impl=numpy)."""
    return {
        "value": functools.partial(_np_value(loss), t, p),
        "value_and_grad": functools.partial(_np_value_and_grad(loss), t, p),
    }


# --------------------------------------------------------------------------- reference

def load_reference():
    """fastloss.reference; from the source tree (python/fastloss/reference, NumPy
    only) when fastloss itself is not importable (not built yet)."""
    try:
        from fastloss import reference
    except ImportError:
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python", "fastloss"))
        import reference
    return reference


def reference_mean(name, *data, chunk=1 << 20, **options):
    """float64 (value, gradients) of fl.NAME(*data, reduction="mean", **options) from
    fastloss.reference: the per-sample losses (reduction "none") of slices of about
    `chunk` elements along the samples (axis 0 of every input), summed and divided by
    their count, so that the reference's float64 temporaries stay small on 1e7-element
    inputs. Only for unweighted means over samples of axis 0 (every loss benchmarked
    here but the two-array gan_discriminator and pairwise_ranking); the gradients come
    back as a tuple, one per differentiable input."""
    ref = load_reference()
    if any(np.ndim(a) == 0 for a in data):  # one sample (e.g. one row of logits, a 0-d label)
        v, g = ref.value_and_grad(name, *data, reduction="mean", **options)
        return float(v), g if isinstance(g, tuple) else (g,)
    per_sample = max(max(a[:1].size for a in data), 1)
    step = max(chunk // per_sample, 1)
    total, count, parts = 0.0, 0, []
    for i in range(0, len(data[0]), step):
        v, g = ref.value_and_grad(name, *(a[i:i + step] for a in data), reduction="none", **options)
        total += float(np.sum(v))
        count += np.size(v)
        parts.append(g if isinstance(g, tuple) else (g,))
    return total / count, tuple(np.concatenate(gs, axis=0) / count for gs in zip(*parts))


def reference(loss, t, p):
    """float64 value and gradients of fastloss.reference, for the sanity check."""
    v, g = reference_mean(loss, t, p)
    return float(v), g


# --------------------------------------------------------------------------- PyTorch

def _torch_loss(torch, loss):
    F = torch.nn.functional
    if loss == "mse":
        return lambda p, t: F.mse_loss(p, t)
    if loss == "mae":
        return lambda p, t: F.l1_loss(p, t)
    if loss == "huber":
        return lambda p, t: F.huber_loss(p, t, delta=DELTA)
    if loss == "smooth_l1":
        return lambda p, t: F.smooth_l1_loss(p, t, beta=BETA)
    if loss == "log_cosh":
        return lambda p, t: torch.mean(torch.log(torch.cosh(p - t)))
    if loss == "msle":
        return lambda p, t: torch.mean((torch.log1p(p) - torch.log1p(t)) ** 2)
    if loss == "mape":
        return lambda p, t: torch.mean(torch.abs(p - t) / torch.clamp(torch.abs(t), min=MAPE_EPS))
    if loss == "poisson_nll":
        return lambda p, t: F.poisson_nll_loss(p, t, log_input=True, full=False, eps=1e-8)
    if loss == "quantile":
        def f(p, t):
            u = t - p
            return torch.mean(torch.maximum(Q * u, (Q - 1) * u))
        return f
    raise KeyError(loss)


def torch_impl(torch, loss, t, p):
    f = _torch_loss(torch, loss)
    tt = torch.from_numpy(t)
    pt = torch.from_numpy(p)                         # forward only: no graph
    pg = torch.from_numpy(p).requires_grad_(True)    # leaf for backward

    def fwd():
        return f(pt, tt)

    def fwd_bwd():
        pg.grad = None  # fresh gradient each call, like the other libraries
        out = f(pg, tt)
        out.backward()
        return out, pg.grad

    return {"value": fwd, "value_and_grad": fwd_bwd}


# --------------------------------------------------------------------------- JAX

def _jax_loss(jnp, loss):
    if loss == "mse":
        return lambda t, p: jnp.mean((p - t) ** 2)
    if loss == "mae":
        return lambda t, p: jnp.mean(jnp.abs(p - t))
    if loss == "huber":
        def f(t, p):
            r = p - t
            a = jnp.abs(r)
            return jnp.mean(jnp.where(a <= DELTA, 0.5 * r ** 2, DELTA * (a - 0.5 * DELTA)))
        return f
    if loss == "smooth_l1":
        def f(t, p):
            r = p - t
            a = jnp.abs(r)
            return jnp.mean(jnp.where(a < BETA, 0.5 * r ** 2 / BETA, a - 0.5 * BETA))
        return f
    if loss == "log_cosh":
        return lambda t, p: jnp.mean(jnp.log(jnp.cosh(p - t)))
    if loss == "msle":
        return lambda t, p: jnp.mean((jnp.log1p(p) - jnp.log1p(t)) ** 2)
    if loss == "mape":
        return lambda t, p: jnp.mean(jnp.abs(p - t) / jnp.maximum(jnp.abs(t), MAPE_EPS))
    if loss == "poisson_nll":
        return lambda t, p: jnp.mean(jnp.exp(p) - t * p)
    if loss == "quantile":
        def f(t, p):
            u = t - p
            return jnp.mean(jnp.maximum(Q * u, (Q - 1) * u))
        return f
    raise KeyError(loss)


def jax_impl(jax, loss, t, p):
    jnp = jax.numpy
    f = _jax_loss(jnp, loss)
    # Inputs live on the (CPU) device before timing: no host transfer is timed.
    tj = jax.device_put(t)
    pj = jax.device_put(p)
    jv = jax.jit(f)
    jvg = jax.jit(jax.value_and_grad(f, argnums=1))

    def value():
        return jv(tj, pj).block_until_ready()

    def value_and_grad():
        return jax.block_until_ready(jvg(tj, pj))

    return {"value": value, "value_and_grad": value_and_grad}
