"""Tests of the masks by path (optax_l1/examples/masks.py): which leaves they select, and that
norms and biases stay unpenalised in a training step."""

import jax
import jax.numpy as jnp
import pytest
from flax import nnx

import optax_l1
from optax_l1.examples.masks import path_mask


class Block(nnx.Module):
  """Linear → LayerNorm → Linear: kernels to penalise, and a norm and biases to leave free."""

  def __init__(self, rngs: nnx.Rngs):
    self.linear1 = nnx.Linear(6, 5, rngs=rngs)
    self.norm = nnx.LayerNorm(5, rngs=rngs)
    self.linear2 = nnx.Linear(5, 3, rngs=rngs)

  def __call__(self, x):
    return self.linear2(jax.nn.relu(self.norm(self.linear1(x))))


def test_path_mask_selects_kernels_by_name():
  params = nnx.state(Block(nnx.Rngs(0)), nnx.Param)
  mask = path_mask("kernel")(params)
  assert nnx.to_pure_dict(mask) == {
    "linear1": {"bias": False, "kernel": True},
    "linear2": {"bias": False, "kernel": True},
    "norm": {"bias": False, "scale": False},
  }
  assert all(type(leaf) is bool for leaf in jax.tree.leaves(mask))
  # The same from plain arrays (what nnx.Optimizer passes to `update`), and from Linen's dicts.
  assert path_mask()(nnx.as_pure(params)) == mask
  only_two = path_mask("linear2/kernel")(nnx.to_pure_dict(params))
  assert only_two["linear2"]["kernel"] and not only_two["linear1"]["kernel"]
  assert nnx.to_pure_dict(path_mask("bias")(params))["norm"] == {"bias": True, "scale": False}


@pytest.mark.parametrize("precomputed", [False, True], ids=["callable", "tree of bools"])
def test_path_mask_leaves_norms_and_biases_unpenalised(precomputed):
  model = Block(nnx.Rngs(0))
  mask = path_mask("kernel")
  if precomputed:
    mask = mask(nnx.state(model, nnx.Param))
  optimizer = nnx.Optimizer(model, optax_l1.adam(0.1, l1=1e3, mask=mask), wrt=nnx.Param)
  before = nnx.to_pure_dict(nnx.state(model, nnx.Param))

  @nnx.jit
  def step(model, optimizer, x):
    optimizer.update(model, nnx.grad(lambda m: jnp.mean(m(x) ** 2))(model))

  step(model, optimizer, jax.random.normal(jax.random.key(1), (8, 6)))
  after = nnx.to_pure_dict(nnx.state(model, nnx.Param))
  for layer in ("linear1", "linear2"):  # a huge λ removes every kernel entry ...
    assert jnp.all(after[layer]["kernel"] == 0)
    assert jnp.all(after[layer]["bias"] != 0)  # ... while the biases just take Adam's step
  for name in ("scale", "bias"):  # the LayerNorm takes Adam's step: |Δ| = lr (or 0)
    delta = jnp.abs(after["norm"][name] - before["norm"][name])
    assert jnp.all(delta <= 0.1 + 1e-6)
  assert jnp.all(after["norm"]["scale"] > 0.85)
