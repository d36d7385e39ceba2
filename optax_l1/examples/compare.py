r"""``optax-l1 compare``: the L1 penalty in the loss against the proximal step, side by side.

Trains the digits MLP of :mod:`optax_l1.examples.digits` once per method (by default every key
of :data:`optax_l1.examples.digits.REGISTRY`: ``dense``, ``penalty``, ``naive``, ``prox``) with
the same :math:`\lambda`, seed and minibatches, shows a progress bar per run, then prints a
table of test accuracy and sparsity, and writes to ``--out``:

- ``results.json``: ``{"runs": [...], "config": {...}}``, one run per method with its metrics
  and its ``history`` of ``[step, exact_zero_fraction]`` pairs;
- ``weight_histogram.png``: a log-scale histogram of the kernels' :math:`|w|` per method, the
  exact zeros drawn as their own bar (the penalty leaves a pile of tiny weights, the prox a
  spike at exactly zero);
- ``zeros_vs_step.png``: the kernels' exact-zero fraction against the training step.

Run it as ``optax-l1 compare`` or ``python -m optax_l1 compare`` (or call :func:`main`).

Examples:
  About 20 s on a laptop's CPU (2 cores), most of it compiling; the progress bars go to stderr:

  >>> from optax_l1.examples import compare
  >>> compare.main(["--out", "compare-out"])  # doctest: +SKIP
  <BLANKLINE>
  digits MLP 64-256-10, Adam lr 0.001, batch 128, 3000 steps, seed 0, λ = 0.001 on the kernels
  method         λ  test acc  exact zeros  nonzero  |w| < 1e-3 hidden units  train s
  ----------------------------------------------------------------------------------
  dense          —    98.15%        0.00%   18,944       0.46%          256     0.99
  penalty    0.001    97.96%        0.00%   18,944      93.83%          256     0.77
  naive      0.001    98.15%        0.14%   18,917       0.89%          256     0.90
  prox       0.001    97.96%       95.26%      897      95.90%           48     0.72
  group      0.001    97.78%       78.74%    4,028      79.72%           23     0.86
  ...
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import re
import sys
import tempfile
import time
from collections.abc import Sequence
from typing import Any

import flax
import jax
import numpy as np
import optax
from tqdm import tqdm

import optax_l1
from optax_l1.examples import digits

LEARNING_RATE = 1e-3
BATCH_SIZE = 128
HISTORY_POINTS = 50  # about this many (step, exact-zero fraction) points per run
RESULTS_JSON = "results.json"
HISTOGRAM_PNG = "weight_histogram.png"
HISTORY_PNG = "zeros_vs_step.png"

DESCRIPTION = f"""\
Train the same digits MLP (scikit-learn's 8x8 digits, 64-HIDDEN-10, Adam lr {LEARNING_RATE:g},
batch {BATCH_SIZE}) with the same L1 strength and seed several ways, L1 on the weight matrices
only, and show which of them gives weights that are exactly zero:

{{methods}}

