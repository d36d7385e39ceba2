"""Which target-sparsity recipe wins: the candidates for the default, side by side.

On the digits MLP 64-256-10 (He init, Adam 1e-3, batch 128, 3000 steps; L1 family on both
kernels, biases free), each candidate follows tfmot's cubic ramp from 300 to 2000 steps to 90,
95 or 98 % exact zeros, freezes the zero set there and trains the rest on. Printed: test
accuracy, mean ± std over the seeds, and the exact zeros reached.

Candidates (``optax_l1.adam(1e-3, target_sparsity=ramp, ...)``):

- ``l0``: ``sparsity_penalty="l0"``, a hard threshold in Adam's metric (weights ranked by
  v²·d, kept ones not shrunk) — the default;
- ``l1``: the soft threshold in Adam's metric (ranked by |v|·d, all shrunk);
- ``mcp``: the firm threshold of MCP, γ = 3 (L1's ranking, large weights not shrunk);
- ``l0_magnitude``: ``l0`` with the metric replaced by the identity: weights ranked by |v|
  alone, as magnitude pruning ranks them (with regrowth until the freeze).

Usage::

  .venv/bin/python benchmarks/target_recipes.py                      # all, 3 seeds
  .venv/bin/python benchmarks/target_recipes.py --recipes l0,l1 --seeds 0 --steps 600
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import platform

import jax
import jax.numpy as jnp
import numpy as np
import optax
from _machine import cpu_model
from flax import nnx

import optax_l1
from optax_l1 import _target_sparsity
from optax_l1.examples import digits

RECIPES = ("l0", "l1", "mcp", "l0_magnitude")
LEVELS = (0.9, 0.95, 0.98)


class MLP(nnx.Module):
  def __init__(self, rngs: nnx.Rngs):
    init = nnx.initializers.he_normal()
    self.linear1 = nnx.Linear(64, 256, kernel_init=init, rngs=rngs)
    self.linear2 = nnx.Linear(256, 10, kernel_init=init, rngs=rngs)

  def __call__(self, x):
    return self.linear2(jax.nn.relu(self.linear1(x)))


def train(tx: optax.GradientTransformation, seed: int, steps: int) -> tuple[float, float]:
  """Test accuracy and the kernels' exact-zero fraction after ``steps`` Adam steps."""
  data = digits.load_digits_split(seed)
  x, y = jnp.asarray(data.x_train), jnp.asarray(data.y_train)
  model = MLP(nnx.Rngs(seed))
  graphdef, state = nnx.split((model, nnx.Optimizer(model, tx, wrt=nnx.Param)))

  @jax.jit
  def run(state, keys):
    def body(state, key):
      model, optimizer = nnx.merge(graphdef, state)
      batch = jax.random.randint(key, (128,), 0, x.shape[0])
      loss = lambda m: optax.softmax_cross_entropy_with_integer_labels(m(x[batch]), y[batch])  # noqa: E731
      optimizer.update(model, nnx.grad(lambda m: loss(m).mean())(model))
      return nnx.state((model, optimizer)), None

    return jax.lax.scan(body, state, keys)[0]

  model, _ = nnx.merge(graphdef, run(state, jax.random.split(jax.random.key(seed), steps)))
  logits = model(jnp.asarray(data.x_test))
  accuracy = float(jnp.mean(jnp.argmax(logits, -1) == jnp.asarray(data.y_test)))
  kernels = [model.linear1.kernel[...], model.linear2.kernel[...]]
  return accuracy, optax_l1.sparsity(kernels).fraction


@contextlib.contextmanager
def recipe_patch(recipe: str):
  """The library's internals changed for the variant that is not an option."""
  original_prox = _target_sparsity.controlled_prox
  if recipe == "l0_magnitude":

    def identity_metric(target, state, count, points, params, lr, scales, sample=None):
      if sample is not None:  # the ranked coordinates' points, with the identity metric too
        sample = (sample[0], [1.0 for _ in sample[1]])
      ones = [1.0 for _ in scales]
      return original_prox(target, state, count, points, params, lr, ones, sample)

    _target_sparsity.controlled_prox = identity_metric
  try:
    yield
  finally:
    _target_sparsity.controlled_prox = original_prox


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--recipes", default=",".join(RECIPES))
  parser.add_argument("--seeds", default="0,1,2")
  parser.add_argument("--steps", type=int, default=3000)
  args = parser.parse_args()
  seeds = [int(s) for s in args.seeds.split(",")]
  begin, end = args.steps // 10, 2 * args.steps // 3
  kernel_mask = lambda p: jax.tree.map(lambda a: a.ndim > 1, p)  # noqa: E731
  print(
    f"digits MLP 64-256-10 (He init), Adam 1e-3, batch 128, {args.steps} steps, ramp "
    f"{begin}→{end}, seeds {seeds}; {cpu_model()}, {platform.python_version()}, jax "
    f"{jax.__version__}, {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC\n"
  )
  print("| recipe | " + " | ".join(f"{100 * level:g} % zeros" for level in LEVELS) + " |")
  print("|---|" + "---:|" * len(LEVELS))
  for recipe in args.recipes.split(","):
    penalty = recipe.split("_")[0]
    cells = []
    for level in LEVELS:
      ramp = optax_l1.polynomial_sparsity(level, begin_step=begin, end_step=end)
      with recipe_patch(recipe):
        results = np.array(
          [
            train(
              optax_l1.adam(1e-3, target_sparsity=ramp, sparsity_penalty=penalty, mask=kernel_mask),
              seed,
              args.steps,
            )
            for seed in seeds
          ]
        )
      accuracy, zeros = 100 * results[:, 0], 100 * results[:, 1]
      cells.append(f"{accuracy.mean():.2f} ± {accuracy.std():.2f} ({zeros.mean():.2f} %)")
    print(f"| {recipe} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
  main()
