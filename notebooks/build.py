"""Builds the notebooks in this folder from the cells below, runs them, and saves them executed.

Run from the repository root:

  .venv/bin/python notebooks/build.py        # every notebook
  .venv/bin/python notebooks/build.py 02     # the notebooks whose file name contains "02"

The notebooks are generated: edit their cells here, not in the ``.ipynb`` files, and rerun this
script. It executes each notebook top to bottom in a fresh kernel (this Python's ``python3``
kernel) with the full budget, without ``OPTAX_L1_NOTEBOOK_BUDGET``, so that the committed
outputs are those of a default run. ``tests/notebooks_test.py`` runs them with the small budget.
"""

from __future__ import annotations

import os
import pathlib
import sys
import textwrap
import time

import nbformat
from nbclient import NotebookClient

HERE = pathlib.Path(__file__).resolve().parent


def _cell(kind: str, source: str, index: int) -> nbformat.NotebookNode:
  source = textwrap.dedent(source).strip("\n")
  if kind == "md":
    cell = nbformat.v4.new_markdown_cell(source)
  else:
    cell = nbformat.v4.new_code_cell(source)
  cell.id = f"cell-{index}"  # stable ids keep rebuilds' diffs to the outputs
  return cell


def notebook(*cells: tuple[str, str]) -> nbformat.NotebookNode:
  nb = nbformat.v4.new_notebook(
    cells=[_cell(kind, source, i) for i, (kind, source) in enumerate(cells)]
  )
  nb.metadata = {
    "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
    "language_info": {"name": "python"},
  }
  return nb


def md(source: str) -> tuple[str, str]:
  return ("md", source)


def code(source: str) -> tuple[str, str]:
  return ("code", source)


# The histogram of |w| on a log scale with the exact zeros as their own bar, shared by the
# notebooks that draw one.
MAGNITUDE_HISTOGRAM = r'''
def magnitude_histogram(ax, weights, label, color, offset=0.0, width=0.8, decades=(-9, 1)):
  """Histogram of log10|w| over the nonzero weights, and a hatched bar of the exact zeros.

  Nonzero magnitudes below 10**decades[0] join the first bin; the zeros' bar stands two
  decades to the left of it (shifted by `offset`, to put several side by side).
  """
  w = np.abs(np.asarray(weights)).ravel()
  zeros = int(np.count_nonzero(w == 0))
  logs = np.log10(np.clip(w[w > 0], 10.0 ** decades[0], None))
  bins = np.arange(decades[0], decades[1] + 0.125, 0.25)
  ax.hist(logs, bins=bins, color=color, alpha=0.6, label=f"{label}: nonzero")
  zero_at = decades[0] - 2
  ax.bar(
    zero_at + offset,
    zeros,
    width=width,
    color=color,
    edgecolor="black",
    hatch="//",
    label=f"{label}: exactly 0 ({zeros / w.size:.1%})",
  )
  ticks = list(range(decades[0], decades[1] + 1, 2))
  ax.set_xticks([zero_at, *ticks], ["exactly 0", *(f"$10^{{{k}}}$" for k in ticks)])
  ax.set_xlabel("|w|  (log scale; the exact zeros in the hatched bar)")
'''