Prints a progress bar per run, then a table: test accuracy, the fraction of kernel entries that
are exactly 0.0, the kernel entries left nonzero, the fraction with |w| < 1e-3 (zeros
included), and the seconds spent training (compilation excluded). Writes results.json (the
table, each run's exact zeros against the step, and the configuration) and, unless
--no-plots, {HISTOGRAM_PNG} (|w| of the kernels on a log scale, exact zeros as their own
bar) and {HISTORY_PNG} (exact zeros against the training step) to --out."""


def _method_list(text: str) -> list[str]:
  methods = [name.strip() for name in text.split(",") if name.strip()]
  unknown = [name for name in methods if name not in digits.REGISTRY]
  if unknown or not methods:
    raise argparse.ArgumentTypeError(
      f"unknown method(s) {', '.join(unknown) or '(none given)'}; "
      f"choose from {','.join(digits.REGISTRY)}"
    )
  return list(dict.fromkeys(methods))  # drop repeats, keep the order given


def _non_negative_float(text: str) -> float:
  try:
    value = float(text)
  except ValueError:
    raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
  if not 0 <= value < float("inf"):  # also rejects NaN
    raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
  return value


def _fraction(text: str) -> float:
  try:
    value = float(text)
  except ValueError:
    raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
  if not 0 <= value < 1:  # also rejects NaN
    raise argparse.ArgumentTypeError(f"must be a fraction in [0, 1), got {text}")
  return value


def _positive_int(text: str) -> int:
  try:
    value = int(text)
  except ValueError:
    raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
  if value < 1:
    raise argparse.ArgumentTypeError(f"must be >= 1, got {text}")
  return value


def build_parser(prog: str = "optax-l1 compare") -> argparse.ArgumentParser:
  """The command's argument parser (its ``--help`` says what each flag does)."""
  methods = "\n".join(f"  {name:<8} {method.summary}" for name, method in digits.REGISTRY.items())
  parser = argparse.ArgumentParser(
    prog=prog,
    description=DESCRIPTION.format(methods=methods),
    formatter_class=argparse.RawDescriptionHelpFormatter,
  )
  parser.add_argument(
    "--l1",
    type=_non_negative_float,
    default=1e-3,
    metavar="λ",
    help="the L1 strength on the kernels, λ of loss + λ·Σ|w| as in keras.regularizers.l1(λ); "
    "ignored by dense (default: %(default)g)",
  )
  parser.add_argument(
    "--target-sparsity",
    type=_fraction,
    default=0.9,
    metavar="S",
    help="the fraction of exact zeros in the kernels the target method asks for, instead of "
    "a λ: it follows a cubic ramp to S (from a tenth to two thirds of the steps), then the "
    "zero set is frozen (default: %(default)g)",
  )
  parser.add_argument(
    "--steps", type=_positive_int, default=3000, help="Adam steps per run (default: %(default)s)"
  )
  parser.add_argument(
    "--hidden",
    type=_positive_int,
    default=256,
    help="width of the hidden layer (default: %(default)s)",
  )
  parser.add_argument(
    "--seed",
    type=int,
    default=0,
    help="seeds the train/test split, the initialisation and the minibatches, the same for "
    "every method (default: %(default)s)",
  )
  parser.add_argument(
    "--methods",
    type=_method_list,
    default=list(digits.REGISTRY),
    metavar="M1,M2,...",
    help=f"comma-separated methods to run, in this order (default: all, {','.join(digits.REGISTRY)})",
  )
  parser.add_argument(
    "--out",
    default="compare-out",
    metavar="DIR",
    help="directory for results.json and the plots, created if needed (default: %(default)s)",
  )
  parser.add_argument(
    "--no-plots", action="store_true", help="write results.json only, no PNG plots"
  )
  return parser


def run(method: str, args: argparse.Namespace, log_every: int) -> digits.TrainResult:
  """Trains one method with a progress bar that advances every ``log_every`` steps."""
  with tqdm(total=args.steps, desc=f"{method:<8}", unit="step", file=sys.stderr) as bar:

    def advance(done: int, zero_fraction: float) -> None:
      bar.set_postfix_str(f"exact zeros {zero_fraction:.1%}", refresh=False)
      bar.update(done - bar.n)

    return digits.train(
      method,
      l1=args.l1,
      steps=args.steps,
      hidden=args.hidden,
      batch_size=BATCH_SIZE,
      learning_rate=LEARNING_RATE,
      seed=args.seed,
      log_every=log_every,
      callback=advance,
      target_sparsity=args.target_sparsity,
    )


def run_record(result: digits.TrainResult) -> dict[str, Any]:
  """One run of ``results.json``: the table's row, timings and history, as plain values."""
  return {
    "method": result.method,
    "summary": digits.REGISTRY[result.method].summary,
    "l1": float(result.l1),
    "test_accuracy": float(result.test_accuracy),
    "exact_zero_fraction": float(result.exact_zero_fraction),
    "nonzero_params": int(result.nonzero_params),
    "kernel_params": sum(int(k.size) for k in digits.kernels(result.params)),
    "small_fraction": float(result.small_fraction),
    "hidden_units": int(result.hidden_units),
    "seconds": float(result.seconds),
    "compile_seconds": float(result.compile_seconds),
    "history": [[int(step), float(fraction)] for step, fraction in result.history],
  }


def format_table(results: Sequence[digits.TrainResult]) -> str:
  """The printed table, one row per run."""
  header = (
    f"{'method':<8} {'λ':>7} {'test acc':>9} {'exact zeros':>12} {'nonzero':>8} "
    f"{'|w| < 1e-3':>11} {'hidden units':>12} {'train s':>8}"
  )
  rows = [header, "-" * len(header)]
  for r in results:
    l1 = f"{r.l1:g}" if digits.REGISTRY[r.method].uses_l1 else "—"
    rows.append(
      f"{r.method:<8} {l1:>7} {r.test_accuracy:>9.2%} {r.exact_zero_fraction:>12.2%} "
      f"{r.nonzero_params:>8,} {r.small_fraction:>11.2%} {r.hidden_units:>12,} {r.seconds:>8.2f}"
    )
  return "\n".join(rows)


def _figure(width: float, height: float) -> Any:
  """A figure drawn by the Agg backend, without pyplot (no global backend, no window)."""
  from matplotlib.backends.backend_agg import FigureCanvasAgg
  from matplotlib.figure import Figure

  fig = Figure(figsize=(width, height), layout="constrained")
  FigureCanvasAgg(fig)
  return fig


def _panel_title(r: digits.TrainResult) -> str:
  return (
    f"{r.method}: {digits.REGISTRY[r.method].summary}\n"
    f"exact zeros {r.exact_zero_fraction:.2%}, |w| < 1e-3 {r.small_fraction:.2%}, "
    f"{r.nonzero_params:,} nonzero, test accuracy {r.test_accuracy:.2%}"
  )


def plot_histograms(results: Sequence[digits.TrainResult], path: str, title: str) -> None:
  """|w| of the kernels per method on a log scale; the exact zeros as a separate bar."""
  edges = np.logspace(-8, 1, 9 * 4 + 1)  # 4 bins a decade from 1e-8 to 10
  zero_left, zero_right = 10**-10.2, 10**-9.2  # where the "exactly 0" bar is drawn
  fig = _figure(8, 1.0 + 2.1 * len(results))
  axes = fig.subplots(len(results), 1, sharex=True, squeeze=False)[:, 0]
  for ax, r in zip(axes, results, strict=True):
    w = np.abs(np.concatenate([np.ravel(k) for k in digits.kernels(r.params)]).astype(np.float64))
    zeros = 100 * np.mean(w == 0)
    # Nonzero magnitudes outside [1e-8, 10] go to the first or last bin.
    counts, _ = np.histogram(np.clip(w[w != 0], edges[0], edges[-1]), bins=edges)
    percent = 100 * counts / w.size
    ax.bar(
      edges[:-1], percent, width=np.diff(edges), align="edge", color="tab:blue", label="|w| > 0"
    )
    ax.bar(
      zero_left,
      zeros,
      width=zero_right - zero_left,
      align="edge",
      color="tab:red",
      label="w = 0 exactly",
    )
    top = max(5.0, 1.18 * max(percent.max(), zeros))
    ax.text(
      np.sqrt(zero_left * zero_right),
      zeros + 0.03 * top,
      f"{zeros:.2f}%",
      ha="center",
      va="bottom",
      fontsize=8,
      color="tab:red",
    )
    ax.axvline(digits.SMALL, color="0.4", linestyle=":", linewidth=1)
    ax.set_title(_panel_title(r), fontsize=8.5, loc="left")
    ax.set_ylabel("% of kernel\nentries")
    ax.set_ylim(0, top)
    ax.grid(axis="y", alpha=0.3)
  axes[0].legend(fontsize=8, loc="upper left")
  last = axes[-1]
  last.set_xscale("log")
  last.set_xlim(10**-10.5, edges[-1])
  ticks = [10.0**e for e in range(-8, 2, 2)]
  last.set_xticks(
    [np.sqrt(zero_left * zero_right), *ticks, digits.SMALL],
    ["exactly 0", *(f"1e{round(np.log10(t))}" for t in ticks), "1e-3"],
  )
  last.minorticks_off()
  last.set_xlabel(
    "|w| of the kernel entries (log scale; dotted: 1e-3; nonzero |w| < 1e-8 counted in the "
    "first bin)",
    fontsize=8.5,
  )
  fig.suptitle(title)
  fig.savefig(path, dpi=120)


def plot_history(results: Sequence[digits.TrainResult], path: str, title: str) -> None:
  """The kernels' exact-zero fraction against the training step, one line per method.

  The lower panel zooms on 0–1 %, where the methods that give (almost) no zeros lie.
  """
  fig = _figure(8, 6)
  full, zoom = fig.subplots(2, 1, sharex=True, height_ratios=[2, 1])
  markers = "osD^vP*X"
  for i, r in enumerate(results):
    steps, fractions = zip(*r.history, strict=True) if r.history else ((), ())
    for ax in (full, zoom):  # staggered markers keep lines that overlap (at 0 %) apart
      ax.plot(
        steps,
        100 * np.asarray(fractions),
        marker=markers[i % len(markers)],
        markevery=(i, len(results) + 1),
        markersize=5,
        label=f"{r.method}: {digits.REGISTRY[r.method].summary}",
      )
  full.set_ylim(-3, 103)
  full.set_ylabel("exact zeros in\nthe kernels (%)")
  full.legend(fontsize=8, loc="center right")
  full.set_title(title)
  zoom.set_ylim(-0.05, 1.0)
  zoom.set_ylabel("zoom: 0–1 %")
  zoom.set_xlabel("training step")
  for ax in (full, zoom):
    ax.grid(alpha=0.3)
  fig.savefig(path, dpi=120)


def check_out(out: str) -> str | None:
  """Creates the folder ``out`` if needed and checks that a file can be written in it.

  It writes and removes a probe file, so that what permissions alone do not show (a read-only
  file system, a full disk, a folder such as ``/sys``) is found before any training.

  Returns:
    ``None`` when ``out`` is ready, else what is wrong, in one line.
  """
  if os.path.lexists(out) and not os.path.isdir(out):
    return f"{out!r} exists and is not a directory"
  try:
    os.makedirs(out, exist_ok=True)
  except OSError as error:
    return f"{out!r}: cannot create the directory: {error.strerror or error}"
  try:
    handle, probe = tempfile.mkstemp(prefix=".optax-l1-probe-", dir=out)
    os.close(handle)
    os.remove(probe)
  except OSError as error:
    return f"{out!r}: cannot write files in it: {error.strerror or error}"
  return None


def main(argv: Sequence[str] | None = None, *, prog: str = "optax-l1 compare") -> int:
  """Runs the command on ``argv`` (default: ``sys.argv[1:]``); returns the exit status.

  The status is 0 on success, 2 for a usage error (argparse's, or an ``--out`` that cannot be
  created or written, found before any training) and 1 when writing the results fails after
  training (the table is printed first). Errors of its own are one line on stderr.
  """
  args = build_parser(prog).parse_args(argv)
  if not args.no_plots:  # before training: fail early without matplotlib
    importlib.import_module("matplotlib.backends.backend_agg")
  if problem := check_out(args.out):
    print(f"{prog}: error: argument --out: {problem}", file=sys.stderr)
    return 2
  start = time.perf_counter()
  log_every = -(-args.steps // HISTORY_POINTS)  # at most HISTORY_POINTS chunks
  setup = (
    f"digits MLP 64-{args.hidden}-10, Adam lr {LEARNING_RATE:g}, batch {BATCH_SIZE}, "
    f"{args.steps} steps, seed {args.seed}, λ = {args.l1:g} on the kernels, "
    f"target {args.target_sparsity:.0%} exact zeros"
  )
  print(setup, file=sys.stderr, flush=True)

  results = [run(method, args, log_every) for method in args.methods]

  print()  # the table first: a failed write below does not lose it
  print(setup)
  print(format_table(results))
  print()
  for name in args.methods:
    print(f"{name:<8} {digits.REGISTRY[name].summary}")

  config = {
    "l1": args.l1,
    "target_sparsity": args.target_sparsity,
    "steps": args.steps,
    "hidden": args.hidden,
    "seed": args.seed,
    "methods": list(args.methods),
    "learning_rate": LEARNING_RATE,
    "batch_size": BATCH_SIZE,
    "log_every": log_every,
    "model": f"MLP 64-{args.hidden}-10 (ReLU), L1 on the kernels only",
    "data": "sklearn.datasets.load_digits, 30 % held out (stratified), standardised",
    "versions": {
      "optax_l1": optax_l1.__version__,
      "jax": jax.__version__,
      "optax": optax.__version__,
      "flax": flax.__version__,
      "python": platform.python_version(),
    },
    "backend": jax.default_backend(),
  }
  runs = [run_record(r) for r in results]
  written = [os.path.join(args.out, RESULTS_JSON)]
  text = json.dumps({"runs": runs, "config": config}, indent=2, ensure_ascii=False)
  text = re.sub(r"\[\s+([^\s,\[\]]+),\s+([^\s,\[\]]+)\s+\]", r"[\1, \2]", text)  # pairs on a line
  try:
    with open(written[0], "w", encoding="utf-8") as f:
      f.write(text + "\n")
    if not args.no_plots:
      title = f"Digits MLP 64-{args.hidden}-10, λ = {args.l1:g}, {args.steps} steps"
      written.append(os.path.join(args.out, HISTOGRAM_PNG))
      plot_histograms(results, written[-1], f"Kernel weight magnitudes — {title}")
      written.append(os.path.join(args.out, HISTORY_PNG))
      plot_history(results, written[-1], f"Exact zeros during training — {title}")
  except OSError as error:
    print(
      f"{prog}: error: cannot write {written[-1]!r}: {error.strerror or error}", file=sys.stderr
    )
    return 1

  print(f"\nwrote {', '.join(written)} ({time.perf_counter() - start:.0f} s in all)")
  return 0


if __name__ == "__main__":
  sys.exit(main(prog="python -m optax_l1.examples.compare"))
