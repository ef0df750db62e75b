"""A training step's loss through fastloss.jax against jax.numpy / optax on the CPU.

    python bench/jax_bench.py            # ~2 min on 2 cores
    python bench/jax_bench.py --quick    # N = 1e6, 512 x 32000

``jax.jit(jax.value_and_grad(loss))`` of each form, float32, one thread for
both (XLA's CPU client with ``--xla_cpu_multi_thread_eigen=false
intra_op_parallelism_threads=1``, set before JAX is imported;
``fastloss.set_num_threads(1)``), interleaved samples (bench/timing.py),
``block_until_ready`` on the value and the gradient:

* the transcendental losses on N = 1e7 elements: log-cosh
  (``optax.log_cosh``), BCE with logits (``optax.sigmoid_binary_cross_entropy``),
  binary focal (``optax.sigmoid_focal_loss``), Poisson NLL and MSLE (their
  ``jax.numpy`` forms); cross-entropy on 4096 x 32000 logits
  (``optax.softmax_cross_entropy_with_integer_labels``);
* mse and huber on 1e7 (``optax.squared_error``, ``optax.huber_loss``), which
  are memory-bound in both;
* N = 8: the per-call overhead against the jitted jax.numpy form.

The issue's targets: faster for every transcendental loss at 1e7, and the
overhead at N = 8 within 2x of JAX's own. Prints one Markdown table and the
CPU model.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                           " --xla_cpu_multi_thread_eigen=false"
                           " intra_op_parallelism_threads=1").strip()

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fastloss as fl  # noqa: E402
import fastloss.jax as flj  # noqa: E402
from streaming import cpu_model  # noqa: E402
from timing import Case, calibrate, measure_group  # noqa: E402


def step(loss, *args):
    """The jitted value-and-gradient of loss(x, *rest) w.r.t. x."""
    f = jax.jit(jax.value_and_grad(loss))

    def run():
        v, g = f(*args)
        g.block_until_ready()
        return v
    return run


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    n = 1_000_000 if args.quick else 10_000_000
    rows = 512 if args.quick else 4096
    fl.set_num_threads(1)
    rng = np.random.default_rng(0)
    y = jnp.asarray(rng.normal(size=n).astype(np.float32))
    x = jnp.asarray(np.asarray(y) + rng.normal(size=n).astype(np.float32))
    b = jnp.asarray((rng.random(n) < 0.5).astype(np.float32))
    counts = jnp.asarray(rng.poisson(2.0, size=n).astype(np.float32))
    pos = jnp.asarray(rng.random(n).astype(np.float32) * 3)
    ypos = jnp.asarray(rng.random(n).astype(np.float32) * 3)
    logits = jnp.asarray(rng.normal(size=(rows, 32000)).astype(np.float32))
    labels = jnp.asarray(rng.integers(0, 32000, rows).astype(np.int32))
    x8, y8 = jnp.asarray(rng.normal(size=8).astype(np.float32)), jnp.asarray(
        rng.normal(size=8).astype(np.float32))

    groups = [
        (f"log-cosh, {n:.0e}", [
            ("fastloss.jax", step(lambda p: flj.log_cosh(p, y), x)),
            ("optax.log_cosh", step(lambda p: optax.log_cosh(p, y).mean(), x))]),
        (f"bce with logits, {n:.0e}", [
            ("fastloss.jax", step(lambda p: flj.binary_cross_entropy(p, b, from_logits=True), x)),
            ("optax.sigmoid_binary_cross_entropy",
             step(lambda p: optax.sigmoid_binary_cross_entropy(p, b).mean(), x))]),
        (f"binary focal, {n:.0e}", [
            ("fastloss.jax", step(lambda p: flj.binary_focal(p, b, from_logits=True), x)),
            ("optax.sigmoid_focal_loss",
             step(lambda p: optax.sigmoid_focal_loss(p, b, alpha=0.25, gamma=2.0).mean(), x))]),
        (f"poisson nll, {n:.0e}", [
            ("fastloss.jax", step(lambda p: flj.poisson_nll(p, counts), x)),
            ("jax.numpy", step(lambda p: (jnp.exp(p) - counts * p).mean(), x))]),
        (f"msle, {n:.0e}", [
            ("fastloss.jax", step(lambda p: flj.msle(p, ypos), pos)),
            ("jax.numpy", step(lambda p: jnp.square(jnp.log1p(p) - jnp.log1p(ypos)).mean(),
                               pos))]),
        (f"cross-entropy, {rows} x 32000", [
            ("fastloss.jax", step(lambda p: flj.sparse_categorical_cross_entropy(
                p, labels, from_logits=True), logits)),
            ("optax.softmax_cross_entropy_with_integer_labels", step(
                lambda p: optax.softmax_cross_entropy_with_integer_labels(p, labels).mean(),
                logits))]),
        (f"mse, {n:.0e}", [
            ("fastloss.jax", step(lambda p: flj.mse(p, y), x)),
            ("optax.squared_error", step(lambda p: optax.squared_error(p, y).mean(), x))]),
        (f"huber, {n:.0e}", [
            ("fastloss.jax", step(lambda p: flj.huber(p, y, delta=1.0), x)),
            ("optax.huber_loss", step(lambda p: optax.huber_loss(p, y, delta=1.0).mean(), x))]),
        ("mse, N = 8", [
            ("fastloss.jax", step(lambda p: flj.mse(p, y8), x8)),
            ("jax.numpy", step(lambda p: jnp.mean(jnp.square(p - y8)), x8))]),
        ("log-cosh, N = 8", [
            ("fastloss.jax", step(lambda p: flj.log_cosh(p, y8), x8)),
            ("optax.log_cosh", step(lambda p: optax.log_cosh(p, y8).mean(), x8))]),
    ]
    print(f"CPU: {cpu_model()}; SIMD target {fl.simd_target()}; jax {jax.__version__}; "
          "1 thread; float32; jit(value_and_grad)\n")
    print("| loss | fastloss.jax | JAX | JAX form | speed-up |")
    print("|---|---:|---:|---|---:|")
    for title, impls in groups:
        # the values agree before anything is timed
        a, b_ = (float(fn()) for _, fn in impls)
        assert abs(a - b_) <= 1e-4 * max(abs(b_), 1e-3), (title, a, b_)
        cases = [Case(title, impl, 1, fn) for impl, fn in impls]
        for c in cases:
            calibrate(c, warmup_s=0.2, sample_s=0.05, min_total_s=1.0 if not args.quick else 0.3,
                      min_samples=5, max_samples=200, warmed=True)
        measure_group(cases, settle_s=0.0)
        (tf, _, _), (tj, _, _) = (c.stats() for c in cases)
        unit, k = ("µs", 1e6) if tf < 1e-3 else ("ms", 1e3)
        print(f"| {title} | {tf * k:.3g} {unit} | {tj * k:.3g} {unit} | {impls[1][0]} | "
              f"{tj / tf:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
