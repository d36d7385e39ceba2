"""Tests of :func:`optax_l1.compact_mlp` given an ``nnx.Sequential`` (to merge into
``compaction_test.py``)."""

import itertools

import jax
import jax.numpy as jnp
import pytest
from flax import nnx

import optax_l1


def mlp(sizes, dead=()):
  """``nnx.Linear`` layers of the given sizes; ``dead[k]`` hidden units of layer k get no input."""
  layers = [
    nnx.Linear(n_in, n_out, bias_init=nnx.initializers.normal(1.0), rngs=nnx.Rngs(k))
    for k, (n_in, n_out) in enumerate(itertools.pairwise(sizes))
  ]
  for layer, n in zip(layers, dead, strict=False):
    layer.kernel[...] = layer.kernel[...].at[:, :n].set(0.0)
  return layers


def test_a_sequential_of_linears_and_the_activation_compacts_like_its_linears():
  first, middle, last = mlp([5, 8, 6, 3], dead=(5, 2))
  seq = nnx.Sequential(first, jax.nn.relu, middle, nnx.relu, last)  # nnx.relu is jax.nn.relu
  small, report = optax_l1.compact_mlp(seq, jax.nn.relu)
  expected, expected_report = optax_l1.compact_mlp([first, middle, last], jax.nn.relu)
  assert report == expected_report and report.units_after == (3, 4)
  x = jax.random.normal(jax.random.key(0), (7, 5))
  assert jnp.allclose(small(x), seq(x), atol=1e-5)
  assert jnp.allclose(small(x), expected(x), atol=1e-5)


def test_what_compact_mlp_returns_can_be_compacted_again():
  small, _ = optax_l1.compact_mlp(mlp([4, 8, 2], dead=(6,)), jnp.tanh)
  again, report = optax_l1.compact_mlp(small, jnp.tanh)
  assert report.units_before == report.units_after == (2,)
  x = jnp.ones((3, 4))
  assert jnp.array_equal(again(x), small(x))


def test_a_sequential_of_one_linear_is_that_linear():
  [only] = mlp([4, 2])
  small, report = optax_l1.compact_mlp(nnx.Sequential(only), jax.nn.relu)
  assert report.units_before == () and jnp.array_equal(small.layers[0].kernel[...], only.kernel)


@pytest.mark.parametrize(
  ("entries", "message"),
  [
    (lambda a, b: (a, jax.nn.gelu, b), r"linears\.layers\[1\] must be the activation given"),
    (lambda a, b: (a, lambda x: jax.nn.relu(x), b), r"linears\.layers\[1\].*<lambda>"),
    (lambda a, b: (a, nnx.Dropout(0.5, rngs=nnx.Rngs(0)), b), r"layers\[1\].*Dropout"),
    (lambda a, b: (a, b), r"linears\.layers\[1\] must be the activation given.*Linear"),
    (lambda a, b: (jax.nn.relu, a, b), r"linears\.layers\[0\] must be an nnx\.Linear"),
    (lambda a, b: (a, jax.nn.relu, b, jax.nn.relu), r"must end with an nnx\.Linear"),
  ],
  ids=["other activation", "a wrapper", "dropout", "no activation", "starts", "ends"],
)
def test_a_sequential_of_another_form_is_a_type_error_saying_where(entries, message):
  first, last = mlp([4, 8, 2])
  with pytest.raises(TypeError, match=message):
    optax_l1.compact_mlp(nnx.Sequential(*entries(first, last)), jax.nn.relu)


def test_a_module_that_is_not_a_sequence_is_a_type_error_naming_the_argument():
  class MLP(nnx.Module):
    def __init__(self):
      self.linear1, self.linear2 = mlp([4, 8, 2])

  with pytest.raises(TypeError, match=r"linears must be .*nnx\.Sequential.*got MLP"):
    optax_l1.compact_mlp(MLP(), jax.nn.relu)
