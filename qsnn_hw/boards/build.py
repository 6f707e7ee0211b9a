"""Synthesis of a board top (Yosys + nextpnr + pack) into a temporary directory, renamed
to the output directory only when the bitstream and the report exist. With the clock
chosen automatically (``clock_mhz="auto"``) each build has its own directory and only
the one chosen is renamed (:func:`next_clock` says which clock to build next).

The report comes from nextpnr's own JSON report (``--report``: utilization per cell
type with the device totals, achieved Fmax per clock with its constraint) and Yosys'
``stat -json`` (flip-flop and LUT counts of the netlist). Toolchains: ``yowasp``
(WebAssembly builds from PyPI, the default) or ``system`` (tools on PATH).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from .. import progress as qprogress
from .._io import atomic_write_text, run_in_group
from ..contract import IntNetwork
from ..hdl.config import CoreConfig
from ..hdl.geometry import decode_width, groups_of, network_geometry
from ..hdl.weight_memory import SPRAM_BITS, SPRAM_WIDTH, spram_blocks
from . import pll as _pll
from .boards import Board, get_board
from .bridge import RX_FIFO_DEPTH
from .families import Family, get_family
from .top import DEFAULT_BAUD, BoardTop

TOOLCHAINS = ("yowasp", "system")


class BuildError(RuntimeError):
    """Synthesis or place-and-route failed (message says where and why)."""


class DesignTooLarge(BuildError):
    """The design does not fit the device (message says by how much and what to change)."""


class ToolMissing(BuildError):
    """A required tool is not installed (message says how to install it)."""


def resolve_tools(family: str | Family, toolchain: str) -> dict[str, str]:
    """Environment entries naming each tool's executable; raises :class:`ToolMissing`."""
    family = get_family(family)
    if toolchain not in TOOLCHAINS:
        raise ValueError(f"toolchain must be one of {', '.join(TOOLCHAINS)}, got {toolchain!r}")
    # console scripts of the running interpreter's environment, even if it is not on PATH
    search = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    env = {}
    for tool in family.tools:
        exe = f"yowasp-{tool.name}" if toolchain == "yowasp" else tool.name
        found = shutil.which(exe, path=search)
        if found is None:
            hint = (f"pip install 'qsnn-hw[synth]' (or pip install {tool.pypi})"
                    if toolchain == "yowasp" else
                    f"install {tool.name} (e.g. {tool.system_hint}) or use --toolchain yowasp")
            raise ToolMissing(f"{exe} not found ({toolchain} toolchain): {hint}")
        env[tool.env_var] = found
    return env


def bram_blocks(depth: int, width: int, family: str | Family) -> int:
    """Block RAMs for one depth x width memory (best single aspect ratio)."""
    return get_family(family).bram_blocks(depth, width)


WEIGHT_MODES = ("auto", "bram", "spram", "config")


def _weight_memories(net: IntNetwork, config: CoreConfig) -> list[dict]:
    """Per layer: depth, word width and bits of the weight memory (the core's geometry)."""
    return [{"depth": g.weight_depth, "width": g.lanes * g.weight_width,
             "weight_width": g.weight_width, "lanes": g.lanes,
             "bits": g.weight_depth * g.lanes * g.weight_width}
            for g in network_geometry(net, config)]


# A memory of fewer bits stays in logic (Yosys maps it to flip-flops), not block RAM.
LOGIC_MEMORY_BITS = 128


def core_memories(net: IntNetwork, config: CoreConfig) -> list[dict]:
    """The synchronous memories besides the weights that may take block RAM, as
    ``{"name", "depth", "width"}``: per layer the accumulator banks, the state memory,
    the output FIFO's memory (``fifo_depth - 1`` words: its output register holds one)
    a convolution's decode ROM and a TaWQ layer's multiplier ROM; and the bridge's receive
    FIFO."""
    mems = []
    for i, g in enumerate(network_geometry(net, config)):
        mems += [{"name": f"layer {i} accumulators", "depth": g.groups,
                  "width": g.lanes * g.acc_width}] * g.banks
        mems.append({"name": f"layer {i} states", "depth": g.groups,
                     "width": g.lanes * g.state_width})
        mems.append({"name": f"layer {i} FIFO", "depth": g.fifo_depth - 1,
                     "width": g.word_width})
        if g.conv is not None:
            mems.append({"name": f"layer {i} decode", "depth": g.n_in,
                         "width": decode_width(g)})
        if g.tawq_steps:
            mems.append({"name": f"layer {i} TaWQ multipliers",
                         "depth": g.mult_steps * g.channel_groups,
                         "width": g.lanes * g.mult_width})
    mems.append({"name": "UART receive FIFO", "depth": RX_FIFO_DEPTH - 1, "width": 8})
    return mems


