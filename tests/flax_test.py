"""One proximal step through Flax NNX's Optimizer and Linen's TrainState gives exact zeros."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import linen, nnx
from flax.training import train_state

import optax_l1


def kernels_only(params):
  return jax.tree.map(lambda x: x.ndim > 1, params)


def test_nnx_optimizer_step_gives_exact_zeros_in_kernels_only():
  model = nnx.Linear(4, 3, rngs=nnx.Rngs(0))
  model.bias[...] = jnp.full((3,), 0.01)
  kernel_before = np.asarray(model.kernel[...])
  l1, lr = 1.0, 0.1  # Adam's first step moves each weight by lr; the threshold is lr·l1/d
  optimizer = nnx.Optimizer(model, optax_l1.adam(lr, l1=l1, mask=kernels_only), wrt=nnx.Param)

  @nnx.jit
  def step(model, optimizer, x):
    grads = nnx.grad(lambda m: jnp.mean(m(x) ** 2))(model)
    optimizer.update(model, grads)

  x = jnp.asarray(np.random.default_rng(0).normal(size=(8, 4)), jnp.float32)
  step(model, optimizer, x)
  kernel = np.asarray(model.kernel[...])
  assert np.mean(kernel == 0) > 0.25
  # Survivors moved by at most lr (Adam's step) + lr·l1/d shrinkage towards zero.
  assert np.all((kernel == 0) | (np.abs(kernel) < np.abs(kernel_before)))
  np.testing.assert_array_less(0, np.abs(np.asarray(model.bias[...])))  # unpenalised

  sparsity = optax_l1.sparsity(nnx.state(model, nnx.Param))
  assert sparsity.zeros == int(np.sum(kernel == 0))


class Linear(linen.Module):
  @linen.compact
  def __call__(self, x):
    return linen.Dense(3)(x)


def test_linen_train_state_apply_gradients_gives_exact_zeros():
  model = Linear()
  x = jnp.asarray(np.random.default_rng(1).normal(size=(8, 4)), jnp.float32)
  params = model.init(jax.random.key(0), x)["params"]
  state = train_state.TrainState.create(
    apply_fn=model.apply, params=params, tx=optax_l1.sgd(0.1, l1=5.0, mask=kernels_only)
  )

  @jax.jit
  def step(state):
    grads = jax.grad(lambda p: jnp.mean(state.apply_fn({"params": p}, x) ** 2))(state.params)
    return state.apply_gradients(grads=grads)

  state = step(state)
  kernel = np.asarray(state.params["Dense_0"]["kernel"])
  assert np.mean(kernel == 0) > 0.25
  assert optax_l1.sparsity(state.params).fraction > 0
  assert isinstance(state.opt_state, optax_l1.ProximalState)
  assert int(state.opt_state.count) == 1
  assert isinstance(optax.tree.get(state.opt_state, "count"), jax.Array)
