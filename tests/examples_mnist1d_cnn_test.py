"""Tests of the MNIST-1D CNN example, with a small budget: the channels each method removes,
the compacted CNN's logits, the channel GMP baseline and the group penalty."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from optax_l1.examples import mnist1d_cnn

SMALL = mnist1d_cnn.Budget(steps=20, begin=2, end=10, frequency=2)


@pytest.fixture(scope="module")
def trained():
  """The two methods that remove channels by a target, 20 steps each, one timed call."""
  return {m: mnist1d_cnn.train(m, budget=SMALL, timing_calls=1) for m in ("target", "gmp")}


@pytest.mark.parametrize("method", ["target", "gmp"])
def test_each_layer_loses_the_level_and_the_compacted_logits_are_equal(trained, method):
  r = trained[method]
  assert r.channels == (16, 16, 16) and r.removed_fraction == 0.5, r
  assert r.report.units_before == (32, 32, 32)
  assert r.report.params_after < r.report.params_before / 2
  assert r.max_logit_error <= 1e-5 * max(1.0, r.logit_scale), r
  # The compacted stack's own layers: 16 channels in and out of the hidden convs.
  convs = [layer for layer in r.compacted.layers if isinstance(layer, nnx.Conv)]
  assert [c.kernel.shape for c in convs] == [(5, 1, 16), (3, 16, 16), (3, 16, 16), (1, 16, 10)]
  assert r.dense_ms > 0 and r.compacted_ms > 0 and r.speedup == r.dense_ms / r.compacted_ms
  # The removed channels are those whose outgoing weights are exactly zero, nothing else.
  for layer, reader in zip(mnist1d_cnn.HIDDEN, mnist1d_cnn.READERS, strict=True):
    outgoing = getattr(r.model, reader).kernel[...]
    alive = np.flatnonzero(np.any(np.asarray(outgoing) != 0, axis=(0, 2)))
    assert tuple(alive) == r.report.kept[mnist1d_cnn.HIDDEN.index(layer)]


def test_table_reports_every_method(trained):
  text = mnist1d_cnn.table({m: [r] for m, r in trained.items()})
  rows = [line for line in text.splitlines() if line.startswith(("| target", "| gmp"))]
  assert len(rows) == 2 and all("| 50.00 ± 0.00 | 16.0 / 16.0 / 16.0 |" in row for row in rows)


def test_channel_gmp_prunes_the_smallest_outgoing_norms_on_schedule():
  budget = mnist1d_cnn.Budget(steps=4, begin=2, end=3, frequency=1, level=0.5)
  tx = mnist1d_cnn.channel_gmp(budget)
  _, params = nnx.split(mnist1d_cnn.CNN(rngs=nnx.Rngs(0)), nnx.Param)
  params = nnx.as_pure(params)
  norms = {n: np.linalg.norm(np.asarray(params[n]["kernel"]), axis=(0, 2)) for n in ("conv2",)}
  zero = jax.tree.map(jnp.zeros_like, params)
  state = tx.init(params)
  update = jax.jit(tx.update)
  for step in range(1, 5):
    updates, state = update(zero, state, params)  # zero gradients: Adam moves nothing
    params = jax.tree.map(lambda p, u: p + u, params, updates)
    kernel = np.asarray(params["conv2"]["kernel"])
    dead = np.flatnonzero(np.all(kernel == 0, axis=(0, 2)))
    # Before the ramp nothing; at its end (step 3) half of the 32 channels, the smallest norms.
    expected = {1: 0, 2: 0, 3: 16, 4: 16}[step]
    assert dead.size == expected, (step, dead)
  np.testing.assert_array_equal(np.sort(dead), np.sort(np.argsort(norms["conv2"])[:16]))


def test_group_penalty_is_the_sum_of_outgoing_norms_with_a_finite_gradient():
  _, params = nnx.split(mnist1d_cnn.CNN(rngs=nnx.Rngs(1)), nnx.Param)
  params = nnx.as_pure(params)
  expected = sum(
    np.linalg.norm(np.asarray(params[n]["kernel"], np.float64), axis=(0, 2)).sum()
    for n in mnist1d_cnn.READERS
  )
  np.testing.assert_allclose(float(mnist1d_cnn.group_norms(params)), expected, rtol=1e-5)
  params["conv2"]["kernel"] = params["conv2"]["kernel"].at[:, 3, :].set(0.0)
  grads = jax.jit(jax.grad(mnist1d_cnn.group_norms))(params)
  assert all(bool(jnp.all(jnp.isfinite(g))) for g in jax.tree.leaves(grads))


def test_conv1d_as_matmul_is_nnx_convs_default():
  x = jax.random.normal(jax.random.key(0), (3, 11, 4))
  for padding in ("SAME", ((2, 1),)):
    fast, default = (
      nnx.Conv(4, 5, kernel_size=3, padding=padding, rngs=nnx.Rngs(0), **kwargs)
      for kwargs in ({"conv_general_dilated": mnist1d_cnn.conv1d_as_matmul}, {})
    )
    np.testing.assert_allclose(fast(x), default(x), atol=1e-5)
  with pytest.raises(NotImplementedError, match="stride-1"):
    nnx.Conv(
      4, 5, 3, strides=2, conv_general_dilated=mnist1d_cnn.conv1d_as_matmul, rngs=nnx.Rngs(0)
    )(x)


def test_unknown_methods_are_rejected():
  with pytest.raises(ValueError, match="method must be one of"):
    mnist1d_cnn.make_optimizer("lasso")
  with pytest.raises(SystemExit):
    mnist1d_cnn.main(["--methods", "dense,lasso"])
