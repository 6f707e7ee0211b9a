"""``qsnn-hw train``: quantization-aware training of a LIF network, exported as an artifact.

Writes into ``--out``: ``model.qsnn`` (the artifact), ``metrics.json``, ``checkpoint.npz``
(after every epoch; ``--resume`` continues from it) and ``plots/*.png``. An ``--out``
that already holds a run (``model.qsnn`` or ``checkpoint.npz``) is refused before any
training: ``--resume`` continues it, ``--force`` trains from scratch and replaces it.
Per-layer options take one value (all layers) or a comma list with one value per layer
(hidden layers first, then the output layer), e.g. ``--weight-bits 3,4``.

The network is ``--hidden`` dense layers (then the output layer), or ``--arch``: layers
separated by ``-``, input first, output last -- ``<C>c<K>`` a K x K convolution with C
channels, optionally ``p<P>`` (padding), ``s<S>`` (stride 1 or 2), ``b`` (batch norm);
``mp<K>`` max pooling of the preceding convolution's spikes; ``<N>`` a dense layer
(``<N>b`` batch-normalized); e.g. ``--arch 8c3-mp2-16c3p1b-10``. Convolutions need an
image dataset (digits 1x8x8, fashion_mnist 1x28x28).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import UserError
from ..quant.levels import describe_families
from ..train.config import (
    ENCODINGS,
    LOSSES,
    STATE_FAMILIES,
    STATE_MODES,
    SURROGATES,
    WEIGHT_MODES,
    LayerConfig,
    TrainConfig,
)
from ._args import add_quiet, auto_or, float_range, int_range
from ._out import check_out

_D = TrainConfig()
_L = LayerConfig(1)
# --hidden's default, told apart from a --hidden given with --arch by identity
_HIDDEN = [lc.size for lc in _D.layers[:-1]]


# The shared range types of every subcommand (messages name the allowed range).
_int_in = int_range
_float_in = float_range


def _choice(choices):
    def parse(text):
        if text not in choices:
            raise argparse.ArgumentTypeError(f"must be one of {', '.join(choices)}; "
                                             f"got {text!r}")
        return text
    return parse


def _per_layer(item):
    """A comma list of ``item`` values (one value = every layer)."""
    def parse(text):
        parts = [p.strip() for p in str(text).split(",")]
        if any(p == "" for p in parts):
            raise argparse.ArgumentTypeError(f"empty entry in list {text!r}")
        return [item(p) for p in parts]
    return parse


def _hidden(text):
    if text.strip() in ("", "none"):
        return []
    return _per_layer(_int_in(1, 1 << 16))(text)


# What `qsnn-hw train` trains when no flag says otherwise: the toolkit's purpose, 4-bit QAT
# weights and 4-bit exponential SQUAT states (as `qsnn-hw flow` and the Python API);
# `--weight-mode none --state-mode none` trains the float network.
CLI_LAYER_DEFAULTS = {"weight_mode": "qat", "weight_bits": 4, "state_mode": "squat",
                      "state_bits": 4, "state_family": "exponential"}

# flag -> (LayerConfig field, element parser, help)
LAYER_FLAGS = {
    "--beta": ("beta", _float_in(0, 1, lo_open=True), "leak factor in (0, 1]"),
    "--threshold": ("threshold", _float_in(0, 1e6, lo_open=True), "firing threshold (> 0)"),
    "--reset": ("reset", _choice(("subtract", "zero", "clear")),
                "reset: subtract | zero (membrane and input of that step dropped) | clear "
                "(membrane dropped, input kept: snnTorch's reset_mechanism='zero')"),
    "--rest": ("rest", _choice(("auto", "level", "zero")),
               "membrane at a sample's start: auto (exactly 0 for the snnTorch level "
               "families, as snnTorch; else the level nearest 0) | level | zero"),
    "--weight-mode": ("weight_mode", _choice(WEIGHT_MODES),
                      "weights: none (float, deployed at --float-weight-bits) | ptq | qat | "
                      "tawq (time-varying ternary weights, docs/training.md)"),
    "--weight-bits": ("weight_bits", _int_in(2, 16),
                      "weight bits, 2..16 (tawq: bits of the per-weight code, 2..8)"),
    "--weight-scheme": ("weight_scheme", _choice(("symmetric", "asymmetric", "ternary")),
                        "weight quantizer: symmetric | asymmetric | ternary"),
    "--state-mode": ("state_mode", _choice(STATE_MODES), "membrane: none | ptq | squat"),
    "--state-bits": ("state_bits", _int_in(1, 16), "state (membrane) bits, 1..16"),
    "--state-family": ("state_family", _choice(STATE_FAMILIES),
                       f"level table: {describe_families(STATE_FAMILIES)}"),
    "--level-a": ("level_a", _float_in(0, 50), "exponential steepness below threshold, 0..50"),
    "--level-b": ("level_b", _float_in(0, 50), "exponential steepness above threshold, 0..50"),
    "--lower-limit": ("lower_limit", _float_in(0, 100),
                      "levels start at -threshold*(1+lower_limit)"),
    "--upper-limit": ("upper_limit", _float_in(0, 100, lo_open=True),
                      "levels end at threshold*(1+upper_limit)"),
}


def register(subparsers) -> None:
    from ..data import DATASETS
    p = subparsers.add_parser(
        "train", help="train a (quantized) SNN and export the integer artifact",
        description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    g = p.add_argument_group("data")
    g.add_argument("--dataset", type=_choice(DATASETS),
                   default=_D.dataset, help="digits | fashion_mnist | shd")
    g.add_argument("--data-dir", default=_D.data_dir,
                   help="directory holding downloaded dataset files")
    g.add_argument("--data-seed", type=_int_in(0, 2**32 - 1), default=_D.data_seed,
                   help="seed of the train/validation/test split")
    g.add_argument("--timesteps", type=_int_in(1, 10000), default=_D.timesteps,
                   help="timesteps T per sample")
    g.add_argument("--encoding", type=_choice(ENCODINGS), default=_D.encoding,
                   help="direct (multi-bit input every timestep) | rate | latency")
    g.add_argument("--input-bits", type=_int_in(1, 16), default=_D.input_bits,
                   help="input width for direct encoding, 1..16")
    g = p.add_argument_group("network (per-layer flags: one value or a comma list)")
    g.add_argument("--hidden", type=_hidden, default=_HIDDEN,
                   help="hidden dense layer sizes, comma list ('none' for no hidden layer)")
    g.add_argument("--arch", type=_arch, default=argparse.SUPPRESS, metavar="SPEC",
                   help="the whole network instead of --hidden, e.g. 8c3-mp2-16c3p1b-10: "
                        "<C>c<K>[p<P>][s<S>][b] convolution (padding, stride 1|2, batch "
                        "norm), mp<K> max pooling after a convolution, <N>[b] dense layer; "
                        "the last layer is the output (one neuron per class)")
    for flag, (name, item, text) in LAYER_FLAGS.items():
        default = CLI_LAYER_DEFAULTS.get(name, getattr(_L, name))
        g.add_argument(flag, type=_per_layer(item), default=[default], help=text)
    g.add_argument("--bias", action="store_true", help="learn a bias current per neuron")
    g.add_argument("--learn-beta", action="store_true", help="learn beta per layer")
    g.add_argument("--surrogate", type=_choice(SURROGATES), default=_D.surrogate,
                   help="atan | fast_sigmoid | triangular")
    g.add_argument("--surrogate-param", type=_float_in(0, 1e4), default=_D.surrogate_param,
                   help="atan alpha / fast-sigmoid slope / triangular width (0 = default: "
                        "2 / 25 / 1)")
    g = p.add_argument_group("training")
    g.add_argument("--loss", type=_choice(LOSSES), default=_D.loss,
                   help="ce (cross-entropy on spike counts) | mse (on spike counts)")
    g.add_argument("--correct-rate", type=_float_in(0, 1), default=_D.correct_rate,
                   help="mse target firing rate of the true class")
    g.add_argument("--incorrect-rate", type=_float_in(0, 1), default=_D.incorrect_rate,
                   help="mse target firing rate of the other classes")
    g.add_argument("--epochs", type=_int_in(1, 100000), default=_D.epochs,
                   help="training epochs at most, 1..100000 (early stopping may end sooner)")
    g.add_argument("--batch-size", type=_int_in(1, 65536), default=_D.batch_size,
                   help="samples per training batch, 1..65536")
    g.add_argument("--lr", type=auto_or(_float_in(0, 10, lo_open=True)), default=_D.lr,
                   help="Adam learning rate, cosine-annealed to --lr-min; auto: 1e-3 when a "
                        "layer trains at 2 bits or fewer (weights or states), else 3e-3")
    g.add_argument("--lr-min", type=_float_in(0, 10), default=_D.lr_min,
                   help="learning rate at the last epoch (cosine annealing ends here), <= --lr")
    g.add_argument("--grad-clip", type=_float_in(0, 1e6), default=_D.grad_clip,
                   help="global gradient-norm clip (0 = off)")
    g.add_argument("--patience", type=_int_in(1, 100000), default=_D.patience,
                   help="early stop after this many epochs without a better val accuracy")
    g.add_argument("--seed", type=_int_in(0, 2**32 - 1), default=_D.seed,
                   help="seed of initialisation, batch order and rate encoding: same seed, same "
                        "artifact bytes")
    g.add_argument("--init-scale", type=_float_in(0, 100, lo_open=True),
                   default=_D.init_scale, help="weight init bound multiplier")
    g.add_argument("--init", default="", metavar="NIR",
                   help="start from this NIR graph's float network (snnTorch & co., "
                        "docs/interop.md): its layer sizes (and convolutions), biases, "
                        "beta and thresholds replace --hidden/--arch, --bias, --beta and "
                        "--threshold")
    g.add_argument("--init-dt", type=_float_in(0, 1e3, lo_open=True), default=_D.init_dt,
                   help="time step of the --init graph in seconds (default 1e-4, snnTorch's)")
    g.add_argument("--float-epochs", type=_int_in(0, 100000), default=_D.float_epochs,
                   help="train the first N epochs in float before QAT/SQUAT starts")
    g.add_argument("--max-train-samples", type=_int_in(0, 1 << 31),
                   default=_D.max_train_samples, help="train on at most N samples/epoch (0=all)")
    g = p.add_argument_group("deployment (integer format)")
    g.add_argument("--beta-shift", type=_int_in(1, 24), default=_D.beta_shift,
                   help="beta = beta_num / 2**beta_shift")
    g.add_argument("--frac-bits", type=_int_in(-1, 32), default=_D.frac_bits,
                   help="membrane fractional bits (-1 = auto)")
    g.add_argument("--mem-bits", type=_int_in(-1, 32), default=_D.mem_bits,
                   help="membrane width of unquantized layers (-1 = auto)")
    g.add_argument("--float-weight-bits", type=_int_in(2, 16), default=_D.float_weight_bits,
                   help="PTQ width used to deploy layers trained with --weight-mode none")
    g = p.add_argument_group("output")
    g.add_argument("--out", default="runs/train", help="output directory")
    g.add_argument("--resume", action="store_true",
                   help="continue from OUT/checkpoint.npz (same config)")
    g.add_argument("--force", action="store_true",
                   help="train from scratch, replacing the run already in OUT")
    g.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    add_quiet(g)
    p.set_defaults(func=run)


def _arch(text):
    from ..train.arch import ArchError, parse_arch
    try:
        return parse_arch(text)
    except ArchError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--arch: ")) from None


def _shapes(args, n_classes: int) -> list[dict]:
    """The layers' shape fields from ``--arch`` or ``--hidden`` (+ the output layer)."""
    arch = getattr(args, "arch", None)
    if arch is None:
        return [dict(size=s) for s in list(args.hidden) + [n_classes]]
    if args.hidden is not _HIDDEN:
        raise UserError("give the network by --arch or by --hidden, not both")
    if arch[-1]["size"] != n_classes:
        raise UserError(f"--arch: the last layer is the output and must have one neuron per "
                        f"class of the dataset ({n_classes}), got {arch[-1]['size']}")
    return [dict(d) for d in arch]


