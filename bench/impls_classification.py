"""Classification losses for bench/run.py (``--group classification``).

The interface of every group (bench/spec.py): make_data(loss, shape, dtype)
-> (y_true, y_pred) as NumPy arrays, then numpy_baseline / torch_impl /
jax_impl (loss, y_true, y_pred) -> {op: fn}, and reference(loss, y_true,
y_pred) -> (float64 value, (float64 gradient,)) of fastloss.reference for the
sanity check.

Every benchmark name maps to one fastloss call with fixed options (SPECS) and
to the expressions other libraries' users write for the same quantity:

  NumPy  "value" as a tutorial writes it, "value_and_grad" a straightforward
         NumPy computation of both (sharing intermediates);
  torch  torch.nn.functional where it has the loss (otherwise the usual
         few-line torch expression), forward and forward + backward;
  JAX    the optax formulation written in jax.numpy (optax itself is not
         needed), jax.jit and jax.jit(jax.value_and_grad).

Reduction is "mean" everywhere: over elements for the binary losses, over rows
for the row-wise losses (kl: PyTorch's reduction="batchmean"). Integer labels
are int64 (what torch's cross_entropy / nll_loss / multi_margin_loss take), so
every library reads the same bytes.
"""
from __future__ import annotations

import functools

import numpy as np

from impls import reference_mean
from spec import Spec, specs

FOCAL_ALPHA = 0.25
FOCAL_GAMMA = 2.0
EPS = 1e-7  # fastloss / Keras clip for probabilities

BIG_BINARY = (10_000_000,)
BIG_VOCAB = (4096, 32000)
MANY_ROWS = (65536, 10)
MID = (4096, 1000)

# --quick: every loss, small shapes (binary 1e5 elements; rows 256x1000 / 4096x10).
QUICK_SHAPES = {BIG_BINARY: (100_000,), BIG_VOCAB: (256, 1000), MANY_ROWS: (4096, 10), MID: (256, 1000)}


def _spec(name, fl, kw, kind, shapes, target, description):
    """kind: "binary" (elementwise, y_true float), "dense" (row-wise, y_true
    same shape as y_pred), "labels" (row-wise, int64 labels of the rows shape);
    target: which of the issue's targets applies (bench/table.py);
    description: what the name means, for the table's legend."""
    return Spec(name, fl, kw, shapes=tuple(shapes), quick=tuple(QUICK_SHAPES.get(s, s) for s in shapes),
                kind=kind, target=target, description=description)


SPECS = specs(
    _spec("bce_logits", "bce", dict(from_logits=True), "binary", [BIG_BINARY], "binary",
          "fl.bce(y, x, from_logits=True); torch F.binary_cross_entropy_with_logits; "
          "optax sigmoid_binary_cross_entropy (log_sigmoid); y in {0,1}"),
    _spec("bce_probs", "bce", dict(from_logits=False), "binary", [BIG_BINARY], "binary",
          "fl.bce(y, p) (eps=1e-7 clip); torch F.binary_cross_entropy; Keras-style clip+log in NumPy/JAX"),
    _spec("binary_focal", "binary_focal", dict(from_logits=True, alpha=FOCAL_ALPHA, gamma=FOCAL_GAMMA),
          "binary", [BIG_BINARY], "binary",
          "fl.binary_focal(y, x, from_logits=True, alpha=0.25, gamma=2); torchvision "
          "sigmoid_focal_loss written from BCE-with-logits; optax sigmoid_focal_loss"),
    _spec("hinge", "hinge", {}, "binary", [BIG_BINARY], "binary",
          "fl.hinge(y, p), y in {-1,1}; torch clamp(1 - y*p, min=0).mean(); optax hinge_loss"),
    _spec("squared_hinge", "squared_hinge", {}, "binary", [BIG_BINARY], "binary",
          "fl.squared_hinge(y, p); clamp(1 - y*p, min=0)**2 mean"),
    _spec("soft_margin", "soft_margin", {}, "binary", [BIG_BINARY], "binary",
          "fl.soft_margin(y, p); torch F.soft_margin_loss; softplus(-y*p) mean"),
    _spec("sparse_cce", "sparse_categorical_cross_entropy", dict(from_logits=True), "labels",
          [BIG_VOCAB, MANY_ROWS], "sparse",
          "fl.sparse_categorical_cross_entropy(labels, logits, from_logits=True); torch F.cross_entropy; "
          "optax softmax_cross_entropy_with_integer_labels"),
    _spec("cce", "categorical_cross_entropy", dict(from_logits=True), "dense", [MID], "",
          "fl.cce(probs, logits, from_logits=True), dense probability targets; torch F.cross_entropy(logits, "
          "probs); optax softmax_cross_entropy"),
    _spec("kl_div", "kl_divergence", dict(log_input=True), "dense", [MID], "",
          "fl.kl_divergence(t, logq, log_input=True); torch F.kl_div(logq, t, reduction='batchmean'); "
          "optax kl_divergence"),
    _spec("kl_div_prob", "kl_divergence", dict(log_input=False), "dense", [MID], "",
          "fl.kl_divergence(t, q) (probabilities); torch F.kl_div(q.log(), t, reduction='batchmean')"),
    _spec("nll", "nll", {}, "labels", [MANY_ROWS], "", "fl.nll(labels, logp); torch F.nll_loss"),
    _spec("multi_margin", "multi_margin", {}, "labels", [MANY_ROWS], "",
          "fl.multi_margin(labels, x) (p=1, margin=1); torch F.multi_margin_loss"),
)
LOSSES = list(SPECS)