WHY_PROXIMAL = notebook(
  md(r"""
  # Why proximal? Exact zeros from an L1 penalty

  Adding $\lambda\|w\|_1$ to the loss (what `keras.regularizers.l1` does) and taking
  (sub)gradient steps makes small weights jump back and forth across zero instead of landing
  on it. The *proximal* step — a gradient step on the loss, then the soft threshold
  $w \leftarrow \operatorname{sign}(w)\max(|w| - \eta\lambda, 0)$ — lands on exactly `0.0` and
  stays there. This notebook shows that on one weight, draws the soft threshold next to the
  identity and the hard threshold, and then shows the trap of chaining
  `optax_l1.l1_prox` after **Adam**: Adam's per-weight step is $\eta/(\sqrt{\hat v}+\epsilon)$,
  so a threshold of $\eta\lambda$ is far too small, while `optax_l1.adam` thresholds by
  $\eta\lambda/(\sqrt{\hat v}+\epsilon)$, in Adam's own metric.
  """),
  code(r"""
  %matplotlib inline
  import os

  import jax
  import jax.numpy as jnp
  import matplotlib.pyplot as plt
  import numpy as np
  import optax
  from sklearn.linear_model import Lasso

  import optax_l1
  """),
  code(r"""
  # Constants: change them and rerun. The tests set OPTAX_L1_NOTEBOOK_BUDGET=small to run fast.
  # Part 1: one weight, a flat loss, only the penalty acting.
  W0 = 0.005  # the starting weight
  LR = 0.01  # the learning rate η
  L1 = 1.0  # the L1 strength λ
  STEPS = 8  # steps to trace
  # Part 3: the Adam trap, on a sparse least-squares problem (full batch).
  N_SAMPLES, N_FEATURES, N_INFORMATIVE = 1000, 200, 20  # the first N_INFORMATIVE matter
  NOISE = 0.5  # the standard deviation of the noise on the targets
  ADAM_LR = 1e-2
  ADAM_L1 = 0.05  # λ of the least-squares problem, the α of sklearn.linear_model.Lasso
  ADAM_STEPS = 2000
  SEED = 0

  if os.environ.get("OPTAX_L1_NOTEBOOK_BUDGET") == "small":
    ADAM_STEPS = 300
  """),
  md(r"""
  ## 1. The subgradient step oscillates; the proximal step lands on zero

  With a flat loss, the penalty's subgradient $\lambda\,\operatorname{sign}(w)$ moves the
  weight by $\eta\lambda$ each step, whatever its size. A weight smaller than $\eta\lambda$
  overshoots zero, and the next step sends it back. The proximal step
  `optax.chain(optax.sgd(LR), optax_l1.l1_prox(L1, LR))` instead moves to the point $y$ that
  minimises $\lambda|y| + \tfrac{1}{2\eta}(y - v)^2$, where $v$ is where the loss's gradient
  step lands: the soft threshold of $v$ by $\eta\lambda$, which here is exactly zero.
  """),
  code(r"""
  def loss_grad(w):
    return jnp.zeros_like(w)  # a flat loss: only the penalty acts


  def penalty_grad(w):
    return loss_grad(w) + L1 * jnp.sign(w)  # the subgradient of loss + λ|w|


  def trajectory(tx, grad_fn, w0, steps):
    w = jnp.asarray(w0, jnp.float32)
    state = tx.init(w)
    ws = [w]
    for _ in range(steps):
      updates, state = tx.update(grad_fn(w), state, w)
      w = optax.apply_updates(w, updates)
      ws.append(w)
    return np.array(ws)


  penalty = trajectory(optax.sgd(LR), penalty_grad, W0, STEPS)
  proximal = trajectory(optax.chain(optax.sgd(LR), optax_l1.l1_prox(L1, LR)), loss_grad, W0, STEPS)

  print("penalty in the loss: ", " → ".join(f"{w:g}" for w in penalty))
  print("proximal (l1_prox):  ", " → ".join(f"{w:g}" for w in proximal))
  print(
    f"The penalty's weight never gets closer to zero than {np.abs(penalty).min():g}; "
    f"the proximal weight is exactly 0.0 from step {np.argmax(proximal == 0)} on: "
    f"{bool(np.all(proximal[np.argmax(proximal == 0) :] == 0.0))}."
  )
  """),
  code(r"""
  fig, ax = plt.subplots(figsize=(7, 3.5))
  steps = np.arange(STEPS + 1)
  ax.plot(steps, penalty, "o-", label="penalty in the loss: optax.sgd on loss + λ|w|")
  ax.plot(steps, proximal, "s-", label="proximal: chain(optax.sgd, optax_l1.l1_prox)")
  ax.axhline(0.0, color="gray", lw=0.8)
  ax.set_xlabel("step")
  ax.set_ylabel("w")
  ax.set_title(f"One weight, flat loss: w₀ = {W0:g}, η = {LR:g}, λ = {L1:g}")
  ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, fontsize=9)
  plt.show()
  """),
  md(r"""
  ## 2. The soft threshold

  The proximal operator of $t|w|$ is the soft threshold: every input within $t$ of zero maps to
  exactly zero, and every other input moves $t$ towards zero. The hard threshold (the prox of
  an L0 penalty) also zeroes the small inputs but leaves the large ones untouched.
  """),
  code(r"""
  T = 1.0
  x = jnp.linspace(-3.0, 3.0, 601)
  soft = optax_l1.soft_threshold(x, T)
  hard = jnp.where(jnp.abs(x) > T, x, 0.0)

  fig, ax = plt.subplots(figsize=(5.5, 4.5))
  ax.axvspan(-T, T, color="gray", alpha=0.15, label="|x| ≤ t: soft(x) = 0 exactly")
  ax.plot(x, x, ":", color="gray", label="identity")
  ax.plot(x, hard, "--", label="hard threshold: x·1[|x| > t]")
  ax.plot(x, soft, lw=2.5, label="optax_l1.soft_threshold(x, t)")
  ax.set_xlabel("x")
  ax.set_ylabel("output")
  ax.set_title(f"Soft vs hard threshold, t = {T:g}")
  ax.set_aspect("equal")
  ax.legend(loc="upper left", fontsize=9)
  plt.show()
  """),
  md(r"""
  ## 3. The trap: `l1_prox` after Adam

  `optax.chain(optax.adam(lr), optax_l1.l1_prox(λ, lr))` looks like the proximal step, but
  Adam does not step by $\eta g$: it steps by $\eta\,\hat m/(\sqrt{\hat v}+\epsilon)$, so weight
  $i$ moves with a step size $\eta/(\sqrt{\hat v_i}+\epsilon)$, which is many times $\eta$ when
  its gradients are small — exactly the weights L1 should remove. The prox for that step size
  thresholds by $\eta\lambda/(\sqrt{\hat v_i}+\epsilon)$ (ProxGen); the naive chain uses
  $\eta\lambda$. `optax_l1.adam(lr, l1=λ)` does the former.

  The problem: least squares, $\tfrac12\,\mathrm{mean}((y - Xw)^2) + \lambda\|w\|_1$, with
  Gaussian features of which only the first few carry signal. It is a Lasso, so scikit-learn's
  `Lasso` gives the exact solution to compare against.
  """),
  code(r'''
  rng = np.random.default_rng(SEED)
  x_np = rng.standard_normal((N_SAMPLES, N_FEATURES))
  w_true = np.zeros(N_FEATURES)
  signs = rng.choice([-1.0, 1.0], N_INFORMATIVE)
  w_true[:N_INFORMATIVE] = signs * rng.uniform(1.0, 3.0, N_INFORMATIVE)
  y_np = x_np @ w_true + NOISE * rng.standard_normal(N_SAMPLES)
  X, Y = jnp.asarray(x_np, jnp.float32), jnp.asarray(y_np, jnp.float32)


  def loss(w):
    return 0.5 * jnp.mean((Y - X @ w) ** 2)


  def objective(w):
    return float(loss(w) + ADAM_L1 * jnp.sum(jnp.abs(w)))


  def fit(tx, penalty=0.0):
    """ADAM_STEPS full-batch steps of `tx` from w = 0: the weights and the optimizer state."""

    def grad(w):  # `penalty` > 0 puts λ‖w‖₁ in the loss instead (its subgradient)
      return jax.grad(lambda w: loss(w) + penalty * jnp.sum(jnp.abs(w)))(w)

    @jax.jit
    def run(w):
      def body(_, carry):
        w, state = carry
        updates, state = tx.update(grad(w), state, w)
        return optax.apply_updates(w, updates), state

      return jax.lax.fori_loop(0, ADAM_STEPS, body, (w, tx.init(w)))

    return run(jnp.zeros(N_FEATURES, jnp.float32))


  w_penalty, _ = fit(optax.adam(ADAM_LR), penalty=ADAM_L1)
  w_naive, naive_state = fit(optax.chain(optax.adam(ADAM_LR), optax_l1.l1_prox(ADAM_L1, ADAM_LR)))
  w_prox, _ = fit(optax_l1.adam(ADAM_LR, l1=ADAM_L1))
  lasso = Lasso(alpha=ADAM_L1, fit_intercept=False, tol=1e-10, max_iter=100_000).fit(x_np, y_np)
  w_lasso = lasso.coef_

  print(f"{'':<42}{'exact zeros':>12}{'objective':>12}")
  for name, w in [
    ("optax.adam, λ‖w‖₁ in the loss", w_penalty),
    ("chain(optax.adam, optax_l1.l1_prox)", w_naive),
    ("optax_l1.adam(l1=λ)", w_prox),
    ("sklearn Lasso (the exact solution)", w_lasso),
  ]:
    w = np.asarray(w)
    print(f"{name:<42}{np.mean(w == 0):>12.1%}{objective(jnp.asarray(w, jnp.float32)):>12.6f}")
  '''),
  code(r"""
  # Adam's per-weight step size in the naive run, η / (√v̂ + ε), in units of η.
  nu = optax.tree.get(naive_state, "nu")  # Adam's second moment (the state of optax.adam)
  b2, eps = 0.999, 1e-8  # optax.adam's defaults
  step_over_lr = 1.0 / (jnp.sqrt(nu / (1 - b2**ADAM_STEPS)) + eps)
  informative = np.arange(N_FEATURES) < N_INFORMATIVE
  ratio_irrelevant = float(jnp.median(step_over_lr[~informative]))
  ratio_informative = float(jnp.median(step_over_lr[informative]))

  zeros = {
    name: float(np.mean(np.asarray(w) == 0))
    for name, w in [("naive", w_naive), ("prox", w_prox), ("lasso", w_lasso)]
  }
  same_support = bool(np.array_equal(np.asarray(w_prox) == 0, w_lasso == 0))
  print(
    f"After {ADAM_STEPS} Adam steps, the step size on the {int((~informative).sum())} irrelevant "
    f"weights is a median {ratio_irrelevant:.0f}× the learning rate (on the {N_INFORMATIVE} "
    f"informative ones, {ratio_informative:.1f}×), so the naive chain's threshold lr·λ is that "
    f"many times too small in Adam's metric. It leaves {zeros['naive']:.1%} of the weights "
    f"exactly zero; optax_l1.adam leaves {zeros['prox']:.1%}, and the Lasso solution has "
    f"{zeros['lasso']:.1%} (same support as optax_l1.adam: {same_support})."
  )
  """),
  code(MAGNITUDE_HISTOGRAM),
  code(r"""
  fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4.5))
  bins = np.linspace(0, np.log10(float(step_over_lr.max())) + 0.25, 40)
  for mask, label, color in [
    (informative, "informative weights", "C2"),
    (~informative, "irrelevant weights", "C0"),
  ]:
    left.hist(
      np.log10(np.asarray(step_over_lr)[mask]), bins=bins, color=color, alpha=0.7, label=label
    )
  left.axvline(0.0, color="black", ls="--", label="step size = lr (plain SGD)")
  left.set_xlabel("log₁₀ of Adam's step size / lr = log₁₀ 1/(√v̂ + ε)")
  left.set_ylabel("number of weights")
  left.set_title("Adam's per-weight step size in the naive chain")
  left.legend()

  for weights, label, color, offset in [
    (w_naive, "chain(adam, l1_prox)", "C1", -0.45),
    (w_prox, "optax_l1.adam", "C3", 0.45),
  ]:
    magnitude_histogram(right, weights, label, color, offset=offset, decades=(-7, 1))
  right.set_ylabel("number of weights")
  right.set_title(f"Final weights, λ = {ADAM_L1:g}, {ADAM_STEPS} steps")
  right.legend(fontsize=9, loc="upper right")
  plt.show()
  """),
  md(r"""
  The naive chain's irrelevant weights stay small but nonzero: each Adam step moves them by
  about the learning rate or more, far beyond the threshold $\eta\lambda$ that follows it.
  The preconditioned prox zeroes the same weights as the exact Lasso solution. On a neural network
  the gap is as large: see `02_flax_penalty_vs_prox.ipynb`.
  """),
)


