"""Same seed, same inputs: bitwise-identical params, across processes and within one (CPU).

The digits example trains 100 steps in two separate Python processes at once; their params
must agree bit for bit, exact zeros included. In this process, every optimizer is built, compiled
and run twice from scratch on the same seeded inputs, with the same result.
"""

import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optax_l1

TRAIN = """
import sys
import jax
import numpy as np
from optax_l1.examples import digits

result = digits.train("prox", steps=100, hidden=32)
flat, _ = jax.tree_util.tree_flatten_with_path(result.params)
np.savez(
  sys.argv[1],
  **{jax.tree_util.keystr(path): np.asarray(leaf) for path, leaf in flat},
)
"""


def test_digits_example_is_bitwise_identical_in_two_processes(tmp_path):
  env = dict(os.environ, JAX_PLATFORMS="cpu")
  outputs = [tmp_path / f"run{i}.npz" for i in range(2)]
  processes = [
    subprocess.Popen(
      [sys.executable, "-c", TRAIN, str(out)],
      env=env,
      stdout=subprocess.PIPE,
      stderr=subprocess.PIPE,
      text=True,
    )
    for out in outputs
  ]
  for process in processes:
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr[-4000:]
  with np.load(outputs[0]) as first, np.load(outputs[1]) as second:
    assert sorted(first.files) == sorted(second.files)
    assert len(first.files) == 4  # two kernels, two biases
    for key in first.files:
      a, b = first[key], second[key]
      assert a.dtype == b.dtype == np.float32 and a.shape == b.shape, key
      assert a.tobytes() == b.tobytes(), key
    kernels = [first[key] for key in first.files if "kernel" in key]
    zeros = np.mean(np.concatenate([np.ravel(k == 0) for k in kernels]))
    assert 0 < zeros < 1  # the runs agree on a non-trivial set of exact zeros


OPTIMIZERS = {
  "sgd_momentum": lambda: optax_l1.sgd(0.05, l1=0.5, momentum=0.9, nesterov=True),
  "adam": lambda: optax_l1.adam(0.05, l1=0.5),
  "adamw": lambda: optax_l1.adamw(0.05, weight_decay=0.1, l1=0.5, l2=0.1),
  "rmsprop": lambda: optax_l1.rmsprop(0.02, l1=0.5),
  "adagrad": lambda: optax_l1.adagrad(0.2, l1=0.5),
  "adam_group_l1": lambda: optax_l1.adam(0.05, l1=0.1, group_l1=0.5),
  "adam_l0": lambda: optax_l1.adam(0.05, l0=0.05),
  "chain_sgd_l1_prox": lambda: optax.chain(optax.sgd(0.05), optax_l1.l1_prox(2.0, 0.05)),
}


def run_from_scratch(name, dtype):
  """Builds the optimizer and its seeded inputs anew, compiles its update, runs 10 steps."""
  rng = np.random.default_rng(0)
  params = jnp.asarray(rng.normal(size=(16, 8)), dtype)
  grads = [jnp.asarray(rng.normal(size=(16, 8)), dtype) for _ in range(10)]
  tx = OPTIMIZERS[name]()
  state = tx.init(params)
  update = jax.jit(tx.update)  # a new closure: compiled anew
  for g in grads:
    updates, state = update(g + 0.1 * params, state, params)
    params = optax.apply_updates(params, updates)
  return params, state


@pytest.mark.parametrize(
  ("name", "dtype"),
  [(name, jnp.float32) for name in OPTIMIZERS] + [("adam", jnp.bfloat16)],
  ids=[*OPTIMIZERS, "adam-bfloat16"],
)
def test_optimizers_are_bitwise_deterministic_in_process(name, dtype):
  first_params, first_state = run_from_scratch(name, dtype)
  second_params, second_state = run_from_scratch(name, dtype)
  assert np.asarray(first_params).tobytes() == np.asarray(second_params).tobytes()
  for a, b in zip(jax.tree.leaves(first_state), jax.tree.leaves(second_state), strict=True):
    assert np.asarray(a).tobytes() == np.asarray(b).tobytes()
  zeros = np.mean(np.asarray(first_params) == 0)
  assert 0 < zeros < 1, f"{name}: {zeros:.0%} exact zeros"