# --------------------------------------------------------------------------- data

def _softmax64(z):
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def make_data(loss: str, shape, dtype, seed: int = 0):
    """Inputs in the loss's domain, generated in `dtype` directly (no float64
    copies of the (4096, 32000) case)."""
    dtype = np.dtype(dtype)
    shape = tuple(shape)
    rng = np.random.default_rng(seed)
    kind = SPECS[loss].kind

    def normal(scale=1.0, shp=shape):
        x = rng.standard_normal(shp, dtype=dtype)
        if scale != 1.0:
            x *= dtype.type(scale)
        return x

    if kind == "binary":
        if loss in ("hinge", "squared_hinge", "soft_margin"):
            y = (2 * rng.integers(0, 2, shape, dtype=np.int8) - 1).astype(dtype)
            p = normal(1.0)
            p += dtype.type(0.5) * y  # a margin-ish classifier: both sides of the hinge
            # No prediction exactly on the kink y*p == 1 (p == y), where libraries pick different
            # subgradients (torch clamp: -y, jnp.maximum: -y/2, fastloss and the reference: 0).
            kink = p == y
            p[kink] = np.nextafter(p[kink], dtype.type(0))
            return y, p
        y = rng.integers(0, 2, shape, dtype=np.int8).astype(dtype)
        x = normal(2.0)
        if loss == "bce_probs":
            np.negative(x, out=x)
            np.exp(x, out=x)
            x += 1
            np.reciprocal(x, out=x)  # sigmoid, in place
        return y, x

    rows, c = shape[:-1], shape[-1]
    if kind == "labels":
        labels = rng.integers(0, c, rows, dtype=np.int64)
        x = normal(2.0 if loss == "sparse_cce" else 1.0)
        if loss == "nll":
            x = np.log(_softmax64(x.astype(np.float64))).astype(dtype)  # log-probabilities
        return labels, x
    # dense: probability targets (soft labels, every entry > 0)
    t = _softmax64(rng.standard_normal(shape)).astype(dtype)
    z = rng.standard_normal(shape) * 2.0
    if loss == "cce":
        p = z.astype(dtype)                               # logits
    elif loss == "kl_div":
        p = np.log(_softmax64(z)).astype(dtype)           # log-probabilities
    else:
        p = _softmax64(z).astype(dtype)                   # probabilities
    return t, p


# --------------------------------------------------------------------------- NumPy baseline
# What a NumPy user writes, in the inputs' dtype (not fastloss.reference, which is
# float64 and written for reading); run.py checks it against the reference, and so
# does tests/python/test_reference.py.

def _rows(x):
    return np.arange(x.shape[0])


