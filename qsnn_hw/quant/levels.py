"""State level tables: sorted, strictly increasing values a quantized membrane may take.

A table has ``2**num_bits`` entries; a quantized state is stored as the index (the
*code*) of its level. Families (one entry each in :data:`LEVEL_FAMILIES`, the registry
that the training config, the CLI, the sweep grids and the regression schedule read):

* ``uniform``: evenly spaced on ``[-thr*(1+lower_limit), thr*(1+upper_limit)]``
  (SQUAT paper, section III-A-1).
* ``exponential``: threshold-centred, levels crowd exponentially towards the threshold
  from both sides (the idea of SQUAT paper, section III-A-2). Our parameterisation, with
  steepness ``a`` below and ``b`` above the threshold, is documented in
  :func:`exponential_levels` and docs/fixed-point.md.
* ``snntorch``: the exact float32 levels of ``snntorch.functional.quant.state_quant``
  (snnTorch 1.0.0), for users who trained with snnTorch; ``snntorch_exponential`` is its
  ``uniform=False`` table.
* ``custom``: any user table (validated).

Tables are floats in *threshold units of the trainer*; :func:`levels_to_fixed_point`
maps them onto the integer grid of the deployed membrane.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from types import MappingProxyType

import numpy as np

from .._check import check_choice, check_finite_array, check_float, check_int

MIN_STATE_BITS = 1
MAX_STATE_BITS = 16

# snnTorch 1.0.0's default exponential base per bit width (the ``multiplier`` defaults of
# snntorch.functional.quant.state_quant; tests/fixtures/snntorch_state_quant_levels.txt).
_SNNTORCH_MULTIPLIER = {1: 0.05, 2: 0.1, 3: 0.3, 4: 0.5, 5: 0.7, 6: 0.9, 7: 0.925}


def _range(threshold: float, lower_limit: float, upper_limit: float) -> tuple[float, float]:
    threshold = check_float("threshold", threshold, 0.0, None, lo_open=True)
    lower_limit = check_float("lower_limit", lower_limit, 0.0, None)
    upper_limit = check_float("upper_limit", upper_limit, 0.0, None, lo_open=True)
    # Same arithmetic as snnTorch so the snnTorch family matches to the last bit.
    return -threshold - threshold * lower_limit, threshold + threshold * upper_limit


def _check_bits(num_bits) -> int:
    return check_int("num_bits", num_bits, MIN_STATE_BITS, MAX_STATE_BITS)


def uniform_levels(num_bits: int, threshold: float = 1.0, lower_limit: float = 0.0,
                   upper_limit: float = 0.2) -> np.ndarray:
    """``2**num_bits`` evenly spaced float64 levels from ``-thr*(1+lower_limit)`` to
    ``thr*(1+upper_limit)``."""
    n = 1 << _check_bits(num_bits)
    lo, hi = _range(threshold, lower_limit, upper_limit)
    k = np.arange(n, dtype=np.float64)
    levels = lo + (hi - lo) * k / (n - 1)
    levels[-1] = hi  # exact end despite rounding
    return levels


def exponential_levels(num_bits: int, threshold: float = 1.0, a: float = 4.0, b: float = 4.0,
                       lower_limit: float = 0.0, upper_limit: float = 0.2) -> np.ndarray:
    """Threshold-centred exponential levels (float64).

    ``L = floor(n * (thr - lo) / (hi - lo))`` levels lie below the threshold and
    ``R = n - L`` above it (at least one on each side). With
    ``g_c(s) = (exp(c*s) - 1) / (exp(c) - 1)`` (``g_c(s) = s`` when ``c == 0``):

    * below: ``thr - (thr - lo) * g_a((L - i) / L)`` for ``i = 0 .. L-1`` (``i = 0`` is ``lo``);
    * above: ``thr + (hi - thr) * g_b(j / R)`` for ``j = 1 .. R`` (``j = R`` is ``hi``).

    ``a`` and ``b`` (>= 0) are the steepness below and above the threshold: 0 gives evenly
    spaced levels on each side, larger values crowd the levels towards the threshold.
    The threshold itself is not a level, so every level is unambiguously a spike or not.
    """
    n = 1 << _check_bits(num_bits)
    a = check_float("a", a, 0.0, 50.0)
    b = check_float("b", b, 0.0, 50.0)
    lo, hi = _range(threshold, lower_limit, upper_limit)
    thr = float(threshold)
    below = min(max(int(math.floor(n * (thr - lo) / (hi - lo))), 1), n - 1)
    above = n - below

    def g(c: float, s: np.ndarray) -> np.ndarray:
        return s if c == 0.0 else np.expm1(c * s) / math.expm1(c)

    s_below = (below - np.arange(below, dtype=np.float64)) / below
    s_above = np.arange(1, above + 1, dtype=np.float64) / above
    levels = np.concatenate([thr - (thr - lo) * g(a, s_below), thr + (hi - thr) * g(b, s_above)])
    levels[0], levels[-1] = lo, hi  # exact ends despite expm1 rounding
    _check_strict(levels, "exponential levels")
    return levels


def _to_float32(x: Fraction) -> np.float32:
    """Correctly rounded (nearest, ties to even) float32 of an exact rational."""
    guess = np.float32(float(x))
    cands = (np.nextafter(guess, np.float32(-np.inf)), guess,
             np.nextafter(guess, np.float32(np.inf)))
    return min(cands, key=lambda c: (abs(Fraction(float(c)) - x), int(c.view(np.uint32)) & 1))


def _linspace_float32(start: float, end: float, steps: int) -> np.ndarray:
    """float32 linspace with PyTorch's CPU arithmetic: ``step = (end - start) / (steps - 1)``
    in float32; the first half is ``fma(step, i, start)``, the second half
    ``fma(-step, steps - 1 - i, end)``, each rounded once to float32 (a fused multiply-add,
    which is what reproduces snnTorch's uniform tables bit for bit)."""
    start32, end32 = np.float32(start), np.float32(end)
    step = np.float32((end32 - start32) / np.float32(steps - 1))
    s, e, d = Fraction(float(start32)), Fraction(float(end32)), Fraction(float(step))
    halfway = steps // 2
    return np.array([_to_float32(s + d * i if i < halfway else e - d * (steps - 1 - i))
                     for i in range(steps)], dtype=np.float32)


def snntorch_levels(num_bits: int, uniform: bool = True, thr_centered: bool = True,
                    threshold: float = 1.0, lower_limit: float = 0.0,
                    upper_limit: float = 0.2, multiplier: float | None = None) -> np.ndarray:
    """The float32 levels of ``snntorch.functional.quant.state_quant(...)`` (snnTorch 1.0.0).

    Uniform: a float32 linspace. Exponential: base ``multiplier`` (default by bit width);
    pivot ``p`` = threshold (``thr_centered``) or 0; ``L = floor(n*(p-lo)/(hi-lo))`` levels
    are laid from ``lo`` upwards with steps ``m**j / room`` (``j = 0..L-1``, each level
    appended before its step), the rest from ``p`` upwards with steps ``m**j / room'``
    (``j = R-1..0``, appended after each step); ``room`` makes each side span exactly its
    interval. Computed in float64, returned as float32 (checked bit for bit against
    tests/fixtures/snntorch_state_quant_levels.txt, written by snnTorch).
    """
    bits = _check_bits(num_bits)
    n = 1 << bits
    lo, hi = _range(threshold, lower_limit, upper_limit)
    if uniform:
        return _linspace_float32(lo, hi, n)
    if multiplier is None:
        m = _SNNTORCH_MULTIPLIER.get(bits, 0.95)
    else:
        m = check_float("multiplier", multiplier, 0.0, 1.0, lo_open=True, hi_open=True)
    pivot = float(threshold) if thr_centered else 0.0
    below = int(math.floor(n * (pivot - lo) / (hi - lo)))
    above = n - below
    levels: list[float] = []
    if below > 0:
        room = sum(m ** j for j in range(below)) / (pivot - lo)
        x = lo
        for j in range(below):
            levels.append(x)
            x += m ** j / room
    if above > 0:
        room = sum(m ** j for j in range(above)) / (hi - pivot)
        x = pivot
        for j in reversed(range(above)):
            x += m ** j / room
            levels.append(x)
    return np.asarray(levels, dtype=np.float32)


def custom_levels(values) -> np.ndarray:
    """A user table: finite, strictly increasing, with a power-of-two length >= 2."""
    levels = check_finite_array("levels", values)
    if levels.ndim != 1:
        raise ValueError(f"levels must be one-dimensional, got shape {levels.shape}")
    n = levels.size
    if n < 2 or n & (n - 1) or n > (1 << MAX_STATE_BITS):
        raise ValueError(f"levels must have 2**k entries with k in [1, {MAX_STATE_BITS}], "
                         f"got {n}")
    _check_strict(levels, "levels")
    return levels


def _check_strict(levels: np.ndarray, name: str) -> None:
    d = np.diff(levels)
    if np.any(d <= 0):
        k = int(np.argmax(d <= 0))
        what = "duplicates" if d[k] == 0 else "is not sorted"
        raise ValueError(f"{name} must be strictly increasing: {what} at indices {k}, {k + 1} "
                         f"({float(levels[k]):.9g}, {float(levels[k + 1]):.9g})")


def _snntorch(num_bits: int, threshold: float = 1.0, **kwargs) -> np.ndarray:
    return snntorch_levels(num_bits, threshold=threshold, **kwargs)


def _snntorch_exponential(num_bits: int, threshold: float = 1.0, **kwargs) -> np.ndarray:
    return snntorch_levels(num_bits, uniform=False, threshold=threshold, **kwargs)


def _no_params(rng: np.random.Generator) -> dict:
    return {}


def _random_exponential(rng: np.random.Generator) -> dict:
    return dict(a=float(rng.uniform(0.5, 6)), b=float(rng.uniform(0.5, 6)))


def _random_snntorch(rng: np.random.Generator) -> dict:
    return dict(uniform=bool(rng.integers(2)), thr_centered=bool(rng.integers(2)))


@dataclass(frozen=True)
class LevelFamily:
    """One state-level family.

    name / description: the family's name and a one-line description (CLI help).
    build: ``build(num_bits, threshold, **kwargs)`` -> float table, or None for a family
    whose table the user gives (``custom``; not selectable in a training config).
    layer_params: ``(LayerConfig field, builder keyword)`` pairs a trained layer passes on
    top of ``lower_limit`` / ``upper_limit``.
    random_params: seeded builder keywords of a random table (qsnn_hw.testing).
    in_regressions: part of the regression schedule (qsnn_hw.testing.FAMILIES).
    """

    name: str
    description: str
    build: Callable[..., np.ndarray] | None
    layer_params: tuple[tuple[str, str], ...] = ()
    random_params: Callable[[np.random.Generator], dict] = _no_params
    in_regressions: bool = True

    @property
    def trainable(self) -> bool:
        """Selectable as ``LayerConfig.state_family`` (the table follows from the config)."""
        return self.build is not None


def _registry(*families: LevelFamily) -> MappingProxyType:
    return MappingProxyType({f.name: f for f in families})


# name -> LevelFamily, in the order shown to users (and cycled by the regression schedule).
# Adding a family is adding an entry here.
LEVEL_FAMILIES = _registry(
    LevelFamily("uniform", "evenly spaced", uniform_levels),
    LevelFamily("exponential", "threshold-centred, denser towards the threshold",
                exponential_levels, layer_params=(("level_a", "a"), ("level_b", "b")),
                random_params=_random_exponential),
    LevelFamily("snntorch", "snnTorch's uniform state_quant table", _snntorch,
                random_params=_random_snntorch),
    # The regressions reach this table through ``snntorch`` (it draws uniform=False too).
    LevelFamily("snntorch_exponential", "snnTorch's uniform=False state_quant table",
                _snntorch_exponential, in_regressions=False),
    LevelFamily("custom", "a user table", None),
)


def level_family(name: str) -> LevelFamily:
    """The registry entry of ``name`` (ValueError naming the families otherwise)."""
    return LEVEL_FAMILIES[check_choice("family", name, tuple(LEVEL_FAMILIES))]


def describe_families(names=None) -> str:
    """``name (description) | ...`` for ``names`` (default: every family), for help text."""
    names = tuple(LEVEL_FAMILIES) if names is None else names
    return " | ".join(f"{n} ({LEVEL_FAMILIES[n].description})" for n in names)


def make_levels(family: str, num_bits: int, threshold: float = 1.0, **kwargs) -> np.ndarray:
    """Build a table by family name (any family with a builder: see :data:`LEVEL_FAMILIES`)."""
    spec = level_family(family)
    if spec.build is None:
        raise ValueError(f"family {family!r} has no builder: pass the table to custom_levels")
    return spec.build(num_bits, threshold, **kwargs)


def round_half_up(x: np.ndarray) -> np.ndarray:
    """``floor(x + 1/2)``: the one rounding rule for mapping real values onto integers."""
    return np.floor(np.asarray(x, dtype=np.float64) + 0.5)


def levels_to_fixed_point(levels, frac_bits: int, unit: float = 1.0,
                          max_extra_bits: int = 48) -> np.ndarray:
    """Map a float table onto integers ``round_half_up(level / unit * 2**frac_bits)``.

    ``unit`` is the real value of one integer membrane step before the ``frac_bits``
    extra fraction bits (for a deployed layer: weight scale x input scale). Raises a
    ValueError if two levels land on the same integer, saying how many more fractional
    bits make the table strictly increasing again.
    """
    levels = custom_levels(levels)
    frac_bits = check_int("frac_bits", frac_bits, 0, 48)
    unit = check_float("unit", unit, 0.0, None, lo_open=True)

    def grid(f: int) -> np.ndarray:
        return round_half_up(levels / unit * 2.0 ** f)

    q = grid(frac_bits)
    if np.any(np.abs(q) >= 2.0 ** 52):
        raise ValueError(f"levels / unit * 2**frac_bits exceeds 2**52 (frac_bits={frac_bits}, "
                         f"unit={unit!r}); use a larger unit or fewer fractional bits")
    d = np.diff(q)
    if np.any(d <= 0):
        k = int(np.argmax(d <= 0))
        for extra in range(1, max_extra_bits + 1):
            if np.all(np.diff(grid(frac_bits + extra)) > 0):
                break
        else:
            extra = None
        need = (f"{extra} more fractional bit(s) (frac_bits >= {frac_bits + extra})"
                if extra is not None else f"more than {max_extra_bits} more fractional bits")
        raise ValueError(
            f"state levels {k} and {k + 1} ({float(levels[k]):.9g}, {float(levels[k + 1]):.9g}) "
            f"both map to "
            f"integer {int(q[k + 1])} at frac_bits={frac_bits}; the table needs {need}")
    return q.astype(np.int64)
