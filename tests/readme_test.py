"""The README stays true: its code runs, and CI runs its test command."""

import contextlib
import io
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_usage_example_runs_and_prints_exact_zeros():
  code = re.search(r"## Use\n\n```python\n(.*?)```", README, re.S).group(1)
  output = io.StringIO()
  with contextlib.redirect_stdout(output):
    exec(compile(code, "README.md", "exec"), {})
  total = output.getvalue().splitlines()[-1].split()
  assert total[0] == "total" and int(total[1]) > 0  # some kernel weights are exactly zero


def test_quickstart_is_two_commands_and_ci_runs_the_second():
  quickstart = README.split("## Quickstart")[1].split("\n## ")[0]
  commands = re.findall(r"```sh\n(.*?)\n```", quickstart, re.S)
  assert len(commands) == 2 and all("\n" not in command for command in commands)
  assert "optax-l1 compare" in commands[0]
  assert commands[1] in (ROOT / ".ci" / "run").read_text()
