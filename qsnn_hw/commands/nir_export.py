"""``qsnn-hw export``: an artifact -> a NIR graph carrying its quantization.

Every layer becomes ``Affine`` (``Linear`` without bias) and ``LIF`` (``IF`` when beta is
1) in membrane units -- a convolution ``Conv2d``, its max pooling ``SumPool2d`` +
``Threshold`` 0.5 (at least one spike in the window), a ``Flatten`` before the first dense
layer after it --: weights ``W * 2**frac_bits``, bias and threshold as the integers,
input in whole input steps, ``tau = dt / (1 - beta)`` and ``r = tau / dt`` with snnTorch's
dt = 1e-4. Each node's metadata (key ``qsnn_hw``, JSON) holds the integers a float reader
cannot see -- ``beta_num / 2**beta_shift``, the leak's rounding, the level table, the
membrane width, the reset mode -- and the graph's the artifact's config and
layer info, so ``qsnn-hw import`` rebuilds the identical artifact. docs/interop.md.

    qsnn-hw export runs/w4s4/model.qsnn --nir w4s4.nir
"""

from __future__ import annotations

from pathlib import Path

from ..errors import UserError
from ._out import check_out_file


def run(args) -> int:
    from ..artifact import load_artifact
    from ..interop import write_nir

    model = Path(args.model)
    if not model.exists():
        raise UserError(f"artifact {model} does not exist")
    out = check_out_file(args.nir, force=args.force, flag="--nir")
    art = load_artifact(model)
    write_nir(art, out)
    conv = any(layer.is_conv for layer in art.network.layers)
    kinds = "Conv2d/Affine/Linear + LIF/IF" if conv else "Affine/Linear + LIF/IF"
    print(f"{out}: {len(art.network.layers)} layers as NIR ({kinds}), quantization in "
          f"node metadata")
    return 0


def register(sub) -> None:
    import argparse
    p = sub.add_parser("export", help="an artifact -> a NIR graph with its quantization",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", metavar="MODEL", help="artifact file (.qsnn)")
    p.add_argument("--nir", required=True, help="NIR file to write (.nir)")
    p.add_argument("--force", action="store_true", help="replace an existing --nir file")
    p.set_defaults(func=run)
