"""Check one core of a simulated bundle (:mod:`.bundle`): its trace file against the
golden model, through :func:`.trace.rebuild` and the one :func:`.compare.compare`."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..artifact import load_artifact
from ..golden import simulate
from ..hdl.config import CoreConfig
from ..hdl.geometry import network_geometry
from .compare import compare
from .trace import parse_trace, rebuild


def check_core(bundle_dir, entry: dict) -> dict:
    """The comparison report of core ``entry`` of the bundle in ``bundle_dir``, with
    ``core``, ``seed`` and ``describe`` added."""
    d = Path(bundle_dir)
    net = load_artifact(d / f"{entry['name']}.qsnn").network
    config = CoreConfig.from_dict(entry["config"])
    x = np.load(d / f"{entry['name']}.inputs.npy")[:entry["samples"]]
    path = d / f"{entry['name']}.trace"
    raw = parse_trace(path.read_text() if path.exists() else "", len(net.layers))
    B, T = x.shape[:2]
    got = rebuild(network_geometry(net, config), config.count_bits, raw, B, T)
    rep = compare(net, simulate(net, x, trace=True), got)
    rep.update(core=entry["name"], seed=entry["seed"], describe=entry.get("describe", ""))
    return rep
