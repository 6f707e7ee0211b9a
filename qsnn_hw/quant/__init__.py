"""Weight and state quantizers (float side: training, export to integers)."""

from .levels import (
    LEVEL_FAMILIES,
    LevelFamily,
    custom_levels,
    exponential_levels,
    level_family,
    levels_to_fixed_point,
    make_levels,
    snntorch_levels,
    uniform_levels,
)
from .state import LevelQuantizer, nearest_level
from .weights import (
    WEIGHT_SCHEMES,
    QuantizedTensor,
    WeightQuantizer,
    quantize_asymmetric,
    quantize_symmetric,
    quantize_ternary,
    ste_backward,
)

__all__ = [
    "LEVEL_FAMILIES", "LevelFamily", "custom_levels", "exponential_levels", "level_family",
    "levels_to_fixed_point", "make_levels", "snntorch_levels", "uniform_levels",
    "LevelQuantizer", "nearest_level",
    "WEIGHT_SCHEMES", "QuantizedTensor", "WeightQuantizer", "quantize_asymmetric",
    "quantize_symmetric", "quantize_ternary", "ste_backward",
]