def build_config(args, n_classes: int) -> TrainConfig:
    shapes = _shapes(args, n_classes)
    sizes = [d["size"] for d in shapes]
    n = len(sizes)
    per_layer = {}
    for flag, (name, _, _) in LAYER_FLAGS.items():
        values = getattr(args, flag[2:].replace("-", "_"))
        if len(values) == 1:
            values = values * n
        if len(values) != n:
            raise ValueError(f"{flag} has {len(values)} values but the network has {n} layers "
                             f"(sizes {sizes}); give one value or {n}")
        per_layer[name] = values
    if args.mem_bits not in (-1,) and args.mem_bits < 2:
        raise ValueError(f"--mem-bits must be -1 (auto) or in [2, 32], got {args.mem_bits}")
    if args.float_epochs > args.epochs:
        raise ValueError(f"--float-epochs ({args.float_epochs}) must not exceed --epochs "
                         f"({args.epochs})")
    if args.lr != "auto" and args.lr_min > args.lr:
        raise ValueError(f"--lr-min ({args.lr_min}) must not exceed --lr ({args.lr})")
    biases = [args.bias] * n
    if args.init:
        if getattr(args, "arch", None) is not None:
            raise UserError("--init takes the network from the NIR graph; drop --arch")
        shapes, biases, per_layer = _from_graph(args, n_classes, per_layer)
    layers = tuple(LayerConfig(bias=biases[i], learn_beta=args.learn_beta, **shapes[i],
                               **{k: v[i] for k, v in per_layer.items()})
                   for i in range(len(shapes)))
    return TrainConfig(
        layers=layers, dataset=args.dataset, data_dir=args.data_dir, data_seed=args.data_seed,
        timesteps=args.timesteps, encoding=args.encoding, input_bits=args.input_bits,
        surrogate=args.surrogate, surrogate_param=args.surrogate_param, loss=args.loss,
        correct_rate=args.correct_rate, incorrect_rate=args.incorrect_rate,
        epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, lr_min=args.lr_min,
        grad_clip=args.grad_clip, patience=args.patience, seed=args.seed,
        beta_shift=args.beta_shift, frac_bits=args.frac_bits, mem_bits=args.mem_bits,
        float_weight_bits=args.float_weight_bits, init_scale=args.init_scale,
        max_train_samples=args.max_train_samples, float_epochs=args.float_epochs,
        init=args.init, init_dt=args.init_dt)


