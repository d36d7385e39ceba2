"""Tests of the click-through example (FTRL on hashed sparse features) and its benchmark.

The data are the example's own synthetic ones, small (20,000 training examples, the size of
the benchmark's ``--quick``: one pass is 78 steps, compiled once per method for all the tests),
so that the whole file runs in about 20 seconds on two CPU cores.
"""

import importlib.util
import pathlib
import re
import sys

import numpy as np
import pytest

from optax_l1.examples import click_through as ct

ROOT = pathlib.Path(__file__).parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

import ftrl_click_through  # noqa: E402

NUM_TRAIN = ftrl_click_through.QUICK.examples


@pytest.fixture(scope="module")
def data():
  return ct.make_data(NUM_TRAIN, 4_000, 10_000, seed=0)


@pytest.fixture(scope="module")
def results(data):
  """Each method once, at its DEFAULTS."""
  return {method: ct.train(method, data) for method in ct.METHODS}


def test_the_data_are_hashed_zipf_ids_with_sparse_true_weights(data):
  ids = data.train_ids
  assert ids.shape == (NUM_TRAIN, ct.ACTIVE) and ids.dtype == np.int32
  assert ids.min() >= 0 and ids.max() < ct.NUM_FEATURES
  assert np.all(np.diff(ids, axis=1) > 0)  # each row sorted, its ids distinct: binary values
  counts = np.bincount(ids.ravel(), minlength=ct.NUM_FEATURES)
  ranked = np.sort(counts)[::-1]
  # Zipf: the most frequent id is in most examples, most ids in a handful or none.
  assert ranked[0] > NUM_TRAIN / 2 and np.median(counts) <= 2, ranked[:5]
  assert np.count_nonzero(data.true_weights) == 300
  assert set(np.unique(data.train_labels)) == {0.0, 1.0}
  assert 0.05 < data.train_labels.mean() < 0.5  # a click rate, not a coin
  # The same seed, the same data; another seed, other data.
  again = ct.make_data(NUM_TRAIN, 4_000, 10_000, seed=0)
  np.testing.assert_array_equal(again.train_ids, ids)
  np.testing.assert_array_equal(again.test_labels, data.test_labels)
  other = ct.make_data(1_000, 10, 10, seed=1)
  assert not np.array_equal(other.train_ids, ids[:1_000])


def test_ftrl_with_l1_has_few_non_zeros_and_loses_nothing(results):
  for r in results.values():
    assert np.isfinite(r.test_log_loss) and np.isfinite(r.validation_log_loss), r
    assert r.test_auc > 0.6, r  # chance is 0.5
  ftrl, dense = results["ftrl"], results["adagrad"]
  assert ftrl.nonzero_weights < results["ftrl_no_l1"].nonzero_weights / 20, results
  assert ftrl.nonzero_weights < dense.nonzero_weights / 20, results
  assert ftrl.nonzero_weights < results["adagrad_l1"].nonzero_weights, results
  assert ftrl.test_log_loss < dense.test_log_loss and ftrl.test_auc > dense.test_auc, results


def test_the_predicted_click_rate_is_the_observed_one(data, results):
  # Log loss is a proper scoring rule: the mean predicted probability matches the click rate.
  for method, r in results.items():
    z = np.asarray(ct.logits(r.params, data.test_ids))
    predicted = np.mean(1 / (1 + np.exp(-z)))
    assert abs(predicted - data.test_labels.mean()) < 0.02, (method, predicted)


def test_a_weight_not_seen_in_training_stays_exactly_zero(data, results):
  unseen = np.bincount(data.train_ids.ravel(), minlength=ct.NUM_FEATURES) == 0
  assert unseen.sum() > 1_000
  for method in ("ftrl", "ftrl_no_l1", "adagrad"):
    assert np.all(np.asarray(results[method].params["w"])[unseen] == 0), method


def test_ftrl_without_l1_takes_adagrads_steps(results):
  # FTRL-Proximal's closed form without a penalty unrolls to w ← w − η g/√n: Adagrad's step
  # (with the same initial accumulator 0.1; optax.adagrad's eps=1e-7 is the only difference).
  ftrl, adagrad = results["ftrl_no_l1"].params["w"], results["adagrad"].params["w"]
  np.testing.assert_allclose(np.asarray(ftrl), np.asarray(adagrad), rtol=1e-4, atol=1e-6)


def test_tune_picks_the_best_validation_loss_without_the_test_set(data):
  best, runs = ct.tune("ftrl", data, grid=((0.1, 0.3), (3.0, 10.0)))
  assert [(r.learning_rate, r.l1) for r in runs] == [
    (0.1, 3.0),
    (0.1, 10.0),
    (0.3, 3.0),
    (0.3, 10.0),
  ]
  assert best.validation_log_loss == min(r.validation_log_loss for r in runs)
  # A method without L1 ignores the grid's strengths.
  _, dense_runs = ct.tune("adagrad", data, grid=((0.1,), (3.0, 10.0)))
  assert [(r.learning_rate, r.l1) for r in dense_runs] == [(0.1, 0.0)]


def test_an_unknown_method_is_a_value_error(data):
  with pytest.raises(ValueError, match="method must be one of"):
    ct.train("sgd", data)


def test_main_prints_a_row_per_method(capsys):
  ct.main(["--examples", str(NUM_TRAIN), "--methods", "ftrl,adagrad"])
  out = capsys.readouterr().out
  rows = [line.split("|")[1].strip() for line in out.splitlines() if line.startswith("| ")]
  assert rows == ["method", "ftrl", "adagrad"], out
  assert "The true weights" in out


def test_benchmark_quick_runs_and_its_ftrl_is_keras_ftrl(capsys, monkeypatch):
  # Keras picks its backend once per process, at its first import (the benchmark's, with JAX).
  if importlib.util.find_spec("keras") is None:
    pytest.skip("keras is not installed")
  if "keras" in sys.modules and sys.modules["keras"].backend.backend() != "jax":
    pytest.skip("keras was imported earlier with another backend than JAX")
  monkeypatch.setenv("KERAS_BACKEND", "jax")
  ftrl_click_through.main(["--quick", "--seeds", "0"])
  out = capsys.readouterr().out
  rows = [line.split("|")[1].strip() for line in out.splitlines() if line.startswith("| ")]
  assert rows == [
    "method",
    *ct.METHODS,
    "(true weights)",
    "step",
    "optimizer step",
    "training step",
  ], out
  # Keras' Ftrl and ours, trained on the same batches from zero, land on the same weights.
  match = re.search(r"the same zero set: (\S+), max \|Δw\| = (\S+) ", out)
  assert match and match[1] == "yes" and float(match[2]) < 1e-5, out
