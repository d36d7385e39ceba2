"""Sphinx configuration for the optax_l1 documentation.

Build it from the repository root (offline: no intersphinx)::

  pip install -e ".[docs]"
  python -m sphinx -W --keep-going -b html docs docs/_build/html

The notebooks are committed executed (``notebooks/*.ipynb``) and rendered as they are
(``nb_execution_mode = "off"``); ``tests/notebooks_test.py`` is what runs them.
"""

from __future__ import annotations

import pathlib
import re
import shutil
import sys

DOCS = pathlib.Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))  # the package itself, when it is not installed

import optax_l1  # noqa: E402

project = "optax_l1"
author = "optax_l1 developers"
copyright = "optax_l1 developers"
release = optax_l1.__version__
version = release

extensions = [
  "myst_nb",  # MyST markdown and notebooks (brings myst_parser)
  "sphinx.ext.autodoc",
  "sphinx.ext.autosummary",
  "sphinx.ext.napoleon",  # Google-style Args:/Returns:/Examples:
  "sphinx.ext.mathjax",
]

source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
templates_path = ["_templates"]
exclude_patterns = ["_build", "jupyter_execute", "**.ipynb_checkpoints"]

# API: one generated page per public name (docs/_autosummary/, not committed).
autosummary_generate = True
autosummary_imported_members = True
autodoc_default_options = {"member-order": "bysource"}
autodoc_typehints = "signature"
autodoc_typehints_format = "short"
# Show optax's type names as written, not their expansions (annotations are strings here).
autodoc_type_aliases = {
  "optax.ScalarOrSchedule": "optax.ScalarOrSchedule",
  "optax.Params": "optax.Params",
  "optax.Updates": "optax.Updates",
}
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False
napoleon_attr_annotations = False  # the Attributes: prose says the type; no private paths

# Markdown and notebooks.
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3
nb_execution_mode = "off"  # the notebooks are committed executed
nb_merge_streams = True

html_theme = "sphinx_book_theme"
html_title = "optax_l1"
html_theme_options = {
  "show_toc_level": 2,
  "use_download_button": True,
}


def _copy_notebooks(app) -> None:
  """Copies ``../notebooks/*.ipynb`` into ``docs/notebooks/`` (git-ignored) for Sphinx to read.

  Sphinx reads only files under its source folder; the notebooks stay where they are, and only
  the executed ``.ipynb`` come here, not the jupytext text files beside them.
  """
  target = DOCS / "notebooks"
  target.mkdir(exist_ok=True)
  sources = sorted((ROOT / "notebooks").glob("*.ipynb"))
  for stale in target.glob("*.ipynb"):
    if stale.name not in {source.name for source in sources}:
      stale.unlink()
  for source in sources:
    copy = target / source.name
    if not copy.exists() or copy.read_bytes() != source.read_bytes():
      shutil.copyfile(source, copy)  # only when changed, so incremental builds stay incremental


def _public_names() -> set[str]:
  """Every public name: ``optax_l1.__all__`` and the names of its public namespaces."""
  import importlib

  names = {f"optax_l1.{name}" for name in optax_l1.__all__}
  for namespace in ("preconditioners", "prox"):
    try:
      module = importlib.import_module(f"optax_l1.{namespace}")
    except ImportError:
      continue  # not written yet: api.md's entries for it fail to import, and say so
    names.discard(f"optax_l1.{namespace}")
    names |= {f"optax_l1.{namespace}.{name}" for name in module.__all__}
  return names


def _check_api_page(app) -> None:
  """Warns (an error under ``-W``) about public names that ``api.md`` does not list."""
  from sphinx.util import logging

  listed, module = set(), "optax_l1"
  for line in (DOCS / "api.md").read_text().splitlines():
    if match := re.match(r"\.\. currentmodule:: (\S+)", line.strip()):
      module = match.group(1)
    elif re.fullmatch(r"~?[A-Za-z_][A-Za-z0-9_]*", line.strip()):
      listed.add(f"{module}.{line.strip().lstrip('~')}")
  for name in sorted(_public_names() - listed):
    logging.getLogger(__name__).warning("api.md does not list the public name %s", name)


def _skip_namedtuple_fields(app, what, name, obj, skip, options):
  """Skips NamedTuple fields ("Alias for field number 0"): the class docstring's
  ``Attributes:`` section documents them."""
  if what == "class" and (getattr(obj, "__doc__", None) or "").startswith("Alias for field"):
    return True
  return None


def setup(app):
  app.connect("builder-inited", _copy_notebooks)
  app.connect("builder-inited", _check_api_page)
  app.connect("autodoc-skip-member", _skip_namedtuple_fields)
