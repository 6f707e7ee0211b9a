"""``qsnn-hw prove``: prove formally that every layer's LIF datapath, as the core
configuration generates it (quantizer kind, input widths), computes the fixed-point
contract for every input: every stored state, fresh or not, every accumulated current and
bias within the contract's current bound (docs/verification.md, "What is proven, what is
simulated"). Yosys' built-in SAT solver; no simulator, no external solver.

Prints one line per layer with its outcome and time; on a failure, a counterexample in
contract terms (state, acc, bias, fresh; expected and got next state and spike). Exit
status 0 when every layer is proven, 1 on a counterexample, 2 on an error.

``--protocol`` (no MODEL) instead proves the stream protocol of a small spike-input
layer engine (3 inputs, 2 neurons, one lane) for ``--depth`` cycles from reset: the
valid/ready rules, no lost or duplicated event, end-of-timestep order and the error flag
(docs/verification.md). On a failure it prints the failing property, its cycle and the
beats until then."""

from __future__ import annotations

import json
import time
from pathlib import Path

from ..errors import UserError
from ..formal import ProofError, prove_network


def _describe_layer(net, i: int, proof) -> str:
    layer = net.layers[i]
    states = (f"{layer.state_bits}-bit codes, {proof.quantizer}" if layer.quantized
              else f"{layer.mem_bits}-bit membrane")
    return (f"layer {i} ({layer.n_in} -> {layer.n_out}, {states}, {layer.reset} reset, "
            f"latency {proof.latency})")


def run_protocol(args) -> int:
    from ..formal.protocol import prove_protocol

    def show(name, proven, seconds):
        if not args.json:
            print(f"  {name}: {'proven' if proven else 'FAILS'} in {seconds:.1f} s",
                  flush=True)

    if not args.json:
        print(f"prove the stream protocol of a 3 -> 2 spike-input engine, "
              f"{args.depth} cycles from reset", flush=True)
    try:
        res = prove_protocol(depth=args.depth, timeout=args.timeout, on_property=show)
    except ProofError as exc:
        raise UserError(str(exc)) from None
    f = res.failure
    if args.json:
        print(json.dumps({"protocol": True, "depth": res.depth, "config": res.config,
                          "ok": res.proven, "seconds": res.seconds,
                          "failure": None if f is None else {
                              "cycle": f.cycle, "properties": f.properties,
                              "trace": f.trace}}, indent=1))
    elif f is None:
        print(f"PROVEN: {len(res.seconds)} properties for {res.depth} cycles in "
              f"{res.total_seconds:.1f} s")
    else:
        print(f"FAILED: {f.describe()}")
        for line in f.beats().splitlines():
            print(f"    {line}")
    return 0 if res.proven else 1


def run(args) -> int:
    from ..artifact import load_artifact
    from ..formal.datapath import find_yosys
    from ..progress import bar, echo
    from ._core import core_config
    try:
        find_yosys()                  # a missing Yosys: one line, before any work
    except ProofError as exc:
        raise UserError(str(exc)) from None
    if args.protocol:
        if args.model is not None:
            raise UserError("--protocol proves a built-in engine; it takes no MODEL")
        return run_protocol(args)
    if args.model is None:
        raise UserError("prove needs a MODEL (or --protocol)")
    model = Path(args.model)
    if not model.exists():
        raise UserError(f"artifact {model} does not exist")
    net = load_artifact(model).network
    config = core_config(args, net)
    print(f"prove {model} ({config.describe()}): {len(net.layers)} layer(s)", flush=True)
    shown = bar(len(net.layers), "prove", "layers", stage="layer 0")

    def show(proof):
        shown.update()
        if proof.layer + 1 < len(net.layers):
            shown.stage(f"layer {proof.layer + 1}")
        if args.json:
            return
        head = _describe_layer(net, proof.layer, proof)
        if proof.proven:
            echo(f"  {head}: proven in {proof.seconds:.1f} s")
        else:
            echo(f"  {head}: COUNTEREXAMPLE after {proof.seconds:.1f} s")
            echo(f"    {proof.counterexample.describe(net.layers[proof.layer])}")

    t0 = time.perf_counter()
    try:
        with shown:
            proofs = prove_network(net, config, on_layer=show, timeout=args.timeout)
    except ProofError as exc:
        raise UserError(str(exc)) from None
    ok = all(p.proven for p in proofs)
    wall = time.perf_counter() - t0
    if args.json:
        print(json.dumps({
            "model": str(model), "core": config.to_dict(), "ok": ok, "wall_s": wall,
            "layers": [{"layer": p.layer, "proven": p.proven, "seconds": p.seconds,
                        "latency": p.latency, "quantizer": p.quantizer,
                        "counterexample": None if p.counterexample is None else {
                            "state": p.counterexample.state, "fresh": p.counterexample.fresh,
                            "acc": p.counterexample.acc, "bias": p.counterexample.bias,
                            "expected": list(p.counterexample.expected),
                            "got": list(p.counterexample.got)}}
                       for p in proofs]}, indent=1))
    else:
        print(f"{'PROVEN' if ok else 'FAILED'}: {sum(p.proven for p in proofs)} of "
              f"{len(proofs)} layer(s) in {wall:.1f} s")
    return 0 if ok else 1


def register(sub) -> None:
    from ..formal.protocol import DEFAULT_DEPTH
    from ._args import add_quiet, float_range, int_range
    from ._core import add_core_options
    p = sub.add_parser("prove", help="prove formally that each layer's datapath computes "
                       "the contract for every input", description=__doc__)
    p.add_argument("model", metavar="MODEL", nargs="?", help="artifact file (.qsnn)")
    p.add_argument("--protocol", action="store_true",
                   help="prove the stream protocol of a small built-in layer engine "
                        "instead (no MODEL)")
    p.add_argument("--depth", type=int_range(8, 60), default=DEFAULT_DEPTH,
                   help=f"--protocol: cycles from reset (default {DEFAULT_DEPTH})")
    p.add_argument("--timeout", type=float_range(0.0, None, lo_open=True), default=None,
                   help="give up on a layer after this many seconds (exit 2; default: none)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    add_quiet(p)
    add_core_options(p)
    p.set_defaults(func=run)
