"""Tests of the transformer example: groups, a small-budget run, compaction with equal logits."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from optax_l1.examples import mnist1d_data, transformer

SMALL = transformer.Config(
  width=16, heads=4, hidden=32, steps=60, batch_size=32, head_sparsity=0.5, neuron_sparsity=0.75
)


def test_labels_name_the_head_and_neuron_kernels_of_each_block():
  config = transformer.Config(width=8, heads=2, hidden=4, blocks=2)
  model = nnx.eval_shape(lambda: transformer.Transformer(config, rngs=nnx.Rngs(0)))  # no compute
  params = nnx.state(model, nnx.Param)
  labels = transformer.labels(params)
  assert labels["blocks"][1]["attention"]["out"]["kernel"] == "heads1"
  assert labels["blocks"][0]["mlp"]["layers"][2]["kernel"] == "neurons0"
  assert labels["blocks"][0]["mlp"]["layers"][0]["kernel"] == "rest"
  assert labels["blocks"][0]["attention"]["out"]["bias"] == "rest"
  assert sorted(set(jax.tree.leaves(labels))) == [
    "heads0",
    "heads1",
    "neurons0",
    "neurons1",
    "rest",
  ]


def test_make_optimizer_rejects_unknown_method():
  with pytest.raises(ValueError, match="method must be one of"):
    transformer.make_optimizer("lasso")


@pytest.fixture(scope="module")
def target():
  return transformer.train("target", SMALL, seed=0)


def test_target_removes_the_fraction_of_heads_and_neurons_asked(target):
  # The ramp ends at 2/3 of the steps; then the zero set is frozen: exactly the levels asked.
  assert target.heads_zero == (round(SMALL.head_sparsity * SMALL.heads),), target
  assert target.neurons_zero == (round(SMALL.neuron_sparsity * SMALL.hidden),), target
  assert 0.1 <= target.test_accuracy <= 1.0  # a real accuracy, not a crash (60 steps learn little)


def test_compact_keeps_the_logits_and_shrinks_the_layers(target):
  small, reports = transformer.compact(target.model)
  heads, neurons = reports
  assert heads.units_after == (SMALL.heads - target.heads_zero[0],)
  assert neurons.units_after[0] <= SMALL.hidden - target.neurons_zero[0]
  assert small.blocks[0].attention.num_heads == heads.units_after[0]
  assert small.blocks[0].mlp.layers[0].kernel.shape == (SMALL.width, neurons.units_after[0])
  x = jnp.asarray(mnist1d_data.load()[2][:256])
  big = jax.jit(target.model)(x)  # one compilation each, not one per eager op
  np.testing.assert_allclose(jax.jit(small)(x), big, atol=1e-5 * float(jnp.max(jnp.abs(big))))
  # The original is untouched.
  assert target.model.blocks[0].attention.num_heads == SMALL.heads
  assert heads.flops_after < heads.flops_before and neurons.params_after < neurons.params_before


def test_dense_init_has_no_dead_groups_and_forward_seconds_times_each_model(target):
  dense = transformer.Transformer(SMALL, rngs=nnx.Rngs(1))
  assert transformer.dead_groups(dense) == ((0,), (0,))
  x = jnp.ones((4, 40))
  times = transformer.forward_seconds({"a": dense, "b": target.model}, x, repeats=2)
  assert set(times) == {"a", "b"} and all(len(t) == 2 and min(t) > 0 for t in times.values())
