"""``optax-l1`` / ``python -m optax_l1``: the command line, a thin dispatcher to the examples.

Each command lives in its own module under :mod:`optax_l1.examples`, with a
``main(argv, prog=...)`` that parses its own arguments; the module is imported only when its
command runs, so ``optax-l1 --help`` works without the ``examples`` extra (flax, scikit-learn,
matplotlib, tqdm). Adding a command is adding one entry to ``COMMANDS``.
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


def main(argv: Sequence[str] | None = None, *, prog: str = "optax-l1") -> int:
  """Runs ``prog COMMAND [options]``; returns the exit status (2 when no command is given)."""
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
  module = importlib.import_module(COMMANDS[args.command][0])
  return module.main(rest, prog=f"{prog} {args.command}")


if __name__ == "__main__":
  sys.exit(main(prog="python -m optax_l1"))