def core_bram_blocks(net: IntNetwork, config: CoreConfig, family: str | Family) -> int:
    """Block RAMs the core needs besides its weights (:func:`core_memories`; those of
    fewer than :data:`LOGIC_MEMORY_BITS` bits stay in logic). An estimate made before
    any tool runs: Yosys may keep a few more small memories in logic."""
    fam = get_family(family)
    return sum(fam.bram_blocks(m["depth"], m["width"]) for m in core_memories(net, config)
               if m["depth"] * m["width"] >= LOGIC_MEMORY_BITS)


def plan_weights(net: IntNetwork, config: CoreConfig, board: Board, mode: str = "auto"
                 ) -> dict:
    """Where each layer's weights go, checked against the device before any tool runs.

    ``mode``: ``"bram"`` every layer an initialized ROM in block RAM; ``"spram"`` every
    layer a RAM in SPRAM (iCE40 UltraPlus), loaded over the UART after configuration;
    ``"auto"`` ROMs while they fit the block RAM left by the rest of the core
    (:func:`core_bram_blocks`), else the layers with the largest block-RAM need go to
    SPRAM (largest first) until the rest fits; ``"config"`` the
    storage ``config`` names ("ram" takes block RAM like a ROM). Returns the report's
    ``weights`` entry (``storage`` per layer: "rom" or "spram"); raises
    :class:`DesignTooLarge` saying by how much when even that cannot fit."""
    if mode not in WEIGHT_MODES:
        raise ValueError(f"weights must be one of {', '.join(WEIGHT_MODES)}, got {mode!r}")
    mems = _weight_memories(net, config)
    ebr = [board.fpga.bram_blocks(w["depth"], w["width"]) for w in mems]
    have_ebr, have_spram = board.capacity["bram"], board.capacity.get("spram", 0)
    bits = sum(w["bits"] for w in mems)
    block_bits = board.fpga.bram_bits
    if mode == "spram" and not have_spram:
        raise DesignTooLarge(f"--weights spram: {board.name} has no SPRAM (only the iCE40 "
                             f"UltraPlus boards: icebreaker); use --weights bram or auto")
    storage = ["spram" if mode == "spram" else "rom"] * len(mems)
    if mode == "config":
        storage = list(config.per_layer("weight_storage", len(mems)))
        if "spram" in storage and not have_spram:
            raise DesignTooLarge(f"weight storage 'spram': {board.name} has no SPRAM (only "
                                 f"the iCE40 UltraPlus boards: icebreaker)")
    # the weights' share of the block RAM: what the rest of the core leaves
    core_ebr = core_bram_blocks(net, config, board.fpga)
    for_weights = have_ebr - core_ebr
    if mode == "auto" and sum(ebr) > for_weights and have_spram:
        for i in sorted(range(len(mems)), key=lambda i: -ebr[i]):
            if sum(e for e, s in zip(ebr, storage, strict=True) if s != "spram") \
                    <= for_weights:
                break
            storage[i] = "spram"
    rom_ebr = sum(e for e, s in zip(ebr, storage, strict=True) if s != "spram")
    spram = [spram_blocks(w["depth"], w["width"]) if s == "spram" else 0
             for w, s in zip(mems, storage, strict=True)]
    info = {"mode": mode, "storage": storage, "weight_bits": bits,
            "weight_bram_blocks": rom_ebr, "bram_blocks": have_ebr,
            "core_bram_blocks": core_ebr,
            "spram_layers": [i for i, s in enumerate(storage) if s == "spram"],
            "weight_spram_blocks": sum(spram), "spram_blocks": have_spram,
            "layers": [dict(w, storage=s, bram_blocks=e if s != "spram" else 0,
                            spram_blocks=n)
                       for w, s, e, n in zip(mems, storage, ebr, spram, strict=True)]}
    if rom_ebr > have_ebr:
        rom_bits = sum(w["bits"] for w, s in zip(mems, storage, strict=True) if s != "spram")
        msg = (f"the weights do not fit {board.name}'s block RAM: they need {rom_ebr} "
               f"blocks (per layer {ebr}; {rom_bits:,} bits) of {have_ebr} "
               f"({have_ebr * block_bits:,} bits), {rom_ebr - have_ebr} blocks "
               f"({100 * (rom_ebr / have_ebr - 1):.0f} %) too many.")
        if have_spram:
            msg += (" The device's SPRAM can hold the largest layers' weights (loaded over "
                    "the UART after configuration): use --weights auto or spram.")
        else:
            msg += " Use a bigger device (ulx3s-85f), fewer weight bits or a smaller network."
        raise DesignTooLarge(msg)
    if sum(spram) > have_spram:
        raise DesignTooLarge(_spram_message(net, board, mems, storage, spram, have_spram))
    return info


