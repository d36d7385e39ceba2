"""The argument checks every constructor shares (``optax_l1._validation``), where one test calls
constructors of several modules: a group axis must be an int, and a NumPy integer is one.

A constructor's own checks are tested with it (alias_test.py, last_stage_test.py, prox_test.py, …).
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optax_l1


@pytest.mark.parametrize("axis", [1.0, "0", True], ids=["float", "str", "bool"])
def test_group_axis_that_is_not_an_int_raises_type_error(axis):
  with pytest.raises(TypeError, match=r"^group_axis must be a Python int"):
    optax_l1.adam(0.1, group_l1=0.1, group_axis=axis)
  with pytest.raises(TypeError, match=r"^axis must be a Python int"):
    optax_l1.group_l1_prox(0.1, 0.1, axis=axis)


def test_numpy_integer_axes_are_accepted():
  params = jnp.ones((3, 4))
  for tx in (
    optax_l1.adam(0.1, group_l1=0.1, group_axis=np.int64(0)),
    optax.chain(optax.sgd(0.1), optax_l1.group_l1_prox(0.1, 0.1, axis=np.int32(0))),
  ):
    updates, _ = tx.update(params, tx.init(params), params)
    assert updates.shape == (3, 4)


# Regressions of the first-hour defects (x64, complex, masks, injection, Rngs, untouched rows,
# momentum, errors).


def test_an_injected_axis_is_reported_as_traced():
  tx = optax.inject_hyperparams(optax_l1.group_l1_prox)(l1=0.1, learning_rate=0.1, axis=0)
  with pytest.raises(
    TypeError, match=r"axis must be a Python int, got a traced value.*static_args"
  ):
    jax.jit(tx.update)(jnp.ones((2, 2)), tx.init(jnp.ones((2, 2))), jnp.ones((2, 2)))