def _np_value(loss):
    if loss == "bce_logits":
        return lambda y, x: np.mean(np.maximum(x, 0) - x * y + np.log1p(np.exp(-np.abs(x))))
    if loss == "bce_probs":
        def f(y, p):
            p = np.clip(p, EPS, 1 - EPS)
            return -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
        return f
    if loss == "binary_focal":
        def f(y, x):
            p = 1 / (1 + np.exp(-x))
            ce = np.maximum(x, 0) - x * y + np.log1p(np.exp(-np.abs(x)))
            p_t = p * y + (1 - p) * (1 - y)
            alpha_t = FOCAL_ALPHA * y + (1 - FOCAL_ALPHA) * (1 - y)
            return np.mean(alpha_t * ce * (1 - p_t) ** FOCAL_GAMMA)
        return f
    if loss == "hinge":
        return lambda y, p: np.mean(np.maximum(0, 1 - y * p))
    if loss == "squared_hinge":
        return lambda y, p: np.mean(np.maximum(0, 1 - y * p) ** 2)
    if loss == "soft_margin":
        return lambda y, p: np.mean(np.log1p(np.exp(-y * p)))
    if loss == "sparse_cce":
        def f(labels, x):
            z = x - x.max(axis=1, keepdims=True)
            log_probs = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
            return -np.mean(log_probs[_rows(x), labels])
        return f
    if loss == "cce":
        def f(t, x):
            z = x - x.max(axis=1, keepdims=True)
            log_probs = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
            return -np.mean(np.sum(t * log_probs, axis=1))
        return f
    if loss == "kl_div":
        return lambda t, logq: np.sum(t * (np.log(t) - logq)) / t.shape[0]
    if loss == "kl_div_prob":
        return lambda t, q: np.sum(t * np.log(t / q)) / t.shape[0]
    if loss == "nll":
        return lambda labels, logp: -np.mean(logp[_rows(logp), labels])
    if loss == "multi_margin":
        def f(labels, x):
            r = _rows(x)
            z = np.maximum(0, 1 - x[r, labels][:, None] + x)
            z[r, labels] = 0
            return np.mean(z.sum(axis=1)) / x.shape[1]
        return f
    raise KeyError(loss)


def _np_value_and_grad(loss):
    if loss == "bce_logits":
        def f(y, x):
            v = np.mean(np.maximum(x, 0) - x * y + np.log1p(np.exp(-np.abs(x))))
            return v, (1 / (1 + np.exp(-x)) - y) / x.size
    elif loss == "bce_probs":
        def f(y, p):
            pc = np.clip(p, EPS, 1 - EPS)
            v = -np.mean(y * np.log(pc) + (1 - y) * np.log(1 - pc))
            return v, (-y / pc + (1 - y) / (1 - pc)) / p.size
    elif loss == "binary_focal":
        def f(y, x):
            e = np.exp(-np.abs(x))
            p = np.where(x >= 0, 1, e) / (1 + e)          # stable sigmoid
            ce = np.maximum(x, 0) - x * y + np.log1p(e)
            p_t = p * y + (1 - p) * (1 - y)
            alpha_t = FOCAL_ALPHA * y + (1 - FOCAL_ALPHA) * (1 - y)
            m = 1 - p_t
            mg1 = m ** (FOCAL_GAMMA - 1)
            v = np.mean(alpha_t * ce * m * mg1)
            # d/dx: dce = p - y, dp_t = p (1 - p) (2y - 1)
            g = alpha_t * ((p - y) * m * mg1 - FOCAL_GAMMA * ce * mg1 * p * (1 - p) * (2 * y - 1))
            return v, g / x.size
    elif loss == "hinge":
        def f(y, p):
            z = 1 - y * p
            return np.mean(np.maximum(0, z)), np.where(z > 0, -y, 0) / p.size
    elif loss == "squared_hinge":
        def f(y, p):
            m = np.maximum(0, 1 - y * p)
            return np.mean(m * m), -2 * y * m / p.size
    elif loss == "soft_margin":
        def f(y, p):
            yp = y * p
            return np.mean(np.log1p(np.exp(-yp))), -y / (1 + np.exp(yp)) / p.size
    elif loss == "sparse_cce":
        def f(labels, x):
            r = _rows(x)
            z = x - x.max(axis=1, keepdims=True)
            e = np.exp(z)
            s = e.sum(axis=1, keepdims=True)
            v = np.mean(np.log(s[:, 0]) - z[r, labels])
            g = e / s                   # softmax
            g[r, labels] -= 1
            g /= x.shape[0]
            return v, g
    elif loss == "cce":
        def f(t, x):
            z = x - x.max(axis=1, keepdims=True)
            e = np.exp(z)
            s = e.sum(axis=1, keepdims=True)
            v = -np.mean(np.sum(t * (z - np.log(s)), axis=1))
            return v, (e / s - t) / x.shape[0]   # targets sum to 1 per row
    elif loss == "kl_div":
        def f(t, logq):
            n = t.shape[0]
            return np.sum(t * (np.log(t) - logq)) / n, -t / n
    elif loss == "kl_div_prob":
        def f(t, q):
            n = t.shape[0]
            return np.sum(t * np.log(t / q)) / n, -t / q / n
    elif loss == "nll":
        def f(labels, logp):
            r = _rows(logp)
            g = np.zeros_like(logp)
            g[r, labels] = -1 / logp.shape[0]
            return -np.mean(logp[r, labels]), g
    elif loss == "multi_margin":
        def f(labels, x):
            r = _rows(x)
            n, c = x.shape
            z = 1 - x[r, labels][:, None] + x
            z[r, labels] = 0
            active = z > 0
            v = np.sum(z, axis=1, where=active).mean() / c
            g = active.astype(x.dtype)
            g[r, labels] = -active.sum(axis=1)
            g /= c * n
            return v, g
    else:
        raise KeyError(loss)
    return f


