"""``qsnn-hw run``: send test samples to a board built by ``qsnn-hw synth`` over its UART
(pyserial) and report accuracy, latency per sample and agreement with the golden model.

Samples are the artifact's test set, encoded as the trainer evaluated it (random inputs
for artifacts without a dataset). The board first answers an identify request; a model
mismatch (the board runs another bitstream) is an error. A board built with RAM weights
(``qsnn-hw synth --weights auto|spram``: the identity says so) gets its weights over the
UART first, packed with the lanes and per-layer storage of the build's ``report.json``
(``--report``); it keeps them until reset, so a loaded board is not reloaded unless
``--reload-weights``. Latency is reported twice: the
core's own cycle count (start to result, measured on the board) converted with the
clock from the build report, and the host's round trip (dominated by the UART).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from ..artifact import load_artifact
from ..errors import UserError
from ..hdl.config import CoreConfig


class BoardLink:
    """The host end of the bridge protocol over any object with ``write``/``read``
    (a ``serial.Serial``, or a fake in tests)."""

    def __init__(self, port, net, count_bits: int = 16):
        from ..boards import protocol as P
        self.P = P
        self.port = port
        self.net = net
        self.framing = P.framing(net, count_bits)
        self.ident = None

    def _send(self, frame: bytes) -> None:
        """Write one whole frame. Ctrl-C waits until it is out: a frame cut short would
        leave the board waiting for the rest, reading the next run's requests as data."""
        from .._io import signals_deferred
        with signals_deferred():
            self.port.write(frame)

    def _read(self, n: int) -> bytes:
        data = self.port.read(n)
        if len(data) != n:
            raise UserError(f"board sent {len(data)} of {n} expected bytes before the timeout "
                            f"(wrong --port or --baud, board not programmed, or another "
                            f"model's bitstream?)")
        return data

    def identify(self) -> dict:
        P = self.P
        self._send(bytes([P.CMD_IDENT]))
        ident = P.decode_ident(self._read(P.Framing.IDENT_BYTES))
        want = P.model_id(self.net)
        if ident["model_id"] != want:
            raise UserError(f"the board runs model id {ident['model_id']:08x}, this artifact is "
                            f"{want:08x}: build and program it with `qsnn-hw synth`")
        if ident["n_out"] != self.net.n_out or ident["beat_bytes"] != self.framing.beat_bytes:
            raise UserError(f"the board's framing {ident} does not match this model")
        # counters are sent as whole bytes, and a static-input core takes each sample's
        # input once: the board says both
        self.framing = P.Framing(self.framing.beat_bits, self.framing.eot_bit,
                                 self.framing.last_bit, self.framing.n_out,
                                 8 * ident["count_bytes"], ident["static_input"])
        self.ident = ident
        return ident

    def load_weights(self, config, burst: int = 1024) -> dict:
        """Write the RAM layers' weights (``CMD_WRITE`` bursts of ``burst`` words, each
        acknowledged) and commit them (``CMD_LOADED``). ``config``: the build's
        CoreConfig (its lanes and per-layer storage); call :meth:`identify` first."""
        P = self.P
        if self.ident is None:
            self.identify()
        layout = P.load_layout(self.net, config)
        if (layout.total_words, layout.word_bytes) != (self.ident["load_words"],
                                                       self.ident["word_bytes"]):
            raise UserError(
                f"the board expects {self.ident['load_words']:,} weight words of "
                f"{self.ident['word_bytes']} bytes, the core {config.describe()} gives "
                f"{layout.total_words:,} of {layout.word_bytes}: use the report.json of "
                f"the build that is on the board")
        t0, sent = time.perf_counter(), 0
        for layer in layout.layers:
            words = P.weight_words(self.net, config, layer)
            for a in range(0, len(words), burst):
                data = P.encode_weight_write(layer, a, words[a:a + burst], layout.word_bytes)
                self._send(data)
                sent += len(data)
                status = P.decode_ack(self._read(2), P.CMD_WRITE)
                if status & ~P.STATUS_NOT_LOADED:
                    raise UserError(f"weight write to layer {layer} at {a} failed: board "
                                    f"status {status:#x} (1: core error, 2: receive "
                                    f"overflow, 4: framing, 16: write rejected)")
        self._send(bytes([P.CMD_LOADED]))
        sent += 1
        status = P.decode_ack(self._read(2), P.CMD_LOADED)
        if status & P.STATUS_NOT_LOADED:
            raise UserError(f"the board did not accept the weights as complete (status "
                            f"{status:#x}): it counted a different number of words")
        self.ident = dict(self.ident, weights_loaded=True)
        return {"words": layout.total_words, "bytes": sent,
                "seconds": time.perf_counter() - t0}

    def infer(self, xs: np.ndarray):
        P = self.P
        self._send(P.encode_sample(self.net, xs, self.framing))
        return P.decode_reply(self._read(self.framing.reply_bytes), self.framing)


def run_samples(link: BoardLink, x: np.ndarray, labels, clock_mhz: float) -> dict:
    from ..golden import simulate
    from ..progress import bar
    gold = simulate(link.net, x)
    preds, counts, cycles, rtt, status = [], [], [], [], 0
    with bar(x.shape[0], "run on the board", "samples") as shown:
        for b in range(x.shape[0]):
            t0 = time.perf_counter()
            r = link.infer(x[b])
            rtt.append(time.perf_counter() - t0)
            preds.append(r.prediction)
            counts.append(r.counts)
            cycles.append(r.cycles)
            status |= r.status
            shown.update()
    preds, counts, cycles = np.array(preds), np.array(counts), np.array(cycles)
    out = {
        "samples": int(x.shape[0]),
        "prediction_agreement": float(np.mean(preds == gold.predictions)),
        "count_agreement": float(np.mean(np.all(counts == gold.counts, axis=1))),
        "bit_exact": bool(np.array_equal(counts, gold.counts)
                          and np.array_equal(preds, gold.predictions)),
        "cycles_mean": float(cycles.mean()), "cycles_max": int(cycles.max()),
        "core_us_mean": float(cycles.mean() / clock_mhz), "clock_mhz": clock_mhz,
        "round_trip_ms_mean": float(1e3 * np.mean(rtt)),
        "status": status,
    }
    if labels is not None:
        out["board_accuracy"] = float(np.mean(preds == labels))
        out["golden_accuracy"] = float(np.mean(gold.predictions == labels))
    return out