def _from_graph(args, n_classes: int, per_layer: dict):
    """``--init``: layer shapes (sizes; kernel, stride, padding and pooling of
    convolutions), biases, beta and thresholds (1: folded into the weights) from the NIR
    graph; the other per-layer flags must give one value or one per layer of the graph."""
    from ..nirgraph import InteropError, float_layers
    try:
        _, layers = float_layers(args.init, args.init_dt)
    except InteropError as exc:
        raise UserError(f"--init {args.init}: {exc}") from None
    sizes = [w.shape[0] for w, *_ in layers]
    if layers[-1][3] is not None:
        raise UserError(f"--init {args.init}: the output layer is a convolution; it must be "
                        f"dense (one neuron per class)")
    if sizes[-1] != n_classes:
        raise UserError(f"--init {args.init}: the output layer has {sizes[-1]} neurons, "
                        f"the dataset {n_classes} classes")
    n = len(sizes)
    out = {}
    for name, values in per_layer.items():
        if len(set(values)) == 1:
            values = values[:1] * n
        if len(values) != n:
            raise UserError(f"--init {args.init}: the graph has {n} layers; give per-layer "
                            f"flags one value or {n}")
        out[name] = values
    out["beta"] = [beta for _, _, beta, _ in layers]
    out["threshold"] = [1.0] * n
    # a NIR network starts from v = 0 (as snnTorch, and as `qsnn-hw import` deploys it)
    out["rest"] = ["zero" if r == "auto" else r for r in out["rest"]]
    shapes = [dict(size=w.shape[0]) if geo is None else
              dict(size=w.shape[0], kernel=geo["kernel"], stride=geo["stride"],
                   padding=geo["padding"], pool=geo["pool"])
              for w, _, _, geo in layers]
    return shapes, [b is not None for _, b, _, _ in layers], out


