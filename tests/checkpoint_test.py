"""Checkpoint and resume with orbax: a run resumed in a new process is bitwise the same run.

Every optimizer trains a small linear regression (L1 on the kernel) for ``STEPS`` steps in
this process, saving its params and optimizer state at step ``SAVE_AT`` with
``ocp.CheckpointManager`` and ``ocp.args.StandardSave``. A second Python process (this file run
as a script) restores each checkpoint with ``ocp.args.StandardRestore`` and the abstract target
``jax.eval_shape(lambda p: {"params": p, "opt_state": tx.init(p)}, params)``, so the optimizer
states come back as their ``NamedTuple`` s, and trains the remaining steps. On CPU the resumed
run must equal the uninterrupted one bit for bit (params and optimizer state), exact zeros
included. To keep this fast, one subprocess serves every optimizer, and one jitted function
steps them all (one compilation per process).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp

import optax_l1

STEPS, SAVE_AT = 16, 7
BATCH, IN, OUT = 16, 10, 4


def kernels(params):
  return jax.tree.map(lambda x: x.ndim > 1, params)


class AdamaxState(NamedTuple):
  mu: optax.Updates
  u: optax.Updates


def adamax(b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8):
  """A user-written preconditioner (AdaMax) whose state is a NamedTuple of its own."""

  def init(params):
    return AdamaxState(optax.tree.zeros_like(params), optax.tree.zeros_like(params))

  def update(grads, state, count):
    mu = jax.tree.map(lambda g, m: b1 * m + (1 - b1) * g, grads, state.mu)
    u = jax.tree.map(lambda g, u: jnp.maximum(b2 * u, jnp.abs(g)), grads, state.u)
    scale = jax.tree.map(lambda u: 1 / (u + eps), u)
    direction = jax.tree.map(lambda m, s: m / (1 - b1**count) * s, mu, scale)
    return direction, scale, AdamaxState(mu, u)

  return optax_l1.preconditioners.Preconditioner(init, update)


# name -> (optimizer factory, params dtype). Strengths chosen so that every run ends with
# some, but not all, kernel entries exactly zero.
OPTIMIZERS = {
  "sgd_momentum": (lambda: optax_l1.sgd(0.05, l1=0.02, momentum=0.9, mask=kernels), "float32"),
  "adam": (lambda: optax_l1.adam(0.02, l1=0.05, mask=kernels), "float32"),
  "adamw": (lambda: optax_l1.adamw(0.02, weight_decay=0.01, l1=0.05, mask=kernels), "float32"),
  "rmsprop": (lambda: optax_l1.rmsprop(0.01, l1=0.1, mask=kernels), "float32"),
  "adagrad": (lambda: optax_l1.adagrad(0.1, l1=0.1, l2=0.1, mask=kernels), "float32"),
  "proximal_adamax": (
    lambda: optax_l1.proximal(adamax(), 0.02, l1=0.05, mask=kernels),
    "float32",
  ),
  "chain_sgd_l1_prox": (
    lambda: optax.chain(optax.sgd(0.05), optax_l1.l1_prox(0.5, 0.05, mask=kernels)),
    "float32",
  ),
  "adam_group_l1": (
    lambda: optax_l1.adam(0.02, l1=0.02, group_l1=0.05, group_axis=0, mask=kernels),
    "float32",
  ),
  # The controller's strength, saved mid-ramp; the freeze (step 10) happens after the resume.
  "adam_target_sparsity": (
    lambda: optax_l1.adam(
      0.02,
      target_sparsity=optax_l1.polynomial_sparsity(0.6, begin_step=2, end_step=10),
      mask=kernels,
    ),
    "float32",
  ),
  # The state holds the injected hyperparameters and a schedule's step count.
  "inject_adam_schedule": (
    lambda: optax.inject_hyperparams(optax_l1.adam, static_args="mask")(
      learning_rate=optax.cosine_decay_schedule(0.02, STEPS), l1=0.05, mask=kernels
    ),
    "float32",
  ),
  "ftrl": (lambda: optax_l1.ftrl(0.3, l1=0.2, l2=0.01, mask=kernels), "float32"),
  "adam_bfloat16": (lambda: optax_l1.adam(0.02, l1=0.05, mask=kernels), "bfloat16"),
}


def problem():
  """Initial params of a linear model for each optimizer, and STEPS fixed minibatches."""
  rng = np.random.default_rng(0)
  init = {"kernel": rng.normal(size=(IN, OUT)) / np.sqrt(IN), "bias": np.zeros(OUT)}
  params = {
    name: jax.tree.map(lambda x, dtype=dtype: jnp.asarray(x, dtype), init)
    for name, (_, dtype) in OPTIMIZERS.items()
  }
  x = rng.normal(size=(STEPS, BATCH, IN)).astype(np.float32)
  w_true = np.zeros((IN, OUT), np.float32)
  w_true[: IN // 2] = rng.normal(size=(IN // 2, OUT))  # only half the inputs matter
  y = x @ w_true + 0.1 * rng.normal(size=(STEPS, BATCH, OUT)).astype(np.float32)
  return params, jnp.asarray(x), jnp.asarray(y)


def loss(params, x, y):
  p = jax.tree.map(lambda a: a.astype(jnp.float32), params)
  return jnp.mean((x @ p["kernel"] + p["bias"] - y) ** 2)


def make_step(txs):
  """One jitted step of every optimizer (each on its own params), so each process compiles once."""

  @jax.jit
  def step(params, states, x, y):
    new_params, new_states = {}, {}
    for name, tx in txs.items():
      grads = jax.grad(loss)(params[name], x, y)
      updates, new_states[name] = tx.update(grads, states[name], params[name])
      new_params[name] = optax.apply_updates(params[name], updates)
    return new_params, new_states

  return step


def leaf_bytes(tree) -> list[bytes]:
  return [np.asarray(leaf).tobytes() for leaf in jax.tree.leaves(tree)]


def save_leaves(path: Path, tree) -> None:
  np.savez(path, *[np.frombuffer(b, np.uint8) for b in leaf_bytes(tree)])


def load_leaves(path: Path) -> list[bytes]:
  with np.load(path) as data:
    return [data[f"arr_{i}"].tobytes() for i in range(len(data.files))]


def resume_all(root: Path) -> None:
  """The second process: restore every checkpoint, train to STEPS, save the final trees."""
  txs = {name: make() for name, (make, _) in OPTIMIZERS.items()}
  init_params, x, y = problem()
  params, states, report = {}, {}, {}
  for name, tx in txs.items():
    abstract = jax.eval_shape(
      lambda p, tx=tx: {"params": p, "opt_state": tx.init(p)}, init_params[name]
    )
    with ocp.CheckpointManager(root / name) as manager:
      start = manager.latest_step()
      restored = manager.restore(start, args=ocp.args.StandardRestore(abstract))
    params[name], states[name] = restored["params"], restored["opt_state"]
    report[name] = {"start": start, "treedef": str(jax.tree.structure(restored))}
  assert len({r["start"] for r in report.values()}) == 1
  step = make_step(txs)
  for k in range(start, STEPS):
    params, states = step(params, states, x[k], y[k])
  for name in txs:
    save_leaves(root / f"{name}-params.npz", params[name])
    save_leaves(root / f"{name}-opt_state.npz", states[name])
  (root / "report.json").write_text(json.dumps(report))


def test_resumed_in_a_new_process_is_bitwise_the_uninterrupted_run(tmp_path):
  # One test, not one per optimizer: under pytest-xdist a shared fixture would run (and
  # spawn its subprocess) once per worker.
  txs = {name: make() for name, (make, _) in OPTIMIZERS.items()}
  params, x, y = problem()
  states = {name: tx.init(params[name]) for name, tx in txs.items()}
  step = make_step(txs)
  treedefs = {}
  for k in range(STEPS):
    if k == SAVE_AT:
      for name in txs:
        tree = {"params": params[name], "opt_state": states[name]}
        treedefs[name] = str(jax.tree.structure(tree))
        with ocp.CheckpointManager(tmp_path / name) as manager:
          manager.save(k, args=ocp.args.StandardSave(tree))
          manager.wait_until_finished()
    params, states = step(params, states, x[k], y[k])

  completed = subprocess.run(
    [sys.executable, __file__, str(tmp_path)],
    capture_output=True,
    text=True,
    timeout=300,
    check=False,
  )
  assert completed.returncode == 0, completed.stderr[-4000:]
  report = json.loads((tmp_path / "report.json").read_text())

  for name in txs:
    assert report[name]["start"] == SAVE_AT, name
    # The restored state has the optimizer's own structure: NamedTuples, not dicts.
    assert report[name]["treedef"] == treedefs[name], name
    resumed_state = load_leaves(tmp_path / f"{name}-opt_state.npz")
    assert resumed_state == leaf_bytes(states[name]), f"{name}: optimizer states differ"
    resumed = load_leaves(tmp_path / f"{name}-params.npz")
    assert resumed == leaf_bytes(params[name]), f"{name}: params differ"  # bit for bit
    for got, leaf in zip(resumed, jax.tree.leaves(params[name]), strict=True):
      leaf = np.asarray(leaf)
      got = np.frombuffer(got, leaf.dtype).reshape(leaf.shape)
      np.testing.assert_array_equal(got == 0, leaf == 0, err_msg=name)  # the same exact zeros
    zeros = np.mean(np.asarray(params[name]["kernel"]) == 0)
    assert 0 < zeros < 1, f"{name}: {zeros:.0%} exact zeros, want some but not all"


def test_standard_checkpointer_round_trips_the_optimizer_state_types(tmp_path):
  """StandardCheckpointer, in one process: the restored state is the optimizer's own types."""
  tx = optax_l1.adam(0.02, l1=0.05, mask=kernels)
  params = problem()[0]["adam"]
  state = tx.init(params)
  state = state._replace(count=jnp.asarray(3, jnp.int32))
  with ocp.StandardCheckpointer() as checkpointer:
    checkpointer.save(tmp_path / "ckpt", {"params": params, "opt_state": state})
    checkpointer.wait_until_finished()
    abstract = jax.eval_shape(lambda p: {"params": p, "opt_state": tx.init(p)}, params)
    restored = checkpointer.restore(tmp_path / "ckpt", abstract)
  assert isinstance(restored["opt_state"], optax_l1.ProximalState)
  assert isinstance(restored["opt_state"].preconditioner, optax_l1.preconditioners.AdamState)
  assert restored["opt_state"].count.dtype == jnp.int32 and int(restored["opt_state"].count) == 3
  assert leaf_bytes(restored) == leaf_bytes({"params": params, "opt_state": state})


if __name__ == "__main__":
  resume_all(Path(sys.argv[1]))
