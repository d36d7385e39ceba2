"""The README stays true: its code runs, and CI runs the test command it gives."""

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


def test_ci_runs_the_test_command_the_quickstart_gives():
  quickstart = README.split("## Quickstart")[1].split("\n## ")[0]
  commands = set(re.findall(r"```sh\n(.*?)\n```", quickstart, re.S))
  ci = (ROOT / ".ci" / "run").read_text().splitlines()
  # The Quickstart's test command is a line of CI, verbatim (CI runs more after it).
  quickstart_tests = [command for command in commands if "pytest" in command]
  assert quickstart_tests and all(command in ci for command in quickstart_tests)
