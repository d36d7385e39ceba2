"""Sharded parameters (FSDP-style `NamedSharding` over 8 virtual CPU devices).

The sharded tests need 8 devices. On a machine with fewer, `test_on_8_virtual_devices` runs
this file again in a dedicated process with `--xla_force_host_platform_device_count=8`.
"""

import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

import optax_l1

DEVICES = 8
needs_devices = pytest.mark.skipif(
  jax.device_count() < DEVICES, reason="runs in a dedicated 8-device process instead"
)

OPTIMIZERS = {
  "sgd": lambda: optax_l1.sgd(0.1, l1=0.1, momentum=0.9),
  "sgd+l1_prox": lambda: optax.chain(optax.sgd(0.1), optax_l1.l1_prox(0.5, 0.1)),
  "adam": lambda: optax_l1.adam(0.05, l1=0.5),
  "adamw": lambda: optax_l1.adamw(0.05, l1=0.5, weight_decay=0.1),
  "rmsprop": lambda: optax_l1.rmsprop(0.05, l1=2.0),
  "adagrad": lambda: optax_l1.adagrad(0.1, l1=0.5, l2=0.1),
  "ftrl": lambda: optax_l1.ftrl(0.1, l1=0.5, l2=0.1),
}
# The controller counts zeros over all leaves (an all-reduce of one number) and sorts them at
# the ramp's ends.
TARGET_OPTIMIZERS = {
  "adam_target": lambda: optax_l1.adam(0.05, target_sparsity=0.5),
  "adam_target_groups": lambda: optax_l1.adam(0.05, target_sparsity=0.5, target_groups=True),
}
GROUP_OPTIMIZERS = {
  "adam_group": lambda: optax_l1.adam(0.05, group_l1=1.0, l1=0.05),
  "group_l1_prox": lambda: optax.chain(optax.sgd(0.1), optax_l1.group_l1_prox(1.0, 0.1)),
}


def test_on_8_virtual_devices():
  if jax.device_count() >= DEVICES:
    pytest.skip("this process already has 8 devices: the sharded tests run here")
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8", JAX_PLATFORMS="cpu")
  command = [
    sys.executable,
    "-m",
    "pytest",
    "-q",
    "-p",
    "no:cacheprovider",
    "-o",
    "addopts=",
    __file__,
  ]
  result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
  assert result.returncode == 0, result.stdout + result.stderr
  assert " passed" in result.stdout and "skipped" in result.stdout  # only this test skipped


def fsdp_params():
  """An MLP's params, each leaf sharded along its first axis (FSDP), and their gradients."""
  mesh = Mesh(np.array(jax.devices()[:DEVICES]), ("fsdp",))
  rng = np.random.default_rng(0)
  shapes = {"kernel1": (64, 32), "bias1": (32,), "kernel2": (32, 16), "bias2": (16,)}
  # Columns (output units) of magnitudes from 0.01 to 1: the penalties remove the small ones.
  params = {
    k: jnp.asarray(rng.normal(size=s) * np.geomspace(0.01, 1, s[-1]), jnp.float32)
    for k, s in shapes.items()
  }
  grads = [
    {k: jnp.asarray(rng.normal(size=s), jnp.float32) for k, s in shapes.items()} for _ in range(3)
  ]
  sharding = {
    k: NamedSharding(mesh, P("fsdp", *([None] * (len(s) - 1)))) for k, s in shapes.items()
  }
  return params, grads, sharding


def make_step(tx):
  def step(params, state, grads):
    updates, state = tx.update(grads, state, params)
    return optax.apply_updates(params, updates), state

  return jax.jit(step)


def run(tx, params, grads, sharding=None):
  if sharding is not None:
    params = jax.device_put(params, sharding)
    grads = [jax.device_put(g, sharding) for g in grads]
  state = jax.jit(tx.init)(params)
  step = make_step(tx)
  for g in grads:
    params, state = step(params, state, g)
  return params, state, step.lower(params, state, grads[0]).compile().as_text()


@needs_devices
@pytest.mark.parametrize("name", sorted(OPTIMIZERS | GROUP_OPTIMIZERS | TARGET_OPTIMIZERS))
def test_every_leaf_keeps_its_sharding_and_matches_unsharded(name):
  make = (OPTIMIZERS | GROUP_OPTIMIZERS | TARGET_OPTIMIZERS)[name]
  params, grads, sharding = fsdp_params()
  sharded, state, _ = run(make(), params, grads, sharding)
  for key, leaf in sharded.items():
    assert leaf.sharding.is_equivalent_to(sharding[key], leaf.ndim), (key, leaf.sharding)
  for leaf in jax.tree.leaves(state):
    if leaf.ndim:  # moments are sharded like their params
      assert leaf.sharding.spec[0] == "fsdp", leaf.sharding
  unsharded, _, _ = run(make(), params, grads)
  for key in params:
    a, b = np.asarray(sharded[key]), np.asarray(unsharded[key])
    np.testing.assert_array_equal(a == 0, b == 0)
    np.testing.assert_allclose(a, b, atol=1e-6, rtol=1e-6)
  assert 0.05 < np.mean(np.asarray(sharded["kernel1"]) == 0) < 0.99


@needs_devices
@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_elementwise_prox_needs_no_collective(name):
  params, grads, sharding = fsdp_params()
  _, _, hlo = run(OPTIMIZERS[name](), params, grads, sharding)
  assert "all-gather" not in hlo
  assert "all-reduce" not in hlo


@needs_devices
@pytest.mark.parametrize("name", sorted(GROUP_OPTIMIZERS))
def test_group_prox_over_a_sharded_axis_reduces_norms_without_gathering(name):
  # Groups are columns (output units); their norms sum over the sharded rows: an all-reduce of
  # one number per group, never an all-gather of the weights.
  params, grads, sharding = fsdp_params()
  sharded, _, hlo = run(GROUP_OPTIMIZERS[name](), params, grads, sharding)
  assert "all-gather" not in hlo
  assert "all-reduce" in hlo
  assert np.any(np.all(np.asarray(sharded["kernel1"]) == 0, axis=0))  # whole units removed