def numpy_baseline(loss, t, p):
    """{op: fn} of the NumPy baseline (the rows impl=numpy)."""
    return {
        "value": functools.partial(_np_value(loss), t, p),
        "value_and_grad": functools.partial(_np_value_and_grad(loss), t, p),
    }


def reference(loss, t, p):
    """float64 value and gradients of fastloss.reference, for the sanity check."""
    spec = SPECS[loss]
    v, g = reference_mean(spec.fl, t, p, **spec.kw)
    return float(v), g


# --------------------------------------------------------------------------- PyTorch

def _torch_loss(torch, loss):
    F = torch.nn.functional
    if loss == "bce_logits":
        return lambda x, y: F.binary_cross_entropy_with_logits(x, y)
    if loss == "bce_probs":
        return lambda p, y: F.binary_cross_entropy(p, y)
    if loss == "binary_focal":
        def f(inputs, targets):  # torchvision.ops.sigmoid_focal_loss, reduction="mean"
            p = torch.sigmoid(inputs)
            ce_loss = F.binary_cross_entropy_with_logits(inputs, targets, reduction="none")
            p_t = p * targets + (1 - p) * (1 - targets)
            loss_ = ce_loss * ((1 - p_t) ** FOCAL_GAMMA)
            alpha_t = FOCAL_ALPHA * targets + (1 - FOCAL_ALPHA) * (1 - targets)
            return (alpha_t * loss_).mean()
        return f
    if loss == "hinge":
        return lambda p, y: torch.clamp(1 - y * p, min=0).mean()
    if loss == "squared_hinge":
        return lambda p, y: torch.clamp(1 - y * p, min=0).pow(2).mean()
    if loss == "soft_margin":
        return lambda p, y: F.soft_margin_loss(p, y)
    if loss in ("sparse_cce", "cce"):
        return lambda x, t: F.cross_entropy(x, t)      # int64 labels, resp. probability targets
    if loss == "kl_div":
        return lambda logq, t: F.kl_div(logq, t, reduction="batchmean")
    if loss == "kl_div_prob":
        return lambda q, t: F.kl_div(torch.log(q), t, reduction="batchmean")
    if loss == "nll":
        return lambda logp, t: F.nll_loss(logp, t)
    if loss == "multi_margin":
        return lambda x, t: F.multi_margin_loss(x, t)
    raise KeyError(loss)


