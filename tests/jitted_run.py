"""Running an optimizer for a few steps under ``jax.jit``, as the optimizer tests all do."""

import jax
import optax


def run_jitted(tx, params, grads_seq):
  """Runs ``tx.update`` under jit; returns the lists of params and of updates after each step.

  Every run also checks the optax contract that the second and later steps reuse the first
  step's compilation (the state keeps its structure, shapes, dtypes and weak types).
  """
  traces = 0

  @jax.jit
  def step(params, state, grads):
    nonlocal traces
    traces += 1
    updates, state = tx.update(grads, state, params)
    return optax.apply_updates(params, updates), updates, state

  state = tx.init(params)
  trajectory, all_updates = [], []
  for grads in grads_seq:
    params, updates, state = step(params, state, grads)
    trajectory.append(params)
    all_updates.append(updates)
  assert traces == 1, f"update was traced {traces} times in {len(grads_seq)} steps"
  return trajectory, all_updates