FLAX_PENALTY_VS_PROX = notebook(
  md(r"""
  # Penalty vs proximal: a sparse MLP on digits with Flax NNX

  An MLP (64 → 256 → 10) is trained on scikit-learn's 8×8 digits with Adam and an L1 penalty
  of strength $\lambda$ on its two weight matrices ("kernels"), four ways
  (`optax_l1.examples.digits.train`): `dense` (no penalty), `penalty` ($\lambda\|w\|_1$ added
  to the loss, as `keras.regularizers.l1` does), `naive`
  (`optax.chain(optax.adam(lr), optax_l1.l1_prox(λ, lr))`) and `prox` (`optax_l1.adam(lr,
  l1=λ)`, the prox in Adam's metric). It shows where the weights end up (log-scale
  histograms, exact zeros as their own bar), how the exact zeros appear during training, and
  a sweep over $\lambda$ drawing the sparsity–accuracy frontier — with a fourth approach,
  the penalty run pruned after training at a magnitude $\tau$, as the strong baseline it is.
  """),
  code(r"""
  %matplotlib inline
  import os

  import jax
  import jax.numpy as jnp
  import matplotlib.pyplot as plt
  import numpy as np
  from flax import nnx

  from optax_l1.examples import digits
  """),
  code(r"""
  # Constants: change them and rerun. The tests set OPTAX_L1_NOTEBOOK_BUDGET=small to run fast.
  STEPS = 3000  # Adam steps per run (lr 1e-3, batches of 128)
  LOG_EVERY = 100  # record the exact-zero fraction every LOG_EVERY steps
  L1 = 1e-3  # λ of the histograms and of the training curves
  L1_GRID = (1e-4, 1e-3, 1e-2)  # λ of the sweep (each λ: three runs of STEPS steps)
  THRESHOLDS = (1e-3, 1e-2, 3e-2, 1e-1)  # τ: post-hoc pruning of the penalty runs, |w| < τ → 0
  HIDDEN = 256
  SEED = 0

  if os.environ.get("OPTAX_L1_NOTEBOOK_BUDGET") == "small":
    STEPS, LOG_EVERY, L1_GRID = 300, 100, (1e-3,)
  """),
  md(r"""
  ## Training

  Each call of `digits.train` compiles the training steps once and runs them in a
  `jax.lax.scan` (the model and optimizer are `nnx.split` into a graph definition and a state);
  with the default constants one run takes a few seconds on a CPU. Every method sees the same
  initialisation and the same minibatches.
  """),
  code(r'''
  runs = {}


  def run(method, l1):
    """The TrainResult of `method` at λ = `l1` (trained once, then cached)."""
    key = (method, 0.0 if method == "dense" else l1)
    if key not in runs:
      runs[key] = digits.train(
        method, l1=l1, steps=STEPS, hidden=HIDDEN, seed=SEED, log_every=LOG_EVERY
      )
    return runs[key]


  METHODS = ("dense", "penalty", "naive", "prox")
  for l1 in sorted({L1, *L1_GRID}):
    for method in METHODS:
      run(method, l1)

  print(f"{'method':<9}{'λ':>8}{'test acc':>10}{'exact 0':>10}{'|w|<1e-3':>10}{'nonzero':>9}")
  for (method, l1), r in sorted(runs.items(), key=lambda item: (item[0][1], item[0][0])):
    print(
      f"{method:<9}{l1:>8g}{r.test_accuracy:>10.2%}{r.exact_zero_fraction:>10.2%}"
      f"{r.small_fraction:>10.2%}{r.nonzero_params:>9}"
    )
  '''),
  md(r"""
  ## Where the weights end up

  The penalty drives most weights *small* — a pile between $10^{-8}$ and $10^{-3}$ — but
  none to zero: each step's subgradient $\lambda\,\mathrm{sign}(w)$ jumps them across it. The
  naive chain barely moves the distribution. `optax_l1.adam` puts most kernel weights at
  exactly zero.
  """),
  code(MAGNITUDE_HISTOGRAM),
  code(r'''
  def kernels(params):
    """The kernels (weight matrices) of the MLP's parameters, flattened into one vector."""
    leaves = jax.tree.leaves(params)
    on = jax.tree.leaves(digits.kernel_mask(params))
    return np.concatenate([np.asarray(w).ravel() for w, m in zip(leaves, on, strict=True) if m])


  fig, axes = plt.subplots(2, 2, figsize=(12, 7.5), sharex=True, sharey=True)
  titles = {
    "dense": "dense: optax.adam, no L1",
    "penalty": "penalty: optax.adam, λ‖w‖₁ in the loss",
    "naive": "naive: chain(optax.adam, optax_l1.l1_prox)",
    "prox": "prox: optax_l1.adam(l1=λ)",
  }
  for ax, method, color in zip(axes.flat, METHODS, ("C7", "C0", "C1", "C3"), strict=True):
    r = run(method, L1)
    weights = kernels(r.params)
    magnitude_histogram(ax, weights, method, color)
    ax.set_title(f"{titles[method]}\ntest accuracy {r.test_accuracy:.2%}", fontsize=10)
    ax.set_yscale("log")
    ax.set_ylim(0.5, 100 * weights.size)  # room above the bars for the legend
    ax.legend(fontsize=8, loc="upper right")
  for ax in axes[0]:
    ax.set_xlabel("")
  for ax in axes[:, 0]:
    ax.set_ylabel("kernel weights (log scale)")
  fig.suptitle(f"|w| of the kernels after {STEPS} steps, λ = {L1:g}")
  fig.tight_layout()
  plt.show()
  '''),
  md(r"""
  ## Exact zeros during training

  `train(..., log_every=LOG_EVERY)` records the fraction of kernel weights that are exactly
  zero as training goes. Under the proximal step a weight that reaches zero stays there as
  long as its gradient is small in Adam's metric, and can come back when it is not.
  """),
  code(r"""
  fig, ax = plt.subplots(figsize=(7, 4))
  styles = {"dense": ":", "penalty": "-", "naive": "--", "prox": "-"}
  for method, color in zip(METHODS, ("C7", "C0", "C1", "C3"), strict=True):
    steps, fraction = np.array(run(method, L1).history).T
    ax.plot(steps, 100 * fraction, styles[method], color=color, lw=2, label=titles[method])
  ax.set_xlabel("training step")
  ax.set_ylabel("exact zeros in the kernels (%)")
  ax.set_ylim(-3, 103)
  ax.set_title(f"Exact-zero fraction during training, λ = {L1:g}")
  ax.legend(fontsize=9)
  plt.show()
  """),
  md(r"""
  ## The sparsity–accuracy frontier

  A fair baseline for the penalty is to prune it afterwards: set the kernel weights with
  $|w| < \tau$ to zero and evaluate the pruned network. The helper below puts parameters into
  a fresh `digits.MLP` with `nnx.update` and computes the test accuracy; on unpruned
  parameters it reproduces `train`'s own accuracy.
  """),
  code(r'''
  data = digits.load_digits_split(SEED)
  eval_model = digits.MLP(HIDDEN, rngs=nnx.Rngs(0))


  def evaluate(params):
    """Test accuracy of the MLP with these parameters."""
    nnx.update(eval_model, params)
    logits = eval_model(jnp.asarray(data.x_test))
    return float(jnp.mean(jnp.argmax(logits, axis=-1) == jnp.asarray(data.y_test)))


  def prune(params, tau):
    """The parameters with every kernel weight of magnitude below `tau` set to 0.0."""
    return jax.tree.map(
      lambda w, on: jnp.where(jnp.abs(w) < tau, 0.0, w) if on else w,
      params,
      digits.kernel_mask(params),
    )


  r = run("prox", L1)
  print(
    f"evaluate(prox params) = {evaluate(r.params):.4f}, train's accuracy = "
    f"{r.test_accuracy:.4f}; one test image is {1 / len(data.y_test):.2%} of the test set"
  )

  pruned = []  # (λ, τ, nonzero kernel weights, test accuracy)
  for l1 in L1_GRID:
    params = run("penalty", l1).params
    for tau in THRESHOLDS:
      p = prune(params, tau)
      pruned.append((l1, tau, int(np.count_nonzero(kernels(p))), evaluate(p)))
  '''),
  code(r'''
  def frontier(points):
    """The points no other point beats on both sparsity and accuracy, sparsest first."""
    best, front = -1.0, []
    for nonzero, acc in sorted(points, key=lambda p: (p[0], -p[1])):
      if acc > best:
        best = acc
        front.append((nonzero, acc))
    return np.array(front)


  total = kernels(run("dense", L1).params).size
  fig, ax = plt.subplots(figsize=(8.5, 5.5))
  ax.axhline(
    100 * run("dense", L1).test_accuracy,
    color="C7",
    ls=":",
    label="dense (no L1), all weights nonzero",
  )
  points = np.array([(n, acc) for _, _, n, acc in pruned])
  ax.scatter(
    points[:, 0],
    100 * points[:, 1],
    color="C2",
    alpha=0.5,
    s=25,
    label="penalty + pruning |w| < τ (every λ, τ)",
  )
  front = frontier(points)
  ax.plot(
    front[:, 0], 100 * front[:, 1], "-", color="C2", lw=1.5, label="penalty + pruning: its frontier"
  )
  for method, marker, color in [("penalty", "o", "C0"), ("naive", "^", "C1"), ("prox", "s", "C3")]:
    rs = [run(method, l1) for l1 in L1_GRID]
    ax.plot(
      [r.nonzero_params for r in rs],
      [100 * r.test_accuracy for r in rs],
      marker=marker,
      color=color,
      ls="-" if method == "prox" else "none",
      ms=8,
      label=titles[method],
    )
    if method == "prox":
      for r in rs:
        ax.annotate(
          f"λ={r.l1:g}",
          (r.nonzero_params, 100 * r.test_accuracy),
          textcoords="offset points",
          xytext=(6, -12),
          fontsize=8,
          color=color,
        )
  ax.set_xscale("log")
  ax.set_xlabel(f"nonzero kernel weights (of {total:,}; log scale)")
  ax.set_ylabel("test accuracy (%)")
  ax.set_title(f"Sparsity vs accuracy, λ ∈ {{{', '.join(f'{v:g}' for v in L1_GRID)}}}, {STEPS} steps")
  ax.legend(fontsize=8, loc="lower right")
  plt.show()
  '''),
  md(r"""
  The penalty and the naive chain stay at the right edge: all (or nearly all) weights
  nonzero. `optax_l1.adam` moves left as $\lambda$ grows, at close to dense accuracy.

  Pruning the penalty run after training is a strong baseline on this problem: its frontier
  reaches the prox's or passes it. Read the accuracy axis with care: the test set is small,
  so the differences between the methods are a few test images, and the pruning frontier is
  the best of many $(\lambda, \tau)$ pairs scored on that same test set, which flatters it.
  What the prox offers is not a better frontier here but a different route: one knob
  ($\lambda$) instead of two ($\lambda$, then $\tau$ searched after training), zeros that exist
  *during* training (where they can be skipped or compressed), and a network that is itself
  a (stochastic) minimiser of the penalised objective rather than a pruned copy of one.

  At equal sparsity: each penalty run pruned to exactly the number of nonzeros that
  `optax_l1.adam` reached at the same $\lambda$ (keeping the largest magnitudes), its accuracy,
  and how many of the weights it keeps are the ones the prox kept.
  """),
  code(r"""
  for l1 in L1_GRID:
    prox, params = run("prox", l1), run("penalty", l1).params
    magnitudes = np.sort(np.abs(kernels(params)))[::-1]
    tau = magnitudes[prox.nonzero_params - 1]  # keep the prox's number of weights
    pruned_params = prune(params, tau)
    accuracy = evaluate(pruned_params)
    kept_by_both = np.count_nonzero((kernels(prox.params) != 0) & (kernels(pruned_params) != 0))
    print(
      f"λ = {l1:g}: optax_l1.adam keeps {prox.nonzero_params} weights "
      f"({prox.exact_zero_fraction:.1%} exact zeros) at {prox.test_accuracy:.2%} accuracy; "
      f"the penalty run pruned to the same count (τ = {tau:.2g}) scores {accuracy:.2%}, "
      f"and {kept_by_both / prox.nonzero_params:.0%} of the weights it keeps are the prox's."
    )
  """),
)