def _spram_message(net, board, mems, storage, spram, have) -> str:
    cap_bits = have * SPRAM_BITS
    need = sum(spram)
    layers = [i for i, s in enumerate(storage) if s == "spram"]
    bits = sum(mems[i]["bits"] for i in layers)
    msg = (f"the weights do not fit {board.name}'s memories: the layers in SPRAM "
           f"({', '.join(map(str, layers))}) need {need} SB_SPRAM256KA (per layer "
           f"{[spram[i] for i in layers]}; 16K words x 16 bits each, one word per address) "
           f"of {have}, {need - have} too many.")
    if bits > cap_bits:
        return msg + (f" Even packed without waste their {bits:,} bits exceed the "
                      f"{cap_bits:,} bits of SPRAM by {100 * (bits / cap_bits - 1):.0f} %: "
                      "use fewer weight bits, a smaller network or an ECP5 board.")
    best = []
    for i in layers:
        wb = mems[i]["weight_width"]
        p = max(1, SPRAM_WIDTH // wb)
        if p != mems[i]["lanes"]:
            layer = net.layers[i]
            # weight rows (neurons, or a convolution's channels) in groups of p lanes
            depth = layer.matrix.shape[1] * groups_of(layer.channels, p)
            best.append(f"layer {i}: --lanes {p} packs {p} x {wb}-bit weights into a "
                        f"16-bit word (~{spram_blocks(depth, p * wb)} SPRAMs)")
    return msg + (" " + "; ".join(best) + "." if best else
                  " Use fewer weight bits or a smaller network.")


def check_weights_fit(net: IntNetwork, config: CoreConfig, board: Board) -> dict:
    """Block RAMs the weight memories need as initialized ROMs against the device's;
    raises :class:`DesignTooLarge` before any tool runs when they cannot fit
    (``plan_weights`` with ``mode="bram"``)."""
    return plan_weights(net, config, board, "bram")


def _stat_usage(stat: dict, family: str | Family) -> dict:
    """Resource use of the Yosys netlist (``stat -json``) per capacity key."""
    return get_family(family).netlist_usage(stat.get("design", {}).get("num_cells_by_type", {}))


_UTIL_LINE = re.compile(r"Info:\s+([A-Z0-9_]+):\s+(\d+)/\s*(\d+)\s+\d+%")


def log_overuse(log_text: str) -> list[tuple[str, int, int]]:
    """Over-used cell types from nextpnr's "Device utilisation" lines (only used to
    explain a failed placement, when no JSON report was written)."""
    over = {}
    for cell, used, avail in _UTIL_LINE.findall(log_text):
        if int(used) > int(avail):
            over[cell] = (cell, int(used), int(avail))
    return list(over.values())


def overuse_message(stat: dict, board: Board) -> str | None:
    """What the synthesized netlist needs beyond the device, or None."""
    use = _stat_usage(stat, board.fpga)
    over = [(k, use[k], board.capacity[k]) for k in use
            if k in board.capacity and use[k] > board.capacity[k]]
    if not over:
        return None
    parts = [f"{k}: {u:,} of {c:,} ({100 * (u / c - 1):.0f} % over)" for k, u, c in over]
    return (f"the design does not fit {board.name}: " + "; ".join(parts) +
            ". Use fewer --lanes (each lane adds a LIF datapath, quantizer and level table), "
            "fewer state/weight bits, or a bigger device (ulx3s-85f).")


def parse_reports(nextpnr: dict, stat: dict | None, family: str | Family,
                  requested_mhz: float) -> tuple[dict, dict, bool]:
    """``(resources, fmax, timing_pass)`` from nextpnr's ``--report`` JSON (and Yosys
    ``stat -json`` for the LUT and flip-flop counts of families whose nextpnr reports
    logic cells: the iCE40's)."""
    family = get_family(family)
    util = nextpnr["utilization"]
    res = {}
    for row in family.report_rows:
        if row.cell in util:
            res[row.key] = {"label": row.label, "used": util[row.cell]["used"],
                            "available": util[row.cell]["available"]}
    if family.netlist_logic_cell and stat is not None:
        use = family.netlist_usage(stat.get("design", {}).get("num_cells_by_type", {}))
        lcs = util[family.netlist_logic_cell]["available"]
        res["luts"] = {"label": "LUT4 (netlist)", "used": use["luts"], "available": lcs}
        res["ffs"] = {"label": "flip-flops (netlist)", "used": use["ffs"], "available": lcs}
    fmax = {}
    for clk, v in nextpnr.get("fmax", {}).items():
        achieved, constraint = float(v["achieved"]), float(v["constraint"])
        fmax[clk] = {"achieved_mhz": achieved, "constraint_mhz": constraint,
                     "pass": achieved >= constraint}
    ok = bool(fmax) and all(v["pass"] for v in fmax.values())
    # the core's clock must be among them, constrained at the requested frequency or above
    ok = ok and any(v["constraint_mhz"] >= requested_mhz * 0.999 for v in fmax.values())
    return res, fmax, ok


def markdown(report: dict) -> str:
    clock = report["clock"]
    auto = clock.get("chosen") == "auto"
    source = "PLL" if clock["pll"] else "board clock"
    lines = [f"# Build report: {report['board']} ({report['device']})", "",
             f"Model: {report['model'].get('sizes')} lanes {report['lanes']}; clock "
             + (f"{clock['actual_mhz']:g} MHz ({source}), chosen from the achieved Fmax "
                f"(`--clock auto`: the builds below)" if auto else
                f"requested {clock['requested_mhz']:g} MHz, actual "
                f"{clock['actual_mhz']:g} MHz ({source})")
             + f"; UART {report['uart']['baud']} baud (divisor {report['uart']['divisor']}).",
             "",
             f"Core: {CoreConfig.from_dict(report['core']).describe()} (`report.json` "
             f"\"core\"; `qsnn-hw verify MODEL --sim verilator --config report.json` "
             f"simulates exactly this core).", "",
             "| resource | used | available | % |", "|---|---:|---:|---:|"]
    for r in report["resources"].values():
        pct = 100 * r["used"] / r["available"] if r["available"] else 0
        lines.append(f"| {r['label']} | {r['used']:,} | {r['available']:,} | {pct:.1f} |")
    w = report.get("weights", {})
    if w.get("spram_layers"):
        lines += ["", f"Weights: layers {', '.join(map(str, w['spram_layers']))} in SPRAM "
                  f"({w['weight_spram_blocks']} of {w['spram_blocks']} SB_SPRAM256KA; a RAM "
                  f"loaded over the UART after configuration, `qsnn-hw run` does it), the "
                  f"others block-RAM ROMs ({w['weight_bram_blocks']} EBR for weights)."]
    elif w:
        lines += ["", f"Weights: block-RAM ROMs in the bitstream "
                  f"({w['weight_bram_blocks']} of {w['bram_blocks']} EBR for weights)."]
    lines += ["", "| clock | Fmax (MHz) | constraint (MHz) | pass |", "|---|---:|---:|---|"]
    for clk, v in report["fmax"].items():
        lines.append(f"| `{clk}` | {v['achieved_mhz']:.1f} | {v['constraint_mhz']:.1f} | "
                     f"{'yes' if v['pass'] else 'NO'} |")
    if auto:
        lines += ["", "| build | clock (MHz) | Fmax (MHz) | timing |", "|---|---:|---:|---|"]
        for n, a in enumerate(clock["attempts"], 1):
            this = " (this one)" if a["mhz"] == clock["actual_mhz"] else ""
            fmax = "-" if a["fmax"] is None else f"{a['fmax']:.1f}"
            lines.append(f"| {n}{this} | {a['mhz']:g} | {fmax} | "
                         f"{'met' if a['pass'] else 'missed'} |")
    tp = report.get("throughput")
    if tp:
        lines += ["", f"Throughput: {tp['per_sample']:,.0f} cycles per sample "
                  f"({tp['source']}): **{tp['us_per_sample']:,.1f} us per sample** at "
                  f"{clock['actual_mhz']:g} MHz."]
    builds = f", {len(clock['attempts'])} builds" if auto else ""
    lines += ["", f"Timing: **{'pass' if report['timing_pass'] else 'FAIL'}**. "
              f"Bitstream: `{report['bitstream']}`. Build time {report['seconds']:.0f} s "
              f"({report['toolchain']} toolchain{builds}).", ""]
    return "\n".join(lines)


def _write_chart(report: dict, path: Path) -> None:
    """``report.png`` beside ``report.md`` (:mod:`.report_plot`)."""
    from .._plot import save_png
    from .report_plot import report_figure
    save_png(report_figure(report), path)


def _tail(path: Path, n: int = 15) -> str:
    with contextlib.suppress(OSError):
        lines = path.read_text(errors="replace").splitlines()
        return "\n".join(lines[-n:])
    return ""


def _failed(tmp: Path, out: Path, board: Board, returncode: int):
    """Move the failed build ``tmp`` to ``<out>.failed`` and raise the error that explains
    it (:class:`DesignTooLarge` when the netlist or nextpnr's log says what is over)."""
    failed = out.parent / f"{out.name}.failed"
    if failed.exists():
        shutil.rmtree(failed)
    tmp.rename(failed)
    stat_path = failed / "yosys-stat.json"
    msg = None
    if stat_path.is_file():
        with contextlib.suppress(ValueError):
            msg = overuse_message(json.loads(stat_path.read_text()), board)
    detail = _tail(failed / "build.log") or _tail(failed / "top.tim")
    if msg is None:
        over = log_overuse(_tail(failed / "top.tim", 400) + _tail(failed / "build.log", 400))
        if over:
            msg = (f"the design does not fit {board.name}: " + "; ".join(
                f"{c} {u:,} of {a:,} ({100 * (u / a - 1):.0f} % over)" for c, u, a in over)
                + ". Use fewer --lanes (each lane adds a LIF datapath, a quantizer with "
                "2**state_bits - 1 comparators and a level table), fewer state bits, "
                "or a bigger device (ulx3s-85f).")
    if msg:
        raise DesignTooLarge(f"{msg} (logs in {failed})")
    raise BuildError(f"build failed (exit {returncode}); logs in {failed}:\n{detail}")


def _install(tmp: Path, out: Path) -> None:
    """Replace ``out`` by the finished build ``tmp`` (an older ``out`` removed last)."""
    old = out.parent / f".{out.name}.old-{os.getpid()}"
    if out.exists():
        out.rename(old)
    tmp.rename(out)
    if old.exists():
        shutil.rmtree(old)


def resolve_weights(net: IntNetwork, config: CoreConfig, board_name: str,
                    weights: str = "auto") -> tuple[CoreConfig, dict]:
    """``config`` with its weight storage decided for ``board_name`` by
    :func:`plan_weights` (``weights``: "auto", "bram" or "spram"), and the plan."""
    fit = plan_weights(net, config, get_board(board_name), weights)
    return config.replace(weight_storage=tuple(fit["storage"])), fit


def _report(net, board, device, top, config, model_info, baud, fit, synth_opts) -> dict:
    """The report's entries that describe what was built (not how it came out)."""
    geometry = top.bridge.core.geometry
    lanes = top.bridge.core.lanes
    return {
        "format": "qsnn-hw-synth-report", "version": 1,
        "board": board.name, "device": device, "family": board.family,
        "lanes": list(lanes) if len(set(lanes)) > 1 else lanes[0],
        "model": dict(model_info or {}, sizes=[net.n_in] + [la.n_out for la in net.layers]),
        "clock": {"board_mhz": board.board_mhz, "requested_mhz": top.clock_mhz,
                  "actual_mhz": top.actual_mhz, "pll": top.pll_info()},
        "uart": {"baud": baud, "divisor": top.divisor, "baud_error": top.baud_error},
        "core": config.to_dict(),
        "count_bits": config.count_bits,
        "quantizer": {"kind": config.quantizer, "latency": [g.latency for g in geometry]},
        "fifo_depth": [g.fifo_depth for g in geometry],
        "synth_opts": synth_opts or "",
        "weights": fit,
        "bitstream": board.fpga.bitstream,
    }


AUTO_BUILDS = 4     # --clock auto: the first build and up to three rebuilds
STEP_DOWN = 0.95    # after a rebuild that missed timing: at most this x its clock


def fastest_clock(board: Board, limit_mhz: float) -> float | None:
    """The fastest core clock (MHz) ``board`` can make at or below ``limit_mhz``: the
    highest output of its family's PLL (:func:`.pll.highest_output`), or the board clock
    itself (no PLL) when that is faster; None when both are above the limit."""
    family = board.fpga
    pll = _pll.highest_output(family.pll, board.board_mhz, limit_mhz, family.pll_mhz)
    made = [f for f in (pll, board.board_mhz) if f is not None and f <= limit_mhz]
    return max(made, default=None)


def next_clock(board: Board, attempts: list[dict], step: float = STEP_DOWN
               ) -> float | None:
    """The core clock (MHz) to build next when it is chosen automatically, or None when
    the choice is made. ``attempts``: the builds so far, first to last, each
    ``{"mhz": clock built, "fmax": achieved Fmax (None if nextpnr reported none),
    "pass": timing met}``.

    After the first build: the fastest clock the board makes at or below its Fmax. After
    a rebuild that met timing: none, it is the one. After a rebuild that missed (nextpnr's
    Fmax moves with the constraint it is given): the fastest at or below both its Fmax
    and ``step`` x its clock. Never a clock already built, nor one slower than a build
    that met timing."""
    last = attempts[-1]
    if last["fmax"] is None or (len(attempts) > 1 and last["pass"]):
        return None
    limit = last["fmax"] if len(attempts) == 1 else min(last["fmax"], step * last["mhz"])
    mhz = fastest_clock(board, limit)
    if mhz is None or any(abs(mhz - a["mhz"]) < 1e-6 or (a["pass"] and mhz < a["mhz"])
                          for a in attempts):
        return None
    return mhz


_YOSYS_PASS = re.compile(r"^\d+(?:\.\d+)?\. Executing (.+?)(?: \(.*\))?\.?\s*$")
# nextpnr's log lines that start a stage: (prefix after "Info: ", stage, milestone)
_NEXTPNR_STAGES = (
    ("Packing", "place and route: packing", True),
    ("Placed ", "place and route: placing", True),
    ("Creating initial analytic placement", "place and route: placing", True),
    ("Running main analytical placer", "place and route: placing (analytic)", False),
    ("Running simulated annealing placer", "place and route: placing (annealing)", False),
    ("Routing..", "place and route: routing", True),
    ("Routing complete", "place and route: timing analysis", False),
    ("Program finished normally", "bitstream: packing", True),
)


class _LogTail:
    """The whole lines appended to a file since the last call (a tool's log as it
    writes it)."""

    def __init__(self, path: Path):
        self.path, self.offset, self.partial = path, 0, b""

    def lines(self) -> list[str]:
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except OSError:
            return []
        self.offset += len(data)
        text = self.partial + data
        end = text.rfind(b"\n") + 1
        self.partial = text[end:]
        return text[:end].decode(errors="replace").splitlines()


def tool_stage(line: str, tool: str) -> tuple[str, bool] | None:
    """``(stage, milestone)`` a line of Yosys' (``tool="yosys"``) or nextpnr's log
    starts, or None: Yosys' pass headers down to the second level ("2.52. Executing
    ABC9 pass."), nextpnr's packing, placing and routing lines."""
    if tool == "yosys":
        m = _YOSYS_PASS.match(line)
        return (f"synthesis: {m.group(1)}", False) if m else None
    text = line.removeprefix("Info: ")
    for prefix, stage, milestone in _NEXTPNR_STAGES:
        if text.startswith(prefix):
            return stage, milestone
    return None


class _ToolWatch(qprogress.Watcher):
    """The build's stages on a progress bar, read from the tools' logs while they run
    (Yosys writes ``top.rpt``, nextpnr ``top.tim``; the logs stay in the build
    directory)."""

    def __init__(self, build_dir: Path, bar):
        super().__init__(bar, "synthesis (yosys)", "qsnn-build-watch")
        self.tails = [("yosys", _LogTail(build_dir / "top.rpt")),
                      ("nextpnr", _LogTail(build_dir / "top.tim"))]

    def poll(self) -> None:
        for tool, tail in self.tails:
            for line in tail.lines():
                found = tool_stage(line, tool)
                if found:
                    self.bar.stage(*found)


def _build(net, board, top, config, tmp: Path, out: Path, *, tools, fit, toolchain, seed,
           synth_opts, model_info, baud, log, bar=None) -> dict:
    """Run the tools for ``top`` in the new directory ``tmp`` and return the build's
    report (not yet written); a failed run is moved to ``<out>.failed`` and raised
    (:func:`_failed`)."""
    family = board.fpga
    if tmp.exists():
        shutil.rmtree(tmp)
    platform = board.platform()
    plan = platform.prepare(
        top, name="top",
        nextpnr_opts=f"--report nextpnr-report.json --seed {int(seed)} --timing-allow-fail",
        script_after_synth="tee -q -o yosys-stat.json stat -json",
        **({"synth_opts": synth_opts} if synth_opts else {}))
    plan.extract(str(tmp))
    env = dict(os.environ, **tools, OPENFPGALOADER="true")
    t0 = time.monotonic()
    if log:
        log(f"building {board.name} ({platform.device}) at {top.actual_mhz:g} MHz in "
            f"{tmp} (tool logs: build.log, top.rpt, top.tim) ...")
    # Ctrl-C: the tools stop with us
    with open(tmp / "build.log", "wb") as f, _ToolWatch(tmp, bar or qprogress.bar()):
        returncode = run_in_group(["sh", "build_top.sh"], cwd=tmp, env=env, stdout=f,
                                  stderr=subprocess.STDOUT)
    seconds = time.monotonic() - t0
    bit = tmp / family.bitstream
    if returncode != 0 or not bit.is_file() or not (tmp / "nextpnr-report.json").is_file():
        _failed(tmp, out, board, returncode)
    nextpnr = json.loads((tmp / "nextpnr-report.json").read_text())
    stat = None
    with contextlib.suppress(OSError, ValueError):
        stat = json.loads((tmp / "yosys-stat.json").read_text())
    resources, fmax, ok = parse_reports(nextpnr, stat, family, top.actual_mhz)
    return _report(net, board, platform.device, top, config, model_info, baud, fit,
                   synth_opts) | {
        "resources": resources, "fmax": fmax, "timing_pass": ok, "toolchain": toolchain,
        "seed": int(seed), "seconds": round(seconds, 1)}


def _attempt(report: dict) -> dict:
    """A build's entry in the report's ``clock.attempts``: its clock, the slowest
    clock's achieved Fmax and whether timing was met."""
    fmax = min((v["achieved_mhz"] for v in report["fmax"].values()), default=None)
    return {"mhz": report["clock"]["actual_mhz"], "fmax": fmax,
            "pass": report["timing_pass"], "seconds": report["seconds"]}


def _progress(n: int, attempt: dict, following: float | None) -> str:
    fmax = "none reported" if attempt["fmax"] is None else f"{attempt['fmax']:.1f} MHz"
    line = (f"clock auto: build {n} at {attempt['mhz']:g} MHz: Fmax {fmax}, timing "
            f"{'met' if attempt['pass'] else 'missed'}")
    return line + (f"; rebuilding at {following:g} MHz" if following else "")


def synthesize(net: IntNetwork, board_name: str, out_dir, config: CoreConfig | None = None,
               *, clock_mhz=None, toolchain: str = "yowasp", baud: int = DEFAULT_BAUD,
               seed: int = 1, model_info: dict | None = None, log=None,
               synth_opts: str | None = None, max_builds: int = AUTO_BUILDS,
               cycles: dict | None = None) -> dict:
    """Build a bitstream of ``net`` with the core ``config`` for ``board_name`` into
    ``out_dir`` and return the report (also written as ``report.json`` and
    ``report.md``; its ``"core"`` entry is ``config``, so ``qsnn-hw verify --config``
    simulates exactly this core). ``out_dir`` is replaced only by a complete build; a
    failed one is left in ``<out_dir>.failed`` for its logs. The weights must fit as
    ``config`` stores them (:func:`resolve_weights` decides "auto").

    ``clock_mhz``: the core clock (None: the board's default), or ``"auto"``: build at
    the board's default, then at the fastest clock the board makes within the achieved
    Fmax, stepping down while a rebuild misses timing (:func:`next_clock`, at most
    ``max_builds`` builds). ``out_dir`` gets the fastest build that met timing, else
    the last one; the report's ``clock.attempts`` lists every build.

    ``cycles``: ``{"per_sample": float, "source": str}``, the core's cycles per sample
    (simulated, or the cycle model's); the report's ``throughput`` then gives
    microseconds per sample at the clock built."""
    config = CoreConfig() if config is None else config
    board = get_board(board_name)
    auto = clock_mhz == "auto"
    if auto and (not isinstance(max_builds, int) or max_builds < 1):
        raise ValueError(f"max_builds must be an integer >= 1, got {max_builds!r}")
    tools = resolve_tools(board.fpga, toolchain)
    fit = plan_weights(net, config, board, "config")
    if synth_opts is None:
        synth_opts = board.fpga.synth_opts
    out = Path(out_dir).resolve()
    if out.exists() and not out.is_dir():   # _install would move the file away
        raise BuildError(f"out_dir {out} is a file, not a directory; nothing was built")
    out.parent.mkdir(parents=True, exist_ok=True)
    mhz = board.default_mhz if auto else clock_mhz
    dirs, reports, attempts = [], [], []     # per build: temporary directory, report
    try:
        while mhz is not None:
            n = f" build {len(dirs) + 1}" if auto else ""
            with qprogress.bar(None, f"synth {board.name}{n} at {mhz:g} MHz",
                               stage="elaborating (Amaranth)") as bar:
                top = BoardTop(net, board, config, clock_mhz=mhz, baud=baud)
                dirs.append(out.parent / f".{out.name}.build-{os.getpid()}-{len(dirs) + 1}")
                reports.append(_build(net, board, top, config, dirs[-1], out, tools=tools,
                                      fit=fit, toolchain=toolchain, seed=seed,
                                      synth_opts=synth_opts, model_info=model_info,
                                      baud=baud, log=log, bar=bar))
            attempts.append(_attempt(reports[-1]))
            mhz = next_clock(board, attempts) if auto and len(dirs) < max_builds else None
            if auto and log:
                log(_progress(len(attempts), attempts[-1], mhz))
        met = [i for i, a in enumerate(attempts) if a["pass"]]
        # none met: the last build, the slowest (each rebuild is below those that missed)
        chosen = max(met, key=lambda i: attempts[i]["mhz"]) if met else len(attempts) - 1
        report = reports[chosen]
        report["clock"] |= {"chosen": "auto" if auto else "fixed", "attempts": attempts}
        report["seconds"] = round(sum(a["seconds"] for a in attempts), 1)
        if cycles is not None:
            report["throughput"] = dict(cycles, us_per_sample=cycles["per_sample"]
                                        / report["clock"]["actual_mhz"])
        if auto and log:
            log(f"clock auto: {report['clock']['actual_mhz']:g} MHz (build {chosen + 1}), "
                + ("the fastest that met timing" if met else
                   "the slowest tried; no build met timing"))
        atomic_write_text(dirs[chosen] / "report.json",
                          json.dumps(report, indent=2, sort_keys=True) + "\n")
        atomic_write_text(dirs[chosen] / "report.md", markdown(report))
        _write_chart(report, dirs[chosen] / "report.png")
        _install(dirs[chosen], out)
    finally:   # the builds not installed (every one after an error or Ctrl-C)
        for tmp in dirs:
            shutil.rmtree(tmp, ignore_errors=True)
    return report
