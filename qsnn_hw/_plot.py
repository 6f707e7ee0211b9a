"""What every PNG of qsnn-hw shares: matplotlib on the Agg backend (no display needed),
deterministic bytes, atomic writes, and an accuracy axis that can tell 96 % from 98 %."""

from __future__ import annotations

import io
from pathlib import Path

from ._io import atomic_write_bytes


def pyplot():
    """``matplotlib.pyplot`` on the Agg backend (plots are files, never windows); a
    missing matplotlib is one line naming the ``plots`` extra."""
    from ._extras import need
    matplotlib = need("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def save_png(fig, path) -> Path:
    """Write ``fig`` to ``path`` atomically and close it. Fixed metadata: the same figure
    gives the same bytes."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})
    pyplot().close(fig)
    return atomic_write_bytes(Path(path), buf.getvalue())


def percent_axis(ax, values, axis: str = "y", floor: float = 0.0) -> None:
    """An accuracy axis in percent, zoomed to ``values`` (fractions in [0, 1]) with a
    margin, never past 0-100 %: on a 0-1 axis 96 % and 98 % look the same."""
    from matplotlib.ticker import PercentFormatter

    vals = [float(v) for v in values if v == v]  # drop NaN
    lo = min(vals, default=floor)
    hi = max(vals, default=1.0)
    margin = max(0.01, 0.08 * (hi - lo))
    lo, hi = max(floor, lo - margin), min(1.0, hi + margin)
    if axis == "y":
        ax.set_ylim(lo, hi)
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    else:
        ax.set_xlim(lo, hi)
        ax.xaxis.set_major_formatter(PercentFormatter(1.0))


def integer_ticks(ax, axis: str = "x") -> None:
    """Whole-number ticks only (epochs, timesteps, neuron indices)."""
    from matplotlib.ticker import MaxNLocator
    (ax.xaxis if axis == "x" else ax.yaxis).set_major_locator(MaxNLocator(integer=True))
