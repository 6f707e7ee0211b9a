"""``qsnn-hw import``: a NIR graph (from snnTorch, Norse, Sinabs, ... or ``qsnn-hw
export``) -> a deployable artifact (.qsnn).

A graph written by ``qsnn-hw export`` is rebuilt exactly (its integers are in the node
metadata). Any other chain of dense and convolutional LIF layers (Input -> [Conv2d ->
LIF/IF [-> SumPool2d -> Threshold] -> ... -> Flatten] -> Linear/Affine -> LIF/IF -> ... ->
Output) is quantized post-training: ``--weight-bits`` per-tensor weights, a saturating membrane or
``--state-bits`` levels of ``--state-family``. NIR leaves the discrete-time semantics
open; ``--dt`` and ``--reset`` set them (defaults: snnTorch's ``Leaky`` exported by
``snntorch.export_nir``: dt 1e-4 s, subtract reset decided by the previous step's spike).
docs/interop.md has the mapping table and what each option means.

    qsnn-hw import net.nir --out net.qsnn --weight-bits 8
    qsnn-hw import net.nir --out net.qsnn --state-bits 4 --state-family snntorch
"""

from __future__ import annotations

from pathlib import Path

from ..errors import UserError
from ._args import float_range, int_range
from ._out import check_out_file


def run(args) -> int:
    from ..artifact import save_artifact
    from ..interop import ImportOptions, InteropError, import_nir

    out = check_out_file(args.out, force=args.force)
    opts = ImportOptions(dt=args.dt, reset=args.reset, rest=args.rest,
                         weight_bits=args.weight_bits,
                         weight_scheme=args.weight_scheme, state_bits=args.state_bits,
                         state_family=args.state_family, frac_bits=args.frac_bits,
                         mem_bits=args.mem_bits, beta_shift=args.beta_shift,
                         input_bits=args.input_bits)
    dataset = {}
    if args.dataset:
        dataset = dict(dataset=args.dataset, timesteps=args.timesteps,
                       encoding=args.encoding)
    try:
        art = import_nir(Path(args.model), opts, dataset=dataset)
    except InteropError as exc:
        raise UserError(str(exc)) from None
    save_artifact(out, art)
    net = art.network
    how = "rebuilt exactly (qsnn-hw graph)" if "imported_from" not in art.metadata \
        else "quantized post-training"
    print(f"{out}: {network_text(net)}, {how}")
    return 0


def network_text(net) -> str:
    """``64-128-10``, or with convolutions the input shape and the ``--arch`` notation:
    ``1x8x8: 4c3p1-6c3s2-8``."""
    from types import SimpleNamespace

    from ..train.arch import describe_arch
    first = net.layers[0]
    if not any(layer.is_conv for layer in net.layers):
        return f"{net.n_in}-" + "-".join(str(layer.n_out) for layer in net.layers)
    shape = "x".join(map(str, first.in_shape)) if first.is_conv else str(net.n_in)
    return f"{shape}: " + describe_arch(
        SimpleNamespace(size=layer.weight.shape[0],
                        kernel=layer.kernel[0] if layer.is_conv else 0,
                        padding=layer.padding, stride=layer.stride, pool=layer.pool,
                        batch_norm=False) for layer in net.layers)


def register(sub) -> None:
    from ..data import DATASETS
    from ..quant.weights import WEIGHT_SCHEMES
    from ..train.config import STATE_FAMILIES
    p = sub.add_parser("import", help="a NIR graph -> an artifact (.qsnn)",
                       description=__doc__,
                       formatter_class=__import__("argparse").RawDescriptionHelpFormatter)
    p.add_argument("model", metavar="MODEL", help="NIR file (.nir)")
    p.add_argument("--out", required=True, help="artifact file to write (.qsnn)")
    p.add_argument("--force", action="store_true", help="replace an existing --out file")
    g = p.add_argument_group("semantics NIR leaves open (default: snnTorch's)")
    g.add_argument("--dt", type=float_range(0, None, lo_open=True), default=1e-4,
                   help="time step in seconds: beta = 1 - dt/tau (default 1e-4)")
    g.add_argument("--reset", choices=("subtract", "zero", "clear"), default="subtract",
                   help="subtract (default, snnTorch's Leaky) | zero (membrane and that "
                        "step's input dropped) | clear (membrane dropped, input kept: "
                        "snnTorch's reset_mechanism='zero')")
    g.add_argument("--rest", choices=("zero", "level"), default="zero",
                   help="membrane at a sample's start: zero (default, exactly 0 as "
                        "snnTorch) | level (the level nearest 0)")
    g = p.add_argument_group("quantization (post-training)")
    g.add_argument("--weight-bits", type=int_range(2, 16), default=16,
                   help="weight width, per-tensor scale (default 16)")
    g.add_argument("--weight-scheme", choices=WEIGHT_SCHEMES, default="symmetric",
                   help="default symmetric")
    g.add_argument("--state-bits", type=int_range(0, 8), default=0,
                   help="membrane levels 2**BITS; 0 = saturating membrane (default 0)")
    g.add_argument("--state-family", choices=STATE_FAMILIES, default="exponential",
                   help="level table of --state-bits (default exponential)")
    g.add_argument("--frac-bits", type=int_range(-1, 32), default=-1,
                   help="membrane fractional bits, -1 = automatic (default)")
    g.add_argument("--mem-bits", type=int_range(-1, 32), default=-1,
                   help="saturating membrane width, -1 = automatic (default)")
    g.add_argument("--beta-shift", type=int_range(0, 24), default=12,
                   help="beta = beta_num / 2**SHIFT (default 12)")
    g.add_argument("--input-bits", type=int_range(1, 16), default=1,
                   help="1 = spike input (default); B > 1 = direct values k/(2**B-1)")
    g = p.add_argument_group("data the network runs on (for verify and flow)")
    g.add_argument("--dataset", choices=DATASETS, default=None, help="default: none")
    g.add_argument("--timesteps", type=int_range(1, 10000), default=16, help="default 16")
    g.add_argument("--encoding", choices=("direct", "rate", "latency"), default="rate",
                   help="default rate")
    p.set_defaults(func=run)
