"""The frontier benchmark runs, and its gradual magnitude pruning is tfmot's."""

import math
import pathlib
import re
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

ROOT = pathlib.Path(__file__).parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

import frontier  # noqa: E402
import frontier_models  # noqa: E402
import pruning  # noqa: E402


def _reference_sparsity(step, initial, final, begin, end, power=3):
  # Zhu & Gupta (2017), eq. 1, as tfmot's PolynomialDecay computes it.
  p = min(1.0, max(0.0, (step - begin) / (end - begin)))
  return final + (initial - final) * (1 - p) ** power


def test_polynomial_decay_is_the_cubic_ramp_updated_every_frequency_steps():
  schedule = pruning.PolynomialDecay(0.1, 0.9, begin_step=100, end_step=500, frequency=100)
  for step in range(0, 700, 25):
    prune, sparsity = schedule(step)
    expected = _reference_sparsity(step, 0.1, 0.9, 100, 500)
    np.testing.assert_allclose(float(sparsity), expected, rtol=1e-6)
    assert bool(prune) == (step in (100, 200, 300, 400, 500)), step
  assert float(schedule(100)[1]) == pytest.approx(0.1)  # begin: the initial sparsity
  assert float(schedule(300)[1]) == pytest.approx(0.9 - 0.8 / 8)  # middle: (1 - 1/2)³
  assert float(schedule(500)[1]) == pytest.approx(0.9)  # end (a mask update, as in tfmot)
  # end - begin not a multiple of frequency: the last update is the last multiple, not end.
  ragged = pruning.PolynomialDecay(0.0, 0.5, begin_step=0, end_step=250, frequency=100)
  assert [bool(ragged(t)[0]) for t in (0, 100, 200, 250, 300)] == [True] * 3 + [False] * 2


def _params(key=0):
  k1, k2 = jax.random.split(jax.random.key(key))
  return {
    "a": {"kernel": jax.random.normal(k1, (64, 256)), "bias": jnp.ones(256)},
    "b": {"kernel": jax.random.normal(k2, (256, 10)), "bias": jnp.ones(10)},
  }


@pytest.mark.parametrize("sparsity", [0.0, 0.3, 0.8, 0.95, 0.98, 0.999])
def test_masks_hit_the_target_per_layer_within_one_weight(sparsity):
  params = _params()
  masks = pruning.masks_at(params, frontier_models.kernel_mask, sparsity)
  for layer in ("a", "b"):
    kernel, mask = params[layer]["kernel"], masks[layer]["kernel"]
    kept = int(mask.sum())
    assert abs(kept - kernel.size * (1 - sparsity)) <= 1
    assert kept >= 1
    # The kept weights are the largest in magnitude.
    assert float(jnp.abs(kernel)[mask].min()) >= float(jnp.abs(kernel)[~mask].max(initial=0))
    assert bool(masks[layer]["bias"])  # biases are never pruned
  masks = pruning.masks_at(params, frontier_models.kernel_mask, sparsity, scope="global")
  kept = sum(int(masks[layer]["kernel"].sum()) for layer in ("a", "b"))
  assert abs(kept - (64 * 256 + 256 * 10) * (1 - sparsity)) <= 1


def test_unit_masks_remove_whole_columns_by_incoming_norm():
  params = _params()
  mask = {"a": {"kernel": True, "bias": False}, "b": {"kernel": False, "bias": False}}
  masks = pruning.masks_at(params, mask, 0.9, granularity="unit")
  columns = np.asarray(masks["a"]["kernel"])
  assert (columns == columns[:1]).all()  # whole columns
  kept = columns[0]
  assert kept.sum() == round(256 * 0.1)
  norms = np.linalg.norm(np.asarray(params["a"]["kernel"]), axis=0)
  assert norms[kept].min() > norms[~kept].max()
  assert masks["b"]["kernel"].shape == ()  # not pruned


def _train(schedule, steps, **kwargs):
  params = _params()
  tx = pruning.prune_low_magnitude(
    optax.adam(1e-2), schedule, frontier_models.kernel_mask, **kwargs
  )

  @jax.jit
  def run(params, keys):
    def body(carry, key):
      params, state = carry
      grads = jax.tree.map(lambda p: jax.random.normal(key, p.shape), params)
      updates, state = tx.update(grads, state, params)
      params = optax.apply_updates(params, updates)
      return (params, state), (params, state.masks)

    return jax.lax.scan(body, (params, tx.init(params)), keys)[1]

  return run(params, jax.random.split(jax.random.key(1), steps))