def format_result(r: dict) -> str:
    rows = [("samples", r["samples"])]
    if "board_accuracy" in r:
        rows += [("board accuracy", f"{r['board_accuracy']:.2%}"),
                 ("golden accuracy", f"{r['golden_accuracy']:.2%}")]
    rows += [("prediction agreement with golden", f"{r['prediction_agreement']:.2%}"),
             ("spike-count agreement with golden", f"{r['count_agreement']:.2%}"),
             ("bit-exact", "yes" if r["bit_exact"] else "NO"),
             ("core cycles / sample (mean, max)", f"{r['cycles_mean']:.0f}, {r['cycles_max']}"),
             ("core latency / sample", f"{r['core_us_mean']:.1f} us at {r['clock_mhz']:g} MHz"),
             ("host round trip / sample", f"{r['round_trip_ms_mean']:.2f} ms"),
             ("board status flags", f"{r['status']:#x}" + (" (error!)" if r["status"] else ""))]
    w = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{w}}  {v}" for k, v in rows)


def run_on_board(art, board_name: str, port_name: str, *, samples: int = 100,
                 baud: int = 115200, timeout: float = 5.0, report: dict | None = None,
                 clock: float | None = None, reload_weights: bool = False,
                 report_name: str = "the report", log=print) -> dict:
    """Run ``samples`` test samples of artifact ``art`` on the board at ``port_name``
    (loading RAM weights first, with the core configuration of the build ``report``);
    returns :func:`run_samples`' result. ``clock`` (MHz) defaults to the report's, then
    the board's."""
    from ..boards.boards import get_board
    from ..boards.samples import test_samples
    try:
        board = get_board(board_name)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    if clock is None and report:
        clock = report["clock"]["actual_mhz"]
    clock = clock or board.default_mhz
    from .._extras import need
    serial = need("serial")
    x, labels, what = test_samples(art, samples)
    try:
        port = serial.Serial(port_name, baud, timeout=timeout)
    except serial.SerialException as exc:
        raise UserError(f"cannot open {port_name}: {exc}") from None
    with port:
        port.reset_input_buffer()
        link = BoardLink(port, art.network)
        ident = link.identify()
        if ident["ram_weights"] and (reload_weights or not ident["weights_loaded"]):
            if report is None or "core" not in report:
                raise UserError("the board's weights are in RAM and must be loaded: give "
                                "--report BUILD/report.json (its core configuration says "
                                "the lanes and which layers are in RAM)")
            try:
                config = CoreConfig.from_dict(report["core"]).check(art.network)
            except (TypeError, ValueError) as exc:
                raise UserError(f"{report_name}: {exc}") from None
            r = link.load_weights(config)
            log(f"loaded {r['words']:,} weight words ({r['bytes']:,} bytes) in "
                f"{r['seconds']:.1f} s")
        log(f"{board.name} on {port_name}: running {x.shape[0]} samples ({what})")
        return run_samples(link, x, labels, clock)


def run(args) -> int:
    model = Path(args.model)
    if not model.exists():
        raise UserError(f"artifact {model} does not exist")
    art = load_artifact(model)
    report = json.loads(Path(args.report).read_text()) if args.report else None
    result = run_on_board(art, args.board, args.port, samples=args.samples, baud=args.baud,
                          timeout=args.timeout, report=report, clock=args.clock,
                          reload_weights=args.reload_weights,
                          report_name=f"--report {args.report}")
    print(format_result(result))
    return 0 if result["bit_exact"] and not result["status"] else 1


def register(sub) -> None:
    from ..boards.boards import BOARDS
    from ._args import add_quiet, float_range, int_range
    p = sub.add_parser("run", help="run test samples on a board over its UART",
                       description=__doc__)
    p.add_argument("model", metavar="MODEL", help="artifact file (.qsnn) the board was built from")
    p.add_argument("--board", required=True, choices=list(BOARDS), metavar="BOARD",
                   help=" | ".join(BOARDS))
    p.add_argument("--port", required=True, help="serial device, e.g. /dev/ttyUSB1")
    p.add_argument("--baud", type=int_range(1200, 3_000_000), default=115200,
                   help="UART baud rate the board was built with (synth --baud), 1200..3000000")
    p.add_argument("--samples", type=int_range(1, 1_000_000), default=100,
                   help="number of test samples (default 100)")
    p.add_argument("--report", default=None,
                   help="the build's report.json (for the clock, and the lanes and weight "
                        "storage of a RAM-weight build; else --clock or the board's default)")
    p.add_argument("--clock", type=float_range(1, 500), default=None,
                   help="core clock in MHz, to convert cycles to microseconds")
    p.add_argument("--timeout", type=float_range(0, 600, lo_open=True), default=5.0,
                   help="seconds to wait for a reply")
    p.add_argument("--reload-weights", action="store_true",
                   help="RAM-weight builds: load the weights even if the board says they "
                        "are loaded")
    add_quiet(p)
    p.set_defaults(func=run)