def check_out_dir(args) -> Path:
    """``--out`` checked before the data loads: a run already there is continued
    (``--resume``) or replaced (``--force``), never silently overwritten."""
    if args.resume and args.force:
        raise UserError("--resume continues the run in --out and --force replaces it; "
                        "give one of them")
    return check_out(args.out, outputs=("model.qsnn", "checkpoint.npz"),
                     force=args.force or args.resume,
                     hint="--resume to continue that run or --force to replace it")


def _mtime(path: Path) -> int | None:
    try:
        return path.stat().st_mtime_ns
    except FileNotFoundError:
        return None


def run(args) -> int:
    import sys
    from functools import partial

    from ..data import load_dataset
    from ..progress import line
    from ..train.trainer import Progress, run_training

    if not args.no_plots:
        from .._extras import need
        need("matplotlib")         # before any work: plots come at the end of training
    out = check_out_dir(args)
    if args.resume and not (out / "checkpoint.npz").is_file():
        raise ValueError(f"--resume: no checkpoint at {out / 'checkpoint.npz'}; train without "
                         f"--resume first (or point --out at the interrupted run)")
    data = load_dataset(args.dataset, args.data_dir, args.timesteps, args.data_seed)
    cfg = build_config(args, data.n_classes)
    # bars unless --quiet; the test summary either way, unless part of a flow
    step = getattr(args, "flow_step", False)
    progress = Progress(summaries=not step)
    ckpt = out / "checkpoint.npz"
    before = _mtime(ckpt)
    try:
        metrics = run_training(cfg, data, args.out, resume=args.resume, progress=progress,
                               plots=not args.no_plots)
    except KeyboardInterrupt:
        # every file is written whole (atomic renames): an earlier model.qsnn and its
        # metrics.json stay until this run has its own
        kept = " (the model already there is untouched)" if (out / "model.qsnn").is_file() \
            else ""
        if _mtime(ckpt) != before:
            print(f"\ninterrupted: {ckpt} holds this run's last completed epoch{kept}; "
                  f"continue with the same flags plus --resume", file=sys.stderr)
        else:
            print(f"\ninterrupted before this run completed an epoch{kept}",
                  file=sys.stderr)
        raise
    (line if step else partial(print, file=sys.stderr))(
        f"wrote {metrics['artifact']} and {args.out}/metrics.json")
    return 0