def test_gmp_follows_the_schedule_in_training_and_holds_exact_zeros():
  begin, end, frequency = 10, 50, 10
  schedule = pruning.PolynomialDecay(0.0, 0.9, begin, end, frequency=frequency)
  history, masks = _train(schedule, 80)
  for t in range(80):  # after update t, the forward pass t + 1 sees the mask of pruning step t+1
    last = max([s for s in range(begin, end + 1, frequency) if s <= t + 1], default=None)
    target = 0.0 if last is None else float(schedule.sparsity(last))
    for layer in ("a", "b"):
      kernel = history[layer]["kernel"][t]
      mask = masks[layer]["kernel"][t]
      assert abs(int(mask.sum()) - kernel.size * (1 - target)) <= 1, (t, layer)
      np.testing.assert_array_equal(kernel == 0, ~mask)  # pruned weights exactly 0, others not
      assert (history[layer]["bias"][t] != 0).all()


def test_gmp_mask_is_fixed_after_end_step():
  schedule = pruning.PolynomialDecay(0.0, 0.8, begin_step=5, end_step=25, frequency=5)
  history, masks = _train(schedule, 60, scope="global")
  for layer in ("a", "b"):
    final = masks[layer]["kernel"][24]  # after update 24: pruning step 25 = end_step
    for t in range(24, 60):
      np.testing.assert_array_equal(masks[layer]["kernel"][t], final)
      np.testing.assert_array_equal(history[layer]["kernel"][t] == 0, ~final)
    # ...while it did change during the ramp.
    assert not np.array_equal(masks[layer]["kernel"][19], final)


def test_one_shot_pruning_happens_once():
  schedule = pruning.ConstantSparsity(0.9, begin_step=20, end_step=20, frequency=1)
  _, masks = _train(schedule, 40)
  kept = [int(masks["a"]["kernel"][t].sum()) for t in range(40)]
  assert kept[:19] == [64 * 256] * 19  # dense until the forward pass 20
  assert set(kept[19:]) == {round(64 * 256 * 0.1)}


@pytest.mark.slow
def test_quick_run_prints_a_row_per_method(capsys):
  methods = ["dense", "gmp", "gmp_global", "penalty_prune_finetune", "gmp_units"]
  args = ["--quick", "--datasets", "digits", "--seeds", "0", "--levels", "90"]
  frontier.main([*args, "--unit-levels", "80", "--lambdas", "1e-4", "--methods", ",".join(methods)])
  out = capsys.readouterr().out
  rows = {}
  for line in out.splitlines():
    cells = [c.strip() for c in line.split("|")[1:-1]]
    if len(cells) == 2 and cells[0] in methods:  # the accuracy tables: method, one level
      rows.setdefault(cells[0], []).append(cells[1])
  assert set(rows) == set(methods)
  assert len(rows["dense"]) == 2  # the reference row of both tables
  for method, entries in rows.items():
    for entry in entries:  # "acc ± std (measured sparsity[, λ])"
      numbers = [float(x) for x in re.findall(r"[-+\w.]+", entry.split(", λ")[0])]
      assert len(numbers) == 3, entry
      assert all(math.isfinite(x) for x in numbers), (method, entry)
      assert 0 <= numbers[0] <= 100
  assert "(90.0" in rows["gmp"][0] and "λ 0.0001" in rows["penalty_prune_finetune"][0]
  assert "| digits | gmp | 90 |" in out  # the timing table


def test_cnn_convs_as_matmuls_match_lax_conv():
  keys = jax.random.split(jax.random.key(0), 2)
  x = jax.random.normal(keys[0], (4, 40, 3))
  for width in (5, 3):
    kernel = jax.random.normal(keys[1], (width, 3, 6))
    expected = jax.lax.conv_general_dilated(
      x, kernel, (1,), "SAME", dimension_numbers=("NWC", "WIO", "NWC")
    )
    actual = frontier_models.conv1d_as_matmul(x, kernel, (1,), "SAME")
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-5)


def test_units_removed_counts_dead_inputs_or_dead_outputs():
  task = frontier_models.TASKS["mnist1d_cnn"]
  w = {
    name: {"kernel": jnp.ones(shape)}
    for name, shape in [
      ("conv1", (5, 1, 4)),
      ("conv2", (3, 4, 4)),
      ("conv3", (3, 4, 4)),
      ("head", (4, 10)),
    ]
  }
  w["conv1"]["kernel"] = w["conv1"]["kernel"].at[:, :, 0].set(0)  # channel 0 of conv1: no input
  w["conv3"]["kernel"] = w["conv3"]["kernel"].at[:, 2, :].set(0)  # channel 2 of conv2: no output
  w["head"]["kernel"] = w["head"]["kernel"].at[1:3].set(0)  # channels 1, 2 of conv3: no output
  w["conv3"]["kernel"] = w["conv3"]["kernel"].at[0, 0, 3].set(0)  # one zero weight: not a unit
  assert frontier_models.units_removed(task, w) == (4, 12)
