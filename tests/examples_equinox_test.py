"""Tests of the Equinox example: exact zeros with a mask of Equinox's tree tools, whole units
with ``group_axis=0`` on ``(out, in)`` weights."""

import equinox as eqx
import jax
import numpy as np
import pytest

from optax_l1.examples import equinox_mlp
from optax_l1.examples.digits import load_digits_split

HIDDEN = 64
STEPS = 400


def test_the_mask_is_a_module_of_bools_with_the_params_structure():
  model = equinox_mlp.make_model(8, key=jax.random.key(0))
  mask = equinox_mlp.weight_mask(model)
  assert isinstance(mask, eqx.nn.MLP) and callable(mask)  # a callable pytree, not a function
  params = eqx.filter(model, eqx.is_array)
  assert jax.tree.structure(mask) == jax.tree.structure(params)
  assert jax.tree.leaves(mask) == [True, False, True, False]  # weight, bias per layer


def test_prox_is_accurate_with_many_exact_zeros_in_the_weights_only():
  result = equinox_mlp.train("prox", l1=3e-3, steps=STEPS, hidden=HIDDEN)
  assert result.test_accuracy > 0.9, result.test_accuracy  # chance: 0.1
  assert result.sparsity.fraction > 0.4, result.sparsity.fraction
  for layer in result.model.layers:
    assert np.mean(np.asarray(layer.weight) == 0) > 0.1
    assert np.all(np.asarray(layer.bias) != 0)  # not in the mask: not thresholded


def test_group_axis_0_removes_whole_rows_of_the_out_in_weight():
  result = equinox_mlp.train("group", l1=1e-2, steps=STEPS, hidden=HIDDEN)
  assert result.test_accuracy > 0.8, result.test_accuracy
  first, last = (np.asarray(layer.weight) for layer in result.model.layers)
  assert first.shape == (HIDDEN, 64)  # (out, in)
  dead = np.all(first == 0, axis=1)  # hidden units without any incoming weight
  assert dead.sum() >= HIDDEN // 4, dead.sum()
  assert result.hidden_units == HIDDEN - dead.sum()
  # Outside the dead rows, only the weights from pixels that never vary are zero (their
  # gradient is always 0, so Adam's metric thresholds them at once): no partial groups.
  varying = load_digits_split().x_train.std(axis=0) > 0
  assert np.all(first[~dead][:, varying] != 0)
  assert np.all(last != 0)  # the second layer is not in the mask


def test_an_unknown_method_is_a_value_error():
  model = equinox_mlp.make_model(4, key=jax.random.key(0))
  with pytest.raises(ValueError, match="method must be one of"):
    equinox_mlp.make_optimizer("lasso", model, 1.0, 1.0)
