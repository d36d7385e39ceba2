"""Tests of the export of sparse weights to BCOO."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.experimental import sparse

import optax_l1


def sparse_matrix(shape, density, seed=0, dtype=np.float32):
  rng = np.random.default_rng(seed)
  values = rng.standard_normal(shape)
  return jnp.asarray(np.where(rng.random(shape) < density, values, 0.0), dtype)


@pytest.mark.parametrize("density", [0.0, 0.05, 0.5, 1.0])
def test_matmul_equals_the_dense_one(density):
  kernel = sparse_matrix((64, 256), density)
  x = jax.random.normal(jax.random.key(0), (32, 64))
  exported = optax_l1.to_bcoo({"kernel": kernel})["kernel"]
  assert isinstance(exported, sparse.BCOO)
  matmul = jax.jit(lambda x, w: x @ w)
  chex.assert_trees_all_close(matmul(x, exported), matmul(x, kernel), atol=1e-5, rtol=0)
  chex.assert_trees_all_close(
    jax.jit(sparse.sparsify(jnp.matmul))(x, exported), x @ kernel, atol=1e-5, rtol=0
  )


def test_holds_only_the_non_zeros():
  kernel = sparse_matrix((30, 40), 0.1, seed=1).at[0, 0].set(-0.0)
  exported = optax_l1.to_bcoo({"kernel": kernel})["kernel"]
  nnz = int(jnp.count_nonzero(kernel))
  assert exported.nse == nnz == exported.data.shape[0]
  assert exported.indices.shape == (nnz, 2)
  assert bool(jnp.all(exported.data != 0))
  np.testing.assert_array_equal(kernel[tuple(exported.indices.T)], exported.data)
  np.testing.assert_array_equal(exported.todense(), kernel)
  assert nnz == optax_l1.sparsity(kernel).size - optax_l1.sparsity(kernel).zeros


def test_default_converts_float_matrices_only():
  params = {
    "dense": {"kernel": sparse_matrix((5, 4), 0.5), "bias": jnp.array([0.0, 1.0, 0.0, 2.0])},
    "conv": sparse_matrix((3, 3, 2, 4), 0.5),
    "step": jnp.array([[1, 0], [0, 2]], jnp.int32),
    "scale": jnp.float32(0.0),
    "nothing": None,
  }
  exported = optax_l1.to_bcoo(params)
  assert isinstance(exported["dense"]["kernel"], sparse.BCOO)
  for path in (("dense", "bias"), ("conv",), ("step",), ("scale",)):
    leaf, original = exported, params
    for key in path:
      leaf, original = leaf[key], original[key]
    assert leaf is original, path
  assert exported["nothing"] is None


def test_mask_selects_the_leaves():
  params = {
    "dense": {"kernel": sparse_matrix((5, 4), 0.5), "bias": jnp.array([0.0, 1.0, 0.0, 2.0])},
    "conv": sparse_matrix((3, 3, 2, 4), 0.5),
    "head": sparse_matrix((4, 2), 0.5),
    "step": jnp.array([[1, 0], [0, 2]], jnp.int32),
  }
  mask = {"dense": True, "conv": True, "head": False, "step": True}  # a prefix of the params
  for given in (mask, lambda p: mask):
    exported = optax_l1.to_bcoo(params, mask=given)
    bias, conv = exported["dense"]["bias"], exported["conv"]
    assert isinstance(bias, sparse.BCOO) and bias.nse == 2 and bias.shape == (4,)
    assert isinstance(conv, sparse.BCOO) and conv.indices.shape[1] == 4
    np.testing.assert_array_equal(conv.todense(), params["conv"])
    assert exported["head"] is params["head"]
    assert exported["step"] is params["step"]  # integer leaves are never converted


def test_mask_must_match_the_params():
  with pytest.raises(ValueError, match="mask must have the structure"):
    optax_l1.to_bcoo({"a": jnp.ones((2, 2))}, mask={"b": True})


def test_keeps_the_dtype():
  kernel = sparse_matrix((8, 8), 0.3, dtype=jnp.bfloat16)
  exported = optax_l1.to_bcoo([kernel])[0]
  assert exported.dtype == jnp.bfloat16 == exported.data.dtype


def test_nnx_state():
  from flax import nnx

  from optax_l1.examples import digits

  model = digits.MLP(16, rngs=nnx.Rngs(0))
  model.linear1.kernel[...] = jnp.where(
    jnp.abs(model.linear1.kernel[...]) < 0.1, 0.0, model.linear1.kernel[...]
  )
  exported = nnx.as_pure(optax_l1.to_bcoo(nnx.state(model, nnx.Param)))
  assert exported["linear1"]["kernel"].nse == int(jnp.count_nonzero(model.linear1.kernel[...]))
  x = jnp.asarray(digits.load_digits_split().x_test[:50])

  @jax.jit
  def apply(p, x):
    hidden = jax.nn.relu(x @ p["linear1"]["kernel"] + p["linear1"]["bias"])
    return hidden @ p["linear2"]["kernel"] + p["linear2"]["bias"]

  chex.assert_trees_all_close(apply(exported, x), model(x), atol=1e-5, rtol=0)
