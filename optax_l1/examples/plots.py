"""Plotting helpers shared by the notebooks in ``notebooks/``.

- :func:`magnitude_histogram`: a histogram of :math:`|w|` on a log scale, with the exact zeros
  as their own (hatched) bar.
- :func:`exact_zeros_axis`: an x axis of the fraction of exact zeros, drawn as the density
  :math:`1 - s` on a reversed log scale, so that 80, 90, 95 and 98 % stand apart.
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


def exact_zeros_axis(
  ax: Axes,
  ticks: tuple[float, ...] = (0.5, 0.8, 0.9, 0.95, 0.98, 0.99),
  label: str = "exact zeros (%; the density 1 − zeros on a log scale)",
) -> None:
  r"""Make the x axis a fraction of exact zeros :math:`s`, for points plotted at :math:`1 - s`.

  Plot each point at its density :math:`1 - s` (the fraction of nonzeros); this sets a log
  scale, reverses it (sparser to the right) and labels the ticks with :math:`s` in percent, so
  that the levels a pruning schedule aims at (80, 90, 95, 98 %) are about evenly spaced. Call
  it after plotting: the limits stay those of the data, and the ticks outside them are not
  drawn.

  Args:
    ax: the axes whose x axis to set.
    ticks: the fractions of exact zeros to mark, in [0, 1).
    label: the label of the x axis.

  Examples:
    >>> from matplotlib.figure import Figure
    >>> from optax_l1.examples.plots import exact_zeros_axis
    >>> ax = Figure().subplots()
    >>> _ = ax.plot([1 - 0.8, 1 - 0.98], [0.97, 0.95])
    >>> exact_zeros_axis(ax, ticks=(0.8, 0.9, 0.98))
    >>> [text.get_text() for text in ax.get_xticklabels()], bool(ax.xaxis_inverted())
    (['80', '90', '98'], True)
  """
  ax.set_xscale("log")
  limits = ax.get_xlim()
  ax.set_xticks([1 - s for s in ticks], [f"{100 * s:g}" for s in ticks])
  ax.set_xlim(limits)
  ax.minorticks_off()
  if not ax.xaxis_inverted():
    ax.invert_xaxis()
  ax.set_xlabel(label)