LASSO_PATH = notebook(
  md(r"""
  # Lasso path: `optax_l1.sgd` against scikit-learn

  A convex sanity check. On scikit-learn's diabetes data (standardised features, centred
  target, no intercept), full-batch proximal gradient descent — `optax_l1.sgd(1/L, l1=α)`,
  i.e. ISTA with step $1/L$ — must converge to the Lasso solution

  $$\hat w(\alpha) = \operatorname*{argmin}_w \tfrac{1}{2n}\|y - Xw\|_2^2 + \alpha\|w\|_1,$$

  which is exactly scikit-learn's objective. We solve it for a grid of $\alpha$ in float64,
  warm-starting each $\alpha$ from the previous solution, and overlay the coefficient paths on
  `sklearn.linear_model.lasso_path`, comparing the coefficients and their supports (which
  coefficients are exactly zero).
  """),
  code(r"""
  %matplotlib inline
  import os
  import time

  import jax
  import jax.numpy as jnp
  import matplotlib.pyplot as plt
  import numpy as np
  import optax
  from sklearn.datasets import load_diabetes
  from sklearn.linear_model import lasso_path
  from sklearn.preprocessing import StandardScaler

  import optax_l1

  jax.config.update("jax_enable_x64", True)  # float64 everywhere, before any array is made
  """),
  code(r"""
  # Constants: change them and rerun. The tests set OPTAX_L1_NOTEBOOK_BUDGET=small to run fast.
  N_ALPHAS = 30  # points on the path
  ALPHA_MIN_RATIO = 1e-3  # the path runs from α_max down to ALPHA_MIN_RATIO · α_max
  ITERATIONS = 20_000  # ISTA iterations per α (warm-started from the previous α)
  SKLEARN_TOL = 1e-14  # lasso_path's default (1e-4) stops far from the optimum

  if os.environ.get("OPTAX_L1_NOTEBOOK_BUDGET") == "small":
    N_ALPHAS, ITERATIONS = 8, 3000
  """),
  md(r"""
  ## Data and step size

  $\nabla f(w) = -X^\top(y - Xw)/n$ is Lipschitz with constant $L = \lambda_{\max}(X^\top X/n)$,
  so $\eta = 1/L$ is the classical ISTA step. Above
  $\alpha_{\max} = \|X^\top y\|_\infty / n$ every coefficient is zero. At $\alpha_{\max}$ itself
  the first coefficient's gradient equals its threshold, a tie that rounding breaks either way,
  so the grid starts one step below it.
  """),
  code(r"""
  diabetes = load_diabetes()
  x_np = StandardScaler().fit_transform(diabetes.data)
  y_np = diabetes.target - diabetes.target.mean()
  n, p = x_np.shape
  L = float(np.linalg.eigvalsh(x_np.T @ x_np / n).max())
  alpha_max = float(np.abs(x_np.T @ y_np).max() / n)
  alphas = alpha_max * np.geomspace(1.0, ALPHA_MIN_RATIO, N_ALPHAS + 1)[1:]  # decreasing
  print(
    f"n = {n}, p = {p}, L = {L:.4f}, α_max = {alpha_max:.4f}, "
    f"α from {alphas[0]:.4g} to {alphas[-1]:.4g}"
  )
  """),
  md(r"""
  ## The path with `optax_l1.sgd`

  One compiled function runs `ITERATIONS` steps of `optax_l1.sgd(1/L, l1=α)` in a
  `jax.lax.fori_loop`; α is an argument (a traced value that the optimizer uses as given), so
  the function compiles once for the whole path.
  """),
  code(r'''
  X, Y = jnp.asarray(x_np), jnp.asarray(y_np)


  def loss(w):
    return 0.5 * jnp.mean((Y - X @ w) ** 2)


  @jax.jit
  def solve(w, alpha):
    """ITERATIONS steps of proximal gradient descent from `w`, at L1 strength `alpha`."""
    tx = optax_l1.sgd(1.0 / L, l1=alpha)

    def body(_, carry):
      w, state = carry
      updates, state = tx.update(jax.grad(loss)(w), state, w)
      return optax.apply_updates(w, updates), state

    return jax.lax.fori_loop(0, ITERATIONS, body, (w, tx.init(w)))[0]


  start = time.perf_counter()
  w = jnp.zeros(p)
  path = []
  for alpha in alphas:
    w = solve(w, alpha)  # warm start from the previous α's solution
    path.append(np.asarray(w))
  ours = np.stack(path, axis=1)  # (p, N_ALPHAS), as lasso_path returns
  print(
    f"{N_ALPHAS} × {ITERATIONS:,} ISTA steps in {time.perf_counter() - start:.1f} s "
    f"(compilation included), dtype {w.dtype}"
  )

  _, theirs, _ = lasso_path(x_np, y_np, alphas=alphas, tol=SKLEARN_TOL, max_iter=1_000_000)
  '''),
  code(r'''
  def kkt_violation(coefs):
    """Max violation of the Lasso's optimality conditions over the path (0 at the optimum)."""
    worst = 0.0
    for w, alpha in zip(coefs.T, alphas, strict=True):
      g = -x_np.T @ (y_np - x_np @ w) / n
      on = w != 0
      worst = max(
        worst,
        np.abs(g[on] + alpha * np.sign(w[on])).max(initial=0.0),
        np.maximum(np.abs(g[~on]) - alpha, 0.0).max(initial=0.0),
      )
    return worst


  difference = np.abs(ours - theirs).max(axis=0)
  supports_match = np.all((ours == 0) == (theirs == 0), axis=0)
  print(
    f"max |optax_l1 − sklearn| over all α and coefficients: {difference.max():.2e} "
    f"(coefficients up to {np.abs(theirs).max():.0f})"
  )
  print(
    f"supports (exact zeros) match at {supports_match.sum()} of {N_ALPHAS} α: "
    f"{'every α' if supports_match.all() else 'not every α'}"
  )
  print(
    f"optimality-condition violation: optax_l1 {kkt_violation(ours):.1e}, "
    f"sklearn {kkt_violation(theirs):.1e}"
  )
  '''),
  code(r"""
  fig, (top, bottom) = plt.subplots(
    2, 1, figsize=(10, 8), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
  )
  for j, name in enumerate(diabetes.feature_names):
    color = f"C{j}"
    top.plot(alphas, theirs[j], "-", color=color, lw=1.5)
    top.plot(alphas, ours[j], "o", color=color, ms=4, mfc="none", label=name)
  top.plot([], [], "k-", label="sklearn lasso_path")
  top.plot([], [], "ko", mfc="none", ms=4, label="optax_l1.sgd (ISTA)")
  top.set_xscale("log")
  top.invert_xaxis()
  top.set_ylabel("coefficient")
  top.set_title("Lasso path on diabetes: sklearn (lines) vs optax_l1.sgd (markers)")
  top.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))

  bottom.semilogy(alphas, np.maximum(difference, 1e-17), "k.-")
  bottom.set_xlabel("α (log scale, decreasing →)")
  bottom.set_ylabel("max |difference|")
  bottom.set_title("Largest coefficient difference at each α", fontsize=10)
  fig.tight_layout()
  plt.show()
  """),
)


