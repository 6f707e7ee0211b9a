"""Training configuration: frozen dataclasses validated in ``__post_init__``.

One :class:`TrainConfig` travels from the CLI through the trainer into the artifact
(``TrainConfig.to_dict``). Each :class:`LayerConfig` says how one LIF layer (dense, or
convolutional with ``kernel > 0``) is built and quantized, so mixed precision (e.g. 3-bit
weights, 5-bit states) is per layer.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

from .._check import check_choice, check_float, check_int
from ..contract import MAX_BETA_SHIFT, MAX_INPUT_BITS, MAX_MEM_BITS, RESET_MODES, REST_MODES
from ..quant.levels import LEVEL_FAMILIES, MAX_STATE_BITS, MIN_STATE_BITS
from ..quant.tawq import MAX_CODE_BITS, MIN_CODE_BITS
from ..quant.weights import MAX_WEIGHT_BITS, MIN_WEIGHT_BITS, WEIGHT_SCHEMES

WEIGHT_MODES = ("none", "ptq", "qat", "tawq")
STATE_MODES = ("none", "ptq", "squat")
# The level families a layer can name (those whose table follows from the config).
STATE_FAMILIES = tuple(name for name, f in LEVEL_FAMILIES.items() if f.trainable)
SURROGATES = ("atan", "fast_sigmoid", "triangular")
ENCODINGS = ("direct", "rate", "latency")
LOSSES = ("ce", "mse")
MAX_KERNEL = 15
MAX_POOL = 16
# LayerConfig fields that describe the network's shape (not how a layer is quantized)
ARCH_FIELDS = ("size", "kernel", "stride", "padding", "pool", "batch_norm")
# Default surrogate parameter: arctan alpha (snnTorch: 2), fast-sigmoid slope (snnTorch: 25),
# triangular half-width in threshold units.
SURROGATE_DEFAULT_PARAM = {"atan": 2.0, "fast_sigmoid": 25.0, "triangular": 1.0}


@dataclass(frozen=True)
class LayerConfig:
    """One layer of LIF neurons, dense or convolutional.

    size: number of neurons (dense) or output channels (convolutional). kernel: 0 for a
    dense layer, else the side K of a K x K 2-D convolution over the previous layer's
    (C, H, W) output; stride (1 or 2), padding (zero padding on each side, < kernel) and
    pool (max pooling of the output spikes over pool x pool windows, 1 = none) apply to
    convolutions only. batch_norm: batch normalization of the current per output channel
    (per neuron for a dense layer), folded into weights and bias at export
    (docs/training.md); such a layer has no separate bias. bias: learn a bias current.
    beta: leak factor in (0, 1]. learn_beta: train beta (clamped to [2**-beta_shift, 1]).
    threshold: firing threshold (float units of the trainer). reset: ``subtract``,
    ``zero`` (membrane and that step's input dropped) or ``clear`` (membrane dropped,
    input kept: snnTorch's ``zero``).
    rest: the membrane at a sample's start, ``auto`` (exactly 0 for the snnTorch level
    families, as snnTorch; else the level nearest 0), ``level`` or ``zero``.
    weight_mode: ``none`` (float; exported by PTQ at the network's ``float_weight_bits``),
    ``ptq`` (trained float, quantized at export), ``qat`` (fake-quantized in training) or
    ``tawq`` (time-varying ternary weights trained through their calcium dynamics,
    :mod:`.tawq`; ``weight_bits`` is then the width of the per-weight code, 2..8).
    weight_bits / weight_scheme: the weight quantizer (per-tensor scale).
    state_mode: ``none`` (saturating membrane), ``ptq`` (levels applied only in the
    deployed model) or ``squat`` (membrane quantized in training, STE backward).
    state_bits / state_family: the level table (one of :data:`STATE_FAMILIES`, described
    in ``qsnn_hw.quant.levels.LEVEL_FAMILIES``; the snnTorch tables are threshold-centred
    with snnTorch's default multiplier); level_a, level_b: exponential steepness
    below/above the threshold; lower_limit, upper_limit: table range
    ``[-thr*(1+lower_limit), thr*(1+upper_limit)]``.
    """

    size: int
    bias: bool = False
    beta: float = 0.9
    learn_beta: bool = False
    threshold: float = 1.0
    reset: str = "subtract"
    weight_mode: str = "none"
    weight_bits: int = 8
    weight_scheme: str = "symmetric"
    state_mode: str = "none"
    state_bits: int = 4
    state_family: str = "exponential"
    level_a: float = 4.0
    level_b: float = 4.0
    lower_limit: float = 0.0
    upper_limit: float = 0.2
    rest: str = "auto"
    kernel: int = 0
    stride: int = 1
    padding: int = 0
    pool: int = 1
    batch_norm: bool = False

    def __post_init__(self):
        check_int("size", self.size, 1, 1 << 20)
        check_int("kernel", self.kernel, 0, MAX_KERNEL)
        if self.kernel:
            check_int("stride", self.stride, 1, 2)
            check_int("padding", self.padding, 0, self.kernel - 1)
            check_int("pool", self.pool, 1, MAX_POOL)
        else:
            for name in ("stride", "padding", "pool"):
                if getattr(self, name) != (0 if name == "padding" else 1):
                    raise ValueError(f"{name}={getattr(self, name)!r} applies to "
                                     f"convolutional layers only (kernel > 0); this layer "
                                     f"is dense (kernel 0)")
        check_float("beta", self.beta, 0.0, 1.0, lo_open=True)
        check_float("threshold", self.threshold, 0.0, 1e6, lo_open=True)
        check_choice("reset", self.reset, RESET_MODES)
        check_choice("weight_mode", self.weight_mode, WEIGHT_MODES)
        check_int("weight_bits", self.weight_bits, MIN_WEIGHT_BITS, MAX_WEIGHT_BITS)
        check_choice("weight_scheme", self.weight_scheme, WEIGHT_SCHEMES)
        if self.weight_mode == "tawq":
            check_int("weight_bits (the TaWQ code width)", self.weight_bits,
                      MIN_CODE_BITS, MAX_CODE_BITS)
            if self.batch_norm:
                raise ValueError("weight_mode='tawq' cannot be combined with batch_norm "
                                 "(folding batch norm would rescale the ternary rows); use "
                                 "batch_norm=False for TaWQ layers")
        check_choice("state_mode", self.state_mode, STATE_MODES)
        check_int("state_bits", self.state_bits, MIN_STATE_BITS, MAX_STATE_BITS)
        check_choice("state_family", self.state_family, STATE_FAMILIES)
        check_float("level_a", self.level_a, 0.0, 50.0)
        check_float("level_b", self.level_b, 0.0, 50.0)
        check_float("lower_limit", self.lower_limit, 0.0, 100.0)
        check_float("upper_limit", self.upper_limit, 0.0, 100.0, lo_open=True)
        check_choice("rest", self.rest, ("auto",) + REST_MODES)
        for name in ("bias", "learn_beta", "batch_norm"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be a bool, got {getattr(self, name)!r}")

    @property
    def is_conv(self) -> bool:
        return self.kernel > 0

    @property
    def has_bias(self) -> bool:
        """A learned bias of its own (a batch-normalized layer's bias is BN's shift)."""
        return self.bias and not self.batch_norm

    @property
    def rest_mode(self) -> str:
        """The membrane before a sample's first update: ``rest``, where ``auto`` is
        ``zero`` (exactly 0, as snnTorch) for the snnTorch level families and ``level``
        (the level nearest 0: the contract's default) otherwise."""
        if self.rest != "auto":
            return self.rest
        return "zero" if self.state_family.startswith("snntorch") else "level"


# ``lr = "auto"``: on digits, QAT+SQUAT at 2 bits reaches a higher *validation* accuracy
# at 1e-3 than at 3e-3 (seeds 0-2: 93.0 vs 88.9 %), at 4 bits the reverse (96.1 vs 96.7 %);
# docs/training.md, "Learning rate".
LR_WIDE = 3e-3
LR_NARROW = 1e-3


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a training run (same config + seed -> same artifact).

    dataset: ``digits`` | ``fashion_mnist`` | ``shd``; data_dir: where downloaded files are.
    layers: the layers, last one = output (its size = number of classes).
    timesteps: T. encoding: ``direct`` (multi-bit pixels every timestep, input_bits wide),
    ``rate`` (Bernoulli spikes with p = pixel, seeded) or ``latency`` (one spike, earlier
    for brighter pixels); event datasets (SHD) are spikes already.
    loss: ``ce`` (cross-entropy on spike counts) or ``mse`` (spike counts against
    ``correct_rate*T`` / ``incorrect_rate*T``). Optimiser: Adam (lr, cosine annealing down
    to lr_min over ``epochs``), global-norm gradient clipping ``grad_clip`` (0 = off),
    early stopping after ``patience`` epochs without a better validation accuracy.
    beta_shift: fractional bits of the deployed beta. frac_bits / mem_bits: deployed
    membrane format (-1 = choose automatically, see docs/training.md).
    float_weight_bits: PTQ width used to deploy layers whose weights are not quantized.
    float_epochs: the first epochs train the float model (no QAT/SQUAT); validation and
    model selection still use the deployed model.
    """

    layers: tuple = (LayerConfig(256), LayerConfig(10))
    dataset: str = "digits"
    data_dir: str = ""
    data_seed: int = 0
    timesteps: int = 16
    encoding: str = "direct"
    input_bits: int = 4
    surrogate: str = "atan"
    surrogate_param: float = 0.0  # 0 = the surrogate's default
    loss: str = "ce"
    correct_rate: float = 0.8
    incorrect_rate: float = 0.2
    epochs: int = 150
    batch_size: int = 64
    lr: float | str = "auto"   # "auto": :data:`LR_WIDE`, or :data:`LR_NARROW` at <= 2 bits
    lr_min: float = 1e-4
    grad_clip: float = 1.0
    patience: int = 60
    seed: int = 0
    beta_shift: int = 12
    frac_bits: int = -1
    mem_bits: int = -1
    float_weight_bits: int = 16
    init_scale: float = 1.0
    max_train_samples: int = 0  # 0 = all
    float_epochs: int = 0  # first epochs train without QAT/SQUAT (float warm-up)
    init: str = ""  # a NIR graph whose float parameters the run starts from ("" = random)
    init_dt: float = 1e-4  # its time step (beta = 1 - dt/tau; snnTorch's export)

    def __post_init__(self):
        layers = tuple(self.layers)
        if not layers:
            raise ValueError("layers must contain at least one layer")
        for i, layer in enumerate(layers):
            if not isinstance(layer, LayerConfig):
                raise TypeError(f"layers[{i}] must be a LayerConfig, got {type(layer).__name__}")
        object.__setattr__(self, "layers", layers)
        check_choice("dataset", self.dataset, ("digits", "fashion_mnist", "shd"))
        check_int("data_seed", self.data_seed, 0, 2**32 - 1)
        check_int("timesteps", self.timesteps, 1, 10000)
        check_choice("encoding", self.encoding, ENCODINGS)
        check_int("input_bits", self.input_bits, 1, MAX_INPUT_BITS)
        check_choice("surrogate", self.surrogate, SURROGATES)
        check_float("surrogate_param", self.surrogate_param, 0.0, 1e4)
        check_choice("loss", self.loss, LOSSES)
        check_float("correct_rate", self.correct_rate, 0.0, 1.0)
        check_float("incorrect_rate", self.incorrect_rate, 0.0, 1.0)
        check_int("epochs", self.epochs, 1, 100000)
        check_int("batch_size", self.batch_size, 1, 1 << 16)
        if self.lr != "auto":
            check_float("lr", self.lr, 0.0, 10.0, lo_open=True)
        check_float("lr_min", self.lr_min, 0.0, self.learning_rate)
        check_float("grad_clip", self.grad_clip, 0.0, 1e6)
        check_int("patience", self.patience, 1, 100000)
        check_int("seed", self.seed, 0, 2**32 - 1)
        check_int("beta_shift", self.beta_shift, 1, MAX_BETA_SHIFT)
        check_int("frac_bits", self.frac_bits, -1, 32)
        if self.mem_bits != -1:
            check_int("mem_bits", self.mem_bits, 2, MAX_MEM_BITS)
        check_int("float_weight_bits", self.float_weight_bits, MIN_WEIGHT_BITS, MAX_WEIGHT_BITS)
        check_float("init_scale", self.init_scale, 0.0, 100.0, lo_open=True)
        check_int("max_train_samples", self.max_train_samples, 0, 1 << 31)
        check_int("float_epochs", self.float_epochs, 0, self.epochs)
        check_float("init_dt", self.init_dt, 0.0, None, lo_open=True)

    @property
    def narrowest_bits(self) -> int | None:
        """The fewest bits any layer quantizes its weights (QAT) or states (SQUAT) to
        during training; None when nothing is quantized in training."""
        # a TaWQ layer counts its code width (as a ternary QAT layer counts weight_bits)
        bits = [lc.weight_bits for lc in self.layers if lc.weight_mode in ("qat", "tawq")]
        bits += [lc.state_bits for lc in self.layers if lc.state_mode == "squat"]
        return min(bits, default=None)

    @property
    def learning_rate(self) -> float:
        """Adam's initial learning rate: ``lr``, or for ``lr = "auto"`` :data:`LR_NARROW`
        when some layer trains at 2 bits or fewer (:attr:`narrowest_bits`), else
        :data:`LR_WIDE` (docs/training.md, "Learning rate": chosen on validation)."""
        if self.lr != "auto":
            return float(self.lr)
        narrow = self.narrowest_bits
        return LR_NARROW if narrow is not None and narrow <= 2 else LR_WIDE

    @property
    def surrogate_value(self) -> float:
        return self.surrogate_param or SURROGATE_DEFAULT_PARAM[self.surrogate]

    @property
    def quantized(self) -> bool:
        return any(lc.weight_mode != "none" or lc.state_mode != "none" for lc in self.layers)

    def to_dict(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "layers"}
        d["layers"] = [asdict(lc) for lc in self.layers]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        d = dict(d)
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown training config keys: {sorted(unknown)}")
        d["layers"] = tuple(LayerConfig(**lc) for lc in d.get("layers", ()))
        return cls(**d)


def with_layers(cfg: TrainConfig, **changes) -> TrainConfig:
    """A copy of ``cfg`` with the same field changes applied to every layer."""
    return replace(cfg, layers=tuple(replace(lc, **changes) for lc in cfg.layers))


__all__ = ["LayerConfig", "TrainConfig", "with_layers", "ARCH_FIELDS", "WEIGHT_MODES",
           "STATE_MODES",
           "STATE_FAMILIES", "SURROGATES", "ENCODINGS", "LOSSES"]
