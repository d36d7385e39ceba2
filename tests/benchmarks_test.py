"""The benchmark scripts run, and the baselines they measure against compute the right thing.

``benchmarks/threshold_forms.py``: its clip and select forms of the soft threshold agree with
the closed form; ``benchmarks/step_overhead.py``: its minimal-prox floor is a correct prox;
``benchmarks/compaction.py`` writes its table. The numbers they print are in
``benchmarks/RESULTS.md``, not checked here.
"""

import pathlib
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import references

ROOT = pathlib.Path(__file__).parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

import group_prox_floor  # noqa: E402
import step_overhead  # noqa: E402
import threshold_forms  # noqa: E402

# ----------------------------------------------------------------------------------------------
# threshold_forms.py
# ----------------------------------------------------------------------------------------------


def test_clip_and_select_forms_agree_with_the_closed_form():
  keys = jax.random.split(jax.random.key(0), 3)
  p = 1e-7 * jax.random.normal(keys[0], (4096,))  # on the scale of the threshold lr·l1
  g = 1e-4 * jax.random.normal(keys[1], (4096,))
  nu = jax.random.uniform(keys[2], (4096,))
  p, g = p.at[0].set(np.nan), g.at[1].set(np.nan)
  forms = {name: np.asarray(fn(p, g, nu)) for name, (_, fn) in threshold_forms.FORMS.items()}
  clip, select = (forms[f"+ soft threshold ({how}, array t)"] for how in ("jnp.clip", "selects"))
  np.testing.assert_array_equal(clip, select)  # NaN where NaN, bit for bit elsewhere
  s = 1 / np.sqrt(np.float64(nu) + threshold_forms.EPS)
  v = np.float64(p) - threshold_forms.LR * np.float64(g) * s
  t = threshold_forms.T * s
  expected = references.soft_threshold(v, t)
  np.testing.assert_allclose(select, expected, rtol=1e-5, atol=1e-12)
  assert np.isnan(select[:2]).all() and (select == 0).sum() > 1000  # about half are removed


def test_threshold_forms_script_prints_every_form():
  out = subprocess.run(
    [sys.executable, "benchmarks/threshold_forms.py", "--size", "1e4", "--repeats", "2"],
    check=True,
    capture_output=True,
    text=True,
    cwd=ROOT,
  ).stdout
  names = [line.split("|")[1].strip() for line in out.splitlines() if line.startswith("| ")]
  assert names[1:] == list(threshold_forms.FORMS)


# ----------------------------------------------------------------------------------------------
# step_overhead.py
# ----------------------------------------------------------------------------------------------


def test_minimal_prox_is_the_soft_threshold_of_the_sgd_step():
  # The floor the benchmark compares against must do the work optax_l1 does, or its ratio
  # would flatter or slander us: the closed form sign(v)·max(|v| − t, 0), exact zeros.
  params = jnp.array([0.05, -0.05, 1.0, -1.0, 0.0])
  grads = jnp.array([0.0, 1.0, 2.0, -2.0, 0.5])
  tx = optax.chain(optax.sgd(0.1), step_overhead.minimal_prox(0.2))
  updates, _ = tx.update(grads, tx.init(params), params)
  new = np.asarray(optax.apply_updates(params, updates))
  v = np.float32(params) - np.float32(0.1) * np.float32(grads)
  expected = references.soft_threshold(v, np.float32(0.2))
  np.testing.assert_allclose(new, expected, atol=1e-7)
  np.testing.assert_array_equal(new == 0, [True, True, False, False, True])


def test_step_overhead_script_prints_both_tables():
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


# ----------------------------------------------------------------------------------------------
# group_prox_floor.py
# ----------------------------------------------------------------------------------------------


def test_hand_written_group_proxes_compute_what_optax_l1_adam_computes():
  # Their times are compared with the library's: each must be the same method, removing the
  # same groups, or a faster time would mean nothing.
  scale = jnp.linspace(0, 2, 128)[:, None]  # groups of different sizes, so some go and some stay
  params = jax.tree.map(lambda x: x * scale, group_prox_floor.make_params(128, 2))
  txs = group_prox_floor.optimizers(1e-2, 6e-3)
  reference = txs.pop("optax_l1.adam(group_l1, group_axis=1)")
  for name in (
    "optax.adam",
    "Adam alone (hand-written)",
    "+ one reduction (a floor, not the library's prox)",
  ):
    del txs[name]

  def train(tx):
    p, state, update = params, tx.init(params), jax.jit(tx.update)
    for key in jax.random.split(jax.random.key(0), 5):
      grads = jax.tree.map(lambda x, key=key: 1e-2 * jax.random.normal(key, x.shape), p)
      updates, state = update(grads, state, p)
      p = optax.apply_updates(p, updates)
    return p

  expected = train(reference)
  removed = [np.all(np.asarray(x) == 0, axis=(0, 2)) for x in jax.tree.leaves(expected)]
  assert 0.2 < np.mean(removed) < 0.8
  for name, tx in txs.items():
    got = train(tx)
    for e, g, r in zip(jax.tree.leaves(expected), jax.tree.leaves(got), removed, strict=True):
      np.testing.assert_allclose(g, e, atol=1e-5, err_msg=name)
      np.testing.assert_array_equal(np.all(np.asarray(g) == 0, axis=(0, 2)), r, err_msg=name)


def _first_column(script: str, *args: str) -> list[str]:
  """The first cell of each table row ``benchmarks/<script>`` prints, its header's included."""
  out = subprocess.run(
    [sys.executable, f"benchmarks/{script}", *args],
    check=True,
    capture_output=True,
    text=True,
    cwd=ROOT,
  ).stdout
  return [line.split("|")[1].strip() for line in out.splitlines() if line.startswith("| ")]


def test_group_prox_floor_script_prints_every_variant():
  args = ["--channels", "128", "--leaves", "2", "--steps", "2", "--repeats", "2"]
  names = _first_column("group_prox_floor.py", *args)
  assert names[1:] == [
    "optax.adam",
    "optax_l1.adam(group_l1, group_axis=1)",
    *group_prox_floor.VARIANTS,
  ]


def test_group_layouts_overhead_script_prints_every_optimizer():
  args = ["--channels", "64", "--d", "64", "--heads", "4", "--steps", "2", "--repeats", "2"]
  names = _first_column("group_layouts_overhead.py", *args)
  assert names[1:] == [
    "optax.adam",
    "optax_l1.adam(group_l1, per-leaf groups)",
    "optax_l1.adam(group_l1, last axis everywhere)",
    "optax_l1.adam(l1)",
  ]


# ----------------------------------------------------------------------------------------------
# compaction.py
# ----------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_compaction_script_runs(tmp_path):
  output = tmp_path / "results.md"
  args = ["--group-l1", "1e-3", "--steps", "20", "--repeats", "3"]
  subprocess.run(
    [sys.executable, "benchmarks/compaction.py", *args, "--output", str(output)],
    check=True,
    capture_output=True,
    cwd=ROOT,
  )
  text = output.read_text()
  assert "| group λ=0.001 |" in text and "| x @ linear1.kernel (64, 256) |" in text