STRUCTURED_SPARSITY = notebook(
  md(r"""
  # Structured sparsity: whole neurons removed, the compacted model, and its speed

  Elementwise L1 (`optax_l1.adam(lr, l1=λ)`) zeroes single weights scattered over the
  matrices, and a dense matrix product on a CPU is no faster for them. *Group* L1
  (`optax_l1.adam(lr, group_l1=λ, mask=...)`) penalises
  $\lambda\sum_j \sqrt{|G_j|}\,\|W_{:,j}\|_2$ over the columns of the first layer's kernel —
  column $j$ holds the incoming weights of hidden unit $j$ — and its proximal step (a block
  soft threshold, in Adam's metric) sets a whole column to exactly `0.0` at once. Such a unit
  outputs the constant $\mathrm{relu}(b_j)$ whatever the input, so `optax_l1.compact_mlp`
  folds it into the next layer's bias and deletes it: a smaller *dense* MLP computing the same
  function. On the digits MLP (64 → 256 → 10) of notebook 02, this notebook draws which hidden
  units survive elementwise and group L1, compacts the group model and checks that its outputs
  are unchanged, times the two forward passes, sweeps $\lambda$, and refits the surviving
  weights without the penalty while `optax_l1.keep_zeros()` holds the zeros at zero.
  """),
  code(r"""
  %matplotlib inline
  import os
  import platform
  import statistics
  import time

  import jax
  import jax.numpy as jnp
  import matplotlib.pyplot as plt
  import numpy as np
  import optax
  from flax import nnx
  from matplotlib.colors import LogNorm

  import optax_l1
  from optax_l1.examples import digits
  """),
  code(r"""
  # Constants: change them and rerun. The tests set OPTAX_L1_NOTEBOOK_BUDGET=small to run fast.
  GROUP_L1 = 3e-3  # λ of sections 1–3 and 5, for both the elementwise and the group run
  L1_GRID = (3e-4, 1e-3, 3e-3, 1e-2)  # λ of the sweep (each λ: an elementwise and a group run)
  STEPS = 3000  # Adam steps per run (lr 1e-3, batches of 128)
  HIDDEN = 256
  SEED = 0
  BATCH = 1024  # the batch of the timed forward passes
  REPEATS = 1000  # timed calls of each forward pass (the median is reported)
  REFIT_STEPS = 500  # steps of the refit (Adam, lr REFIT_LR, batches of 128)
  REFIT_LR = 1e-3

  if os.environ.get("OPTAX_L1_NOTEBOOK_BUDGET") == "small":
    STEPS, L1_GRID, REPEATS, REFIT_STEPS = 300, (GROUP_L1,), 50, 50
  """),
  md(r"""
  ## Training

  `digits.train` (see notebook 02) trains the MLP with Adam (lr $10^{-3}$, batches of 128)
  and one of the methods of `digits.REGISTRY`. Here: `"prox"` is elementwise L1,
  `optax_l1.adam(lr, l1=λ)` on both kernels; `"group"` is
  `optax_l1.adam(lr, group_l1=λ, mask=path_mask("linear1/kernel"))`, group L1 on the columns of
  the first kernel only; `"dense"` is plain `optax.adam`, for reference. Every run sees the
  same initialisation and the same minibatches.
  """),
  code(r'''
  runs = {}


  def run(method, l1):
    """The TrainResult of `method` at λ = `l1` (trained once, then cached)."""
    key = (method, 0.0 if method == "dense" else l1)
    if key not in runs:
      runs[key] = digits.train(method, l1=l1, steps=STEPS, hidden=HIDDEN, seed=SEED)
    return runs[key]


  start = time.perf_counter()
  run("dense", 0.0)
  for l1 in sorted({GROUP_L1, *L1_GRID}):
    for method in ("prox", "group"):
      run(method, l1)
  print(f"{len(runs)} runs of {STEPS} steps in {time.perf_counter() - start:.1f} s")
  print(f"{'method':<7}{'λ':>8}{'test acc':>10}{'kernel weights exactly 0':>26}")
  for (method, l1), r in runs.items():
    print(f"{method:<7}{l1:>8g}{r.test_accuracy:>10.2%}{r.exact_zero_fraction:>26.2%}")
  '''),
  md(r"""
  ## 1. Which hidden units are alive

  Below, $|W|$ of both kernels at the same $\lambda$, exact zeros in white, one column per
  hidden unit: `linear1.kernel` (64 inputs × 256 units) on top and `linear2.kernel`
  transposed (10 outputs × 256 units) under it. A unit can be removed when its whole column
  in the first (no input reaches it) or in the second (nothing reads it) is white.
  Elementwise L1 does not aim at units, but in Adam's metric it empties many of them anyway,
  one weight at a time, in both kernels, and the units it keeps have scattered zeros. Group L1
  zeroes whole columns of `linear1.kernel` and nothing else (it does not penalise `linear2`),
  so the units it keeps are dense.
  """),
  code(r'''
  def model_of(result):
    """A digits.MLP holding the trained parameters of `result`."""
    model = digits.MLP(HIDDEN, rngs=nnx.Rngs(0))
    nnx.update(model, result.params)
    return model


  def compact(model):
    """(compacted nnx.Sequential, CompactionReport) of a digits.MLP."""
    return optax_l1.compact_mlp([model.linear1, model.linear2], jax.nn.relu)


  def kernels_of(result):
    """|linear1.kernel| (64, hidden) and |linear2.kernel| (hidden, 10), as NumPy arrays."""
    return [np.abs(np.asarray(result.params[name]["kernel"])) for name in ("linear1", "linear2")]


  def units_alive(result):
    return compact(model_of(result))[1].units_after[0]


  pair = {"prox": run("prox", GROUP_L1), "group": run("group", GROUP_L1)}
  titles = {
    "prox": f"elementwise L1: optax_l1.adam(l1={GROUP_L1:g}) on both kernels",
    "group": f"group L1: optax_l1.adam(group_l1={GROUP_L1:g}) on linear1's columns",
  }
  vmax = max(k.max() for r in pair.values() for k in kernels_of(r))
  norm = LogNorm(vmax * 1e-4, vmax)  # magnitudes below vmax·1e-4 (none exactly 0) get the darkest
  cmap = plt.get_cmap("viridis").copy()
  cmap.set_bad("white")  # the exact zeros, masked below

  fig, axes = plt.subplots(
    4,
    1,
    figsize=(12, 9),
    sharex=True,
    layout="constrained",
    gridspec_kw={"height_ratios": [64, 10, 64, 10]},
  )
  for k, (method, r) in enumerate(pair.items()):
    w1, w2 = kernels_of(r)
    top, bottom = axes[2 * k], axes[2 * k + 1]
    image = top.imshow(
      np.ma.masked_equal(w1, 0.0), cmap=cmap, norm=norm, aspect="auto", interpolation="nearest"
    )
    bottom.imshow(
      np.ma.masked_equal(w2.T, 0.0), cmap=cmap, norm=norm, aspect="auto", interpolation="nearest"
    )
    top.set_title(
      f"{titles[method]}\n{r.exact_zero_fraction:.1%} of the kernel weights exactly 0, "
      f"{units_alive(r)} of {HIDDEN} hidden units alive, test accuracy {r.test_accuracy:.2%}",
      fontsize=10,
    )
    top.set_ylabel("linear1.kernel\ninput pixel")
    bottom.set_ylabel("linear2\noutput")
    bottom.set_yticks([0, 9])
  axes[-1].set_xlabel("hidden unit (white: exactly 0)")
  fig.colorbar(image, ax=axes, label="|w| (log scale)", fraction=0.03, pad=0.01, shrink=0.8)
  plt.show()

  for method, r in pair.items():
    w1, w2 = kernels_of(r)
    no_input = ~np.any(w1 != 0, axis=0)  # all-zero columns of linear1.kernel
    no_output = ~np.any(w2 != 0, axis=1)  # all-zero rows of linear2.kernel
    in_empty_columns = np.count_nonzero(w1[:, no_input] == 0) / max(np.count_nonzero(w1 == 0), 1)
    print(
      f"{method:>5}: {units_alive(r):3d} of {HIDDEN} hidden units alive; "
      f"{no_input.sum():3d} with an all-zero incoming column, {no_output.sum():3d} with an "
      f"all-zero outgoing row; {in_empty_columns:.0%} of linear1's zeros lie in all-zero columns"
    )
  '''),
  md(r"""
  ## 2. The compacted model

  `optax_l1.compact_mlp([model.linear1, model.linear2], jax.nn.relu)` removes every hidden
  unit whose incoming column is zero (folding its constant output
  $\mathrm{relu}(b_j)\,W^{(2)}_{j,:}$ into `linear2`'s bias) or whose outgoing row is zero,
  and returns an `nnx.Sequential` of two smaller `nnx.Linear` layers, with a report. The
  compacted model must compute the same outputs up to float rounding, and so score the same.
  """),
  code(r"""
  data = digits.load_digits_split(SEED)
  x_test, y_test = jnp.asarray(data.x_test), np.asarray(data.y_test)


  def accuracy(module):
    return float(np.mean(np.argmax(np.asarray(module(x_test)), axis=-1) == y_test))


  group_model = model_of(run("group", GROUP_L1))
  small, report = compact(group_model)
  print(report)
  print(
    f"kernels {[tuple(layer.kernel.shape) for layer in small.layers[::2]]}; "
    f"{report.folded[0]} units folded into the bias, {report.unused[0]} unused"
  )
  full_out, small_out = group_model(x_test), small(x_test)
  print(
    f"on the {len(y_test)} test images: max |Δ output| = "
    f"{float(jnp.max(jnp.abs(full_out - small_out))):.1e} (outputs up to "
    f"{float(jnp.max(jnp.abs(full_out))):.0f}); same predictions for "
    f"{int(np.sum(np.argmax(full_out, -1) == np.argmax(small_out, -1)))} of {len(y_test)}"
  )
  print(f"test accuracy: {accuracy(group_model):.2%} before, {accuracy(small):.2%} compacted")
  """),
  md(r"""
  ## 3. Its speed

  Both models' forward passes are jitted (`nnx.split` into a graph definition and a state,
  `jax.jit` of a pure function of the state) and timed on a batch of `BATCH` test images drawn
  with replacement, calling them in turn (full width, compacted, full width, …) so that any
  drift on the machine hits both alike, and taking the median. These are this machine's
  numbers, on whatever JAX runs on here (printed below); on a CPU, a call has a fixed cost
  that does not shrink with the model, so expect less than the FLOP ratio.
  """),
  code(r'''
  def jitted(module):
    """A jitted `module(x)` as (fn, state), to be called fn(state, x)."""
    graphdef, state = nnx.split(module)
    return jax.jit(lambda state, x: nnx.merge(graphdef, state)(x)), state


  def interleaved_medians(calls, repeats, warmup=20):
    """Median seconds of each fn(*args), timed in turn so that drift hits all alike."""
    for fn, args in calls:
      for _ in range(warmup):
        jax.block_until_ready(fn(*args))
    times = [[] for _ in calls]
    for _ in range(repeats):
      for (fn, args), record in zip(calls, times, strict=True):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        record.append(time.perf_counter() - start)
    return [statistics.median(record) for record in times]


  def cpu_name():
    try:
      with open("/proc/cpuinfo") as f:
        for line in f:
          if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    except OSError:
      pass
    return platform.processor() or platform.machine()


  batch = x_test[jax.random.randint(jax.random.key(SEED), (BATCH,), 0, len(y_test))]
  (full_fn, full_state), (small_fn, small_state) = jitted(group_model), jitted(small)
  print(
    f"max |Δ output| on the batch: "
    f"{float(jnp.max(jnp.abs(full_fn(full_state, batch) - small_fn(small_state, batch)))):.1e}"
  )
  full_s, small_s = interleaved_medians(
    [(full_fn, (full_state, batch)), (small_fn, (small_state, batch))], REPEATS
  )
  load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
  print(
    f"JAX backend {jax.default_backend()}; this machine: {cpu_name()}, "
    f"{os.cpu_count()} logical CPUs, load average {load:.2f} (timings are noisy above ~1)"
  )
  print(
    f"batch {BATCH}, median of {REPEATS} calls: {1e3 * full_s:.3f} ms with {HIDDEN} hidden "
    f"units, {1e3 * small_s:.3f} ms with {report.units_after[0]}: {full_s / small_s:.1f}× "
    f"faster, for {report.flops_before / report.flops_after:.1f}× fewer FLOPs"
  )
  '''),
  md(r"""
  ## 4. The λ sweep

  For each $\lambda$, both runs are compacted, and the hidden units they keep are set against
  their test accuracy (left): the width, and so the cost, of the dense compacted model.
  Compaction removes the units that elementwise L1 emptied too, so the elementwise runs get a
  compacted model as well, whose surviving units still hold scattered zeros that a dense
  product multiplies anyway. On the right, the nonzero kernel weights left in each compacted
  model: the count that sparse storage could exploit (on a CPU, `optax_l1.to_bcoo`'s sparse
  product is slower than the dense one; see `benchmarks/RESULTS.md`). Each method aims at
  one of the two measures; the last lines compare them on both.
  """),
  code(r"""
  sweep = {"prox": [], "group": []}  # method: [(λ, units kept, nonzero weights, accuracy)]
  lines = []
  for l1 in L1_GRID:
    for method in sweep:
      r = run(method, l1)
      compacted, rep = compact(model_of(r))
      nonzero = sum(int(jnp.count_nonzero(layer.kernel[...])) for layer in compacted.layers[::2])
      sweep[method].append((l1, rep.units_after[0], nonzero, r.test_accuracy))
      lines.append(
        f"{method:>5} λ={l1:<7g} {rep.units_after[0]:3d} of {HIDDEN} units kept, "
        f"{nonzero:5d} nonzero kernel weights after compaction, accuracy {r.test_accuracy:.2%}"
      )
  for column, measure in [(1, "fewer hidden units"), (2, "fewer nonzero weights")]:
    group_wins = [g[column] < p[column] for g, p in zip(sweep["group"], sweep["prox"], strict=True)]
    lines.append(
      f"group L1 keeps {measure} than elementwise L1 at {sum(group_wins)} of {len(L1_GRID)} λ"
    )
  print("\n".join(lines))

  dense = run("dense", 0.0)
  labels = {"prox": "elementwise L1 (prox)", "group": "group L1 (group)"}
  fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8), sharey=True)
  for ax, column, xlabel in [
    (left, 1, f"hidden units kept by compaction (of {HIDDEN})"),
    (right, 2, "nonzero kernel weights in the compacted model"),
  ]:
    ax.axhline(100 * dense.test_accuracy, color="C7", ls=":", label="dense (no L1)")
    for method, marker, color in [("prox", "o", "C3"), ("group", "s", "C0")]:
      points = np.array(sweep[method])
      ax.plot(
        points[:, column],
        100 * points[:, 3],
        marker=marker,
        color=color,
        ms=7,
        label=labels[method],
      )
      for l1, x, y in zip(points[:, 0], points[:, column], points[:, 3], strict=True):
        ax.annotate(
          f"λ={l1:g}",
          (x, 100 * y),
          textcoords="offset points",
          xytext=(0, 7) if method == "group" else (0, -14),
          ha="center",
          fontsize=8,
          color=color,
          bbox={"boxstyle": "round,pad=0.1", "facecolor": "white", "edgecolor": "none", "alpha": 0.8},
        )
    ax.set_xscale("log")
    ax.margins(x=0.08, y=0.1)
    values = [row[column] for rows in sweep.values() for row in rows]
    ticks = [t * 10**e for e in range(5) for t in (1, 2, 5)]
    ticks = [t for t in ticks if min(values) / 1.5 <= t <= max(values) * 1.5]
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax.xaxis.set_minor_formatter(plt.NullFormatter())
    ax.set_xlabel(f"{xlabel} (log scale)")
    ax.legend(fontsize=8, loc="lower right")
  left.set_ylabel("test accuracy (%)")
  grid = ", ".join(f"{v:g}" for v in L1_GRID)
  fig.suptitle(f"Compacted size vs test accuracy, {STEPS} steps, λ ∈ {{{grid}}}")
  fig.tight_layout()
  plt.show()
  """),
  md(r"""
  ## 5. Refitting the survivors with `keep_zeros`

  L1 shrinks the weights it keeps, too. A common remedy (the relaxed lasso) keeps the zero
  pattern and refits the rest without the penalty: here the group model is trained for
  `REFIT_STEPS` more steps with `optax.chain(optax.adam(REFIT_LR), optax_l1.keep_zeros())`,
  which zeroes the update of every weight that is exactly `0.0`. For contrast, the same refit
  with plain `optax.adam`: a dead unit whose bias is positive still passes gradient to its
  incoming column, which then grows back. Whether the refit helps the test accuracy is an
  empirical question; the training loss is what it lowers.
  """),
  code(r'''
  x_train, y_train = jnp.asarray(data.x_train), jnp.asarray(data.y_train)


  def refit(tx, steps=REFIT_STEPS, batch_size=128):
    """The group model at GROUP_L1, trained `steps` more steps with `tx` (no penalty)."""
    model = model_of(run("group", GROUP_L1))
    optimizer = nnx.Optimizer(model, tx, wrt=nnx.Param)

    @nnx.jit
    def step(model, optimizer, key):
      batch = jax.random.randint(key, (batch_size,), 0, x_train.shape[0])
      grads = nnx.grad(digits.loss_fn)(model, x_train[batch], y_train[batch])
      optimizer.update(model, grads)

    for key in jax.random.split(jax.random.key(SEED + 1), steps):
      step(model, optimizer, key)
    return model


  def zeros(model):
    """Which kernel weights are exactly 0.0, both kernels flattened into one bool vector."""
    return np.concatenate(
      [np.asarray(layer.kernel[...] == 0).ravel() for layer in (model.linear1, model.linear2)]
    )


  def describe(name, model):
    surviving = np.abs(np.asarray(model.linear1.kernel[...]))
    surviving = surviving[surviving != 0]
    print(
      f"{name:<26} exact zeros {int(zeros(model).sum()):5d}, units alive "
      f"{compact(model)[1].units_after[0]:3d}, train loss "
      f"{float(digits.loss_fn(model, x_train, y_train)):.4f}, test accuracy "
      f"{accuracy(model):.2%}, mean |w| of linear1's nonzeros {surviving.mean():.4f}"
    )


  start = time.perf_counter()
  kept = refit(optax.chain(optax.adam(REFIT_LR), optax_l1.keep_zeros()))
  plain = refit(optax.adam(REFIT_LR))
  print(f"two refits of {REFIT_STEPS} steps in {time.perf_counter() - start:.1f} s")
  describe(f"group λ={GROUP_L1:g}", group_model)
  describe("refit, keep_zeros", kept)
  describe("refit, plain optax.adam", plain)
  before = zeros(group_model)
  print(
    f"keep_zeros: zero pattern unchanged: {np.array_equal(before, zeros(kept))}; plain Adam: "
    f"{int(np.sum(before & ~zeros(plain)))} of {int(before.sum())} zeros became nonzero"
  )
  print(f"(one test image is {1 / len(y_test):.2%} of the test accuracy)")
  '''),
)


