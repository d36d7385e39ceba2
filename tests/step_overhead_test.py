"""The step-overhead benchmark runs, and its minimal-prox floor is a correct prox."""

import pathlib
import subprocess
import sys

import jax.numpy as jnp
import numpy as np
import optax

ROOT = pathlib.Path(__file__).parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

import step_overhead  # noqa: E402


def test_minimal_prox_is_the_soft_threshold_of_the_sgd_step():
  # The floor the benchmark compares against must do the work optax_l1 does, or its ratio
  # would flatter or slander us: the closed form sign(v)·max(|v| − t, 0), exact zeros.
  params = jnp.array([0.05, -0.05, 1.0, -1.0, 0.0])
  grads = jnp.array([0.0, 1.0, 2.0, -2.0, 0.5])
  tx = optax.chain(optax.sgd(0.1), step_overhead.minimal_prox(0.2))
  updates, _ = tx.update(grads, tx.init(params), params)
  new = np.asarray(optax.apply_updates(params, updates))
  v = np.float32(params) - np.float32(0.1) * np.float32(grads)
  expected = np.sign(v) * np.maximum(np.abs(v) - np.float32(0.2), 0)
  np.testing.assert_allclose(new, expected, atol=1e-7)
  np.testing.assert_array_equal(new == 0, [True, True, False, False, True])


def test_script_prints_both_tables():
  args = ["--sizes", "1e4", "--repeats", "2", "--warmup", "1", "--compile-repeats", "1"]
  args += ["--optimizers", "sgd,sgd+minimal_prox,adam"]
  out = subprocess.run(
    [sys.executable, "benchmarks/step_overhead.py", *args],
    check=True,
    capture_output=True,
    text=True,
    cwd=ROOT,
  ).stdout
  rows = [line.split("|")[1:-1] for line in out.splitlines() if line.startswith("| ")]
  step_rows = [r for r in rows if r[0].strip() != "optimizer"]
  names = [r[0].strip() for r in step_rows]
  assert names == ["sgd", "sgd+minimal_prox", "adam"] * 3  # step, step compile, train compile
  state_bytes = {r[0].strip(): (r[6].strip(), r[7].strip()) for r in step_rows[:3]}
  assert state_bytes["sgd"] == ("0", "4")  # the twin keeps nothing; we keep a step count
  assert state_bytes["sgd+minimal_prox"] == ("0", "0")
  assert "Compile time of a whole training step" in out
