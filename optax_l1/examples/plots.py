"""Plotting helpers shared by the notebooks in ``notebooks/``.

- :func:`magnitude_histogram`: a histogram of :math:`|w|` on a log scale, with the exact zeros
  as their own (hatched) bar.
"""

from __future__ import annotations

import numpy as np
from matplotlib.axes import Axes
from numpy.typing import ArrayLike


def magnitude_histogram(
  ax: Axes,
  weights: ArrayLike,
  label: str,
  color: str,
  offset: float = 0.0,
  width: float = 0.8,
  decades: tuple[int, int] = (-9, 1),
) -> None:
  r"""Histogram of :math:`\log_{10}|w|` over the nonzero weights, and a hatched bar of the zeros.

  The nonzero magnitudes are binned in quarter decades from :math:`10^{d_0}` to
  :math:`10^{d_1}`, ``(d0, d1) = decades``; those below :math:`10^{d_0}` join the first bin.
  The exact zeros get a bar of their own two decades to the left of it, at :math:`d_0 - 2`
  (shifted by ``offset``, to put several side by side), labelled with their fraction.

  Args:
    ax: the axes to draw on.
    weights: the weights, of any shape (flattened).
    label: the name of these weights in the legend.
    color: the colour of their bins and of their zeros' bar.
    offset: where the zeros' bar stands, relative to :math:`d_0 - 2`.
    width: the width of the zeros' bar, in decades.
    decades: ``(d0, d1)``, the range of the x axis in powers of ten.

  Examples:
    >>> import numpy as np
    >>> from matplotlib.figure import Figure
    >>> from optax_l1.examples.plots import magnitude_histogram
    >>> ax = Figure().subplots()
    >>> magnitude_histogram(ax, np.array([0.0, 0.0, 0.0, 1e-12, 1e-3, 0.5]), "w", "C0")
    >>> [text.get_text() for text in ax.legend().get_texts()]
    ['w: nonzero', 'w: exactly 0 (50.0%)']
  """
  w = np.abs(np.asarray(weights)).ravel()
  zeros = int(np.count_nonzero(w == 0))
  logs = np.log10(np.clip(w[w > 0], 10.0 ** decades[0], None))
  bins = np.arange(decades[0], decades[1] + 0.125, 0.25).tolist()  # quarter decades
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
