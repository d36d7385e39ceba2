"""Tests of the sparsity report."""

import json

import jax
import jax.numpy as jnp
import numpy as np

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
