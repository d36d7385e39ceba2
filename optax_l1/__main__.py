"""``optax-l1`` / ``python -m optax_l1``: the command line, a thin dispatcher to the examples.

Each command lives in its own module under :mod:`optax_l1.examples`, with a
``main(argv, prog=...)`` that parses its own arguments; the module is imported only when its
command runs, so ``optax-l1 --help`` works without the ``examples`` extra, and a command that
needs a module of the extra says so in one line on stderr, with what to install (exit status 1;
usage errors are argparse's, status 2). Adding a command is adding one entry to ``COMMANDS``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

import optax_l1

# name: (module with a `main(argv, prog=...)`, one line for the help)
COMMANDS: dict[str, tuple[str, str]] = {
  "compare": (
    "optax_l1.examples.compare",
    "train a digits MLP without L1, with the L1 penalty in the loss and with proximal "
    "steps; print exact zeros and accuracy, write results.json and plots",
  ),
}

# The `examples` extra of pyproject.toml: import name -> distribution name.
EXAMPLES_EXTRA: dict[str, str] = {
  "flax": "flax",
  "sklearn": "scikit-learn",
  "matplotlib": "matplotlib",
  "tqdm": "tqdm",
  "equinox": "equinox",
  "mnist1d": "mnist1d",
}


def main(argv: Sequence[str] | None = None, *, prog: str = "optax-l1") -> int:
  """Runs ``prog COMMAND [options]``; returns the exit status.

  The status is 0 on success, 2 for a usage error (no command, say) and 1 when the command
  needs a module of the ``examples`` extra that is not installed.
  """
  parser = argparse.ArgumentParser(
    prog=prog,
    description="optax_l1: L1 regularisation that gives exact zeros, as optax transformations.",
    epilog=f"Run '{prog} COMMAND --help' for a command's options.",
  )
  parser.add_argument("--version", action="version", version=f"%(prog)s {optax_l1.__version__}")
  commands = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
  for name, (_, summary) in COMMANDS.items():
    # The command's own parser handles its options and its --help.
    commands.add_parser(name, help=summary, add_help=False)
  args, rest = parser.parse_known_args(argv)
  if args.command is None:  # a usage error, as for any required argument: help, status 2
    parser.print_help(sys.stderr)
    return 2
  command = f"{prog} {args.command}"
  try:
    module = importlib.import_module(COMMANDS[args.command][0])
    return module.main(rest, prog=command)
  except ModuleNotFoundError as error:
    missing = (error.name or "").partition(".")[0]
    if missing not in EXAMPLES_EXTRA:
      raise  # not the extra's: a broken install or a bug, with its traceback
    print(
      f"{command}: error: no module named {missing!r}, which comes with the examples extra "
      f'({", ".join(EXAMPLES_EXTRA.values())}): pip install "optax_l1[examples]"',
      file=sys.stderr,
    )
    return 1


if __name__ == "__main__":
  sys.exit(main(prog="python -m optax_l1"))