NOTEBOOKS = {
  "01_why_proximal.ipynb": WHY_PROXIMAL,
  "02_flax_penalty_vs_prox.ipynb": FLAX_PENALTY_VS_PROX,
  "03_lasso_path.ipynb": LASSO_PATH,
  "04_structured_sparsity.ipynb": STRUCTURED_SPARSITY,
}


def execute(nb: nbformat.NotebookNode) -> float:
  """Runs ``nb`` in place in a fresh kernel in this folder; returns the seconds it took."""
  os.environ.pop("OPTAX_L1_NOTEBOOK_BUDGET", None)  # the full budget
  client = NotebookClient(
    nb,
    timeout=600,
    kernel_name="python3",
    resources={"metadata": {"path": str(HERE)}},
    record_timing=False,  # no timestamps in the committed notebooks
  )
  start = time.perf_counter()
  client.execute()  # raises CellExecutionError on the first failing cell
  return time.perf_counter() - start


def main(patterns: list[str]) -> None:
  for name, nb in NOTEBOOKS.items():
    if patterns and not any(pattern in name for pattern in patterns):
      continue
    seconds = execute(nb)
    nbformat.validate(nb)
    nbformat.write(nb, HERE / name)
    print(f"{name}: executed in {seconds:.1f} s")


if __name__ == "__main__":
  main(sys.argv[1:])
