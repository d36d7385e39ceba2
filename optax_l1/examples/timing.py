"""Forward-pass timing for the examples: jitted, compiled first, the models interleaved.

Examples:
  >>> import jax.numpy as jnp
  >>> from optax_l1.examples import timing
  >>> times = timing.forward_times({"a": jnp.sin, "b": jnp.cos}, jnp.ones(8), repeats=3, calls=2)
  >>> sorted(times), [len(t) for t in times.values()]
  (['a', 'b'], [3, 3])
"""

from __future__ import annotations

import time
from collections.abc import Callable

import jax
import numpy as np


def forward_times(
  models: dict[str, Callable[[jax.Array], jax.Array]], x: jax.Array, *, repeats: int, calls: int
) -> dict[str, list[float]]:
  """Per model, per repeat, the median in seconds of ``calls`` timed calls of its jitted
  forward pass at ``x``. Every model is compiled before the first timed call, and the models
  take turns within each repeat, so that a change of load hits them alike."""
  forwards = {name: jax.jit(model) for name, model in models.items()}
  for forward in forwards.values():
    jax.block_until_ready(forward(x))
  times: dict[str, list[float]] = {name: [] for name in forwards}
  for _ in range(repeats):
    for name, forward in forwards.items():
      taken = []
      for _ in range(calls):
        start = time.perf_counter()
        jax.block_until_ready(forward(x))
        taken.append(time.perf_counter() - start)
      times[name].append(float(np.median(taken)))
  return times
