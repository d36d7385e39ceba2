"""_numerics: masks resolved as optax.masked resolves them, everywhere they are taken."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import optax_l1


def kernels(params):
  return jax.tree.map(lambda x: x.ndim > 1, params)


def _eqx_model():
  return eqx.nn.MLP(4, 3, 8, 2, key=jax.random.key(0))


MASKED = {
  "adam": lambda mask: optax_l1.adam(0.1, l1=0.1, mask=mask),
  "adamw": lambda mask: optax_l1.adamw(0.1, l1=0.1, mask=mask),
  "sgd": lambda mask: optax_l1.sgd(0.1, l1=0.1, mask=mask),
  "group": lambda mask: optax_l1.adam(0.1, group_l1=0.1, group_axis=0, mask=mask),
  "l1_prox": lambda mask: optax.chain(optax.sgd(0.1), optax_l1.l1_prox(0.1, 0.1, mask=mask)),
  "group_l1_prox": lambda mask: optax.chain(
    optax.sgd(0.1), optax_l1.group_l1_prox(0.1, 0.1, axis=0, mask=mask)
  ),
  "optax.adamw": lambda mask: optax.adamw(0.1, mask=mask),
}


@pytest.mark.parametrize("name", list(MASKED))
def test_an_equinox_module_of_bools_is_a_mask_pytree(name):
  params = eqx.filter(_eqx_model(), eqx.is_array)
  module_mask = jax.tree.map(lambda x: x.ndim > 1, params)
  assert callable(module_mask)  # an eqx.Module: callable, but a pytree of bools
  grads = jax.tree.map(lambda x: 0.05 * jnp.ones_like(x), params)
  results = []
  for mask in (module_mask, kernels):  # the same mask as a function
    tx = MASKED[name](mask)
    updates, _ = jax.jit(tx.update)(grads, tx.init(params), params)
    results.append(jax.tree.leaves(optax.apply_updates(params, updates)))
  for a, b in zip(*results, strict=True):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_to_bcoo_takes_an_equinox_mask():
  params = eqx.filter(_eqx_model(), eqx.is_array)
  exported = optax_l1.to_bcoo(params, mask=jax.tree.map(lambda x: x.ndim > 1, params))
  kinds = [
    type(leaf).__name__ for leaf in jax.tree.leaves(exported, is_leaf=lambda x: hasattr(x, "nse"))
  ]
  assert kinds.count("BCOO") == 3  # the three Linear weights


def test_injected_mask_function_without_static_args_raises():
  tx = optax.inject_hyperparams(optax_l1.adam)(learning_rate=0.1, l1=0.5, mask=kernels)
  params = {"w": jnp.ones((2, 2)), "b": jnp.ones(2)}
  for update in (tx.update, jax.jit(tx.update)):
    with pytest.raises(TypeError, match="static_args='mask'"):
      update(params, tx.init(params), params)
  fixed = optax.inject_hyperparams(optax_l1.adam, static_args="mask")(
    learning_rate=0.1, l1=0.5, mask=kernels
  )
  params = {"w": jnp.full((2, 2), 0.01), "b": jnp.full(2, 0.01)}
  updates, _ = fixed.update(jax.tree.map(jnp.zeros_like, params), fixed.init(params), params)
  new = optax.apply_updates(params, updates)
  assert np.all(np.asarray(new["w"]) == 0) and np.all(np.asarray(new["b"]) != 0)
