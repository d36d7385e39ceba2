"""``jax_enable_x64`` for a block, on every supported JAX: ``jax.enable_x64`` where it exists
(newer releases), ``jax.experimental.enable_x64``/``disable_x64`` before it."""

import jax


def enable_x64(on: bool = True):
  """A context manager that turns float64 on (or off) for the block."""
  if hasattr(jax, "enable_x64"):
    return jax.enable_x64(on)
  from jax.experimental import disable_x64
  from jax.experimental import enable_x64 as turn_on

  return turn_on() if on else disable_x64()