def torch_impl(torch, loss, t, p):
    f = _torch_loss(torch, loss)
    tt = torch.from_numpy(t)                         # shares memory: no copies
    pt = torch.from_numpy(p)
    pg = torch.from_numpy(p).requires_grad_(True)

    def fwd():
        with torch.no_grad():
            return f(pt, tt)

    def fwd_bwd():
        pg.grad = None  # fresh gradient each call, like the other libraries
        out = f(pg, tt)
        out.backward()
        return out, pg.grad

    return {"value": fwd, "value_and_grad": fwd_bwd}


# --------------------------------------------------------------------------- JAX

def _jax_loss(jax, loss):
    jnp = jax.numpy
    nn = jax.nn

    def sigmoid_bce(x, y):  # optax.sigmoid_binary_cross_entropy
        return -y * nn.log_sigmoid(x) - (1.0 - y) * nn.log_sigmoid(-x)

    if loss == "bce_logits":
        return lambda y, x: jnp.mean(sigmoid_bce(x, y))
    if loss == "bce_probs":
        def f(y, p):
            p = jnp.clip(p, EPS, 1 - EPS)
            return -jnp.mean(y * jnp.log(p) + (1 - y) * jnp.log(1 - p))
        return f
    if loss == "binary_focal":
        def f(y, x):  # optax.sigmoid_focal_loss
            p = nn.sigmoid(x)
            ce = sigmoid_bce(x, y)
            p_t = p * y + (1 - p) * (1 - y)
            loss_ = ce * ((1 - p_t) ** FOCAL_GAMMA)
            alpha_t = FOCAL_ALPHA * y + (1 - FOCAL_ALPHA) * (1 - y)
            return jnp.mean(alpha_t * loss_)
        return f
    if loss == "hinge":
        return lambda y, p: jnp.mean(jnp.maximum(0, 1 - y * p))
    if loss == "squared_hinge":
        return lambda y, p: jnp.mean(jnp.maximum(0, 1 - y * p) ** 2)
    if loss == "soft_margin":
        return lambda y, p: jnp.mean(nn.softplus(-y * p))
    if loss == "sparse_cce":
        def f(labels, logits):  # optax.softmax_cross_entropy_with_integer_labels
            logits_max = jnp.max(logits, axis=-1, keepdims=True)
            logits = logits - jax.lax.stop_gradient(logits_max)
            label_logits = jnp.take_along_axis(logits, labels[..., None], axis=-1)[..., 0]
            log_normalizers = jnp.log(jnp.sum(jnp.exp(logits), axis=-1))
            return jnp.mean(log_normalizers - label_logits)
        return f
    if loss == "cce":
        return lambda t, x: jnp.mean(-jnp.sum(t * nn.log_softmax(x, axis=-1), axis=-1))
    if loss == "kl_div":
        def f(t, logq):  # optax.kl_divergence(log_predictions, targets)
            per = jnp.sum(t * (jnp.where(t == 0, 0, jnp.log(t)) - logq), axis=-1)
            return jnp.mean(per)
        return f
    if loss == "kl_div_prob":
        def f(t, q):
            per = jnp.sum(t * (jnp.where(t == 0, 0, jnp.log(t)) - jnp.log(q)), axis=-1)
            return jnp.mean(per)
        return f
    if loss == "nll":
        return lambda labels, logp: -jnp.mean(jnp.take_along_axis(logp, labels[..., None], axis=-1))
    if loss == "multi_margin":
        def f(labels, x):
            c = x.shape[-1]
            x_t = jnp.take_along_axis(x, labels[..., None], axis=-1)
            z = jnp.maximum(0, 1 - x_t + x)
            z = jnp.where(jnp.arange(c) == labels[..., None], 0, z)
            return jnp.mean(jnp.sum(z, axis=-1)) / c
        return f
    raise KeyError(loss)


def jax_impl(jax, loss, t, p):
    f = _jax_loss(jax, loss)
    tj = jax.device_put(t)   # on the CPU device before timing: no host transfer is timed
    pj = jax.device_put(p)
    jv = jax.jit(f)
    jvg = jax.jit(jax.value_and_grad(f, argnums=1))

    def value():
        return jv(tj, pj).block_until_ready()

    def value_and_grad():
        return jax.block_until_ready(jvg(tj, pj))

    return {"value": value, "value_and_grad": value_and_grad}
