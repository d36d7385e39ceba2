"""Tests of the sparsity report: ``optax_l1.sparsity``, ``SparsityReport``, ``LeafSparsity``."""

import json

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

import optax_l1


def test_counts_exact_zeros_per_leaf_and_in_total():
  params = {
    "dense": {"kernel": jnp.array([[0.0, 1e-30], [-0.0, 2.0]]), "bias": jnp.zeros(3)},
    "scale": np.array([1.0, 0.0]),
    "name": None,
  }
  report = optax_l1.sparsity(params)
  rows = {leaf.path: (leaf.shape, leaf.zeros, leaf.size) for leaf in report.leaves}
  assert rows == {
    "['dense']['bias']": ((3,), 3, 3),
    "['dense']['kernel']": ((2, 2), 2, 4),  # -0.0 is zero, 1e-30 is not
    "['scale']": ((2,), 1, 2),
  }
  assert (report.zeros, report.size) == (6, 9)
  assert report.fraction == 6 / 9


def test_to_dict_is_json_and_str_is_a_table():
  report = optax_l1.sparsity({"w": jnp.array([0.0, 1.0]), "empty": jnp.zeros((0, 3))})
  data = json.loads(json.dumps(report.to_dict()))
  assert data["zeros"] == 1 and data["size"] == 2 and data["fraction"] == 0.5
  assert {leaf["path"]: leaf["fraction"] for leaf in data["leaves"]} == {
    "['empty']": 0.0,
    "['w']": 0.5,
  }
  lines = str(report).splitlines()
  assert lines[0].split() == ["path", "shape", "zeros", "size", "zero", "%"]
  assert lines[-1].split() == ["total", "1", "2", "50.00%"]


def test_works_on_params_produced_under_jit():
  params = jax.jit(lambda x: {"w": optax_l1.soft_threshold(x, 1.0)})(jnp.array([0.5, 2.0, -3.0]))
  assert optax_l1.sparsity(params).zeros == 1


def test_empty_tree():
  report = optax_l1.sparsity({})
  assert (report.zeros, report.size, report.fraction) == (0, 0, 0.0)


# Regressions of the first-hour defects (x64, complex, masks, injection, Rngs, untouched rows,
# momentum, errors).


class _WithRngs(nnx.Module):
  def __init__(self, rngs):
    self.linear = nnx.Linear(3, 4, rngs=rngs)
    self.dropout = nnx.Dropout(0.5, rngs=rngs)
    self.norm = nnx.BatchNorm(4, rngs=rngs)


def test_sparsity_of_a_model_with_rngs_counts_float_leaves_and_lists_the_rest():
  model = _WithRngs(nnx.Rngs(0))
  report = optax_l1.sparsity(nnx.state(model))
  assert report.size == 3 * 4 + 4 + 4 * 4  # kernel, bias, BatchNorm scale/bias/mean/var
  dtypes = {dtype for _, dtype in report.skipped}
  assert any(dtype.startswith("key") for dtype in dtypes) and "uint32" in dtypes
  assert "not counted" in str(report) and report.to_dict()["skipped"]
  assert optax_l1.sparsity({"w": jnp.zeros(3)}).skipped == ()
