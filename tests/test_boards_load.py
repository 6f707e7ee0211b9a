"""RAM weights loaded over the UART (CMD_WRITE / CMD_LOADED) in Amaranth's simulator: a
host model writes every weight word through the bridge's RX pin, then runs samples
against the golden model; a sample before loading is answered with the "weights not
loaded" status bit and computed with the empty (all-zero in simulation) weight RAM."""

import dataclasses
import re

import numpy as np
import pytest
from test_boards_bridge import SimulatedPort, read_bytes, send_byte, tx_monitor

from qsnn_hw.boards import protocol as P
from qsnn_hw.boards.bridge import UartBridge
from qsnn_hw.contract import IntNetwork
from qsnn_hw.golden import simulate
from qsnn_hw.hdl.config import CoreConfig
from qsnn_hw.hdl.sim_util import run_simulation
from qsnn_hw.testing import random_inputs, random_network

LIMIT = 300_000   # clock cycles to wait for a reply

pytestmark = pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")


def zero_weights(net, layers) -> IntNetwork:
    """``net`` with the weights of ``layers`` set to 0 (what an unloaded RAM holds in
    simulation)."""
    return dataclasses.replace(net, layers=[
        dataclasses.replace(la, weight=np.zeros_like(la.weight)) if i in layers else la
        for i, la in enumerate(net.layers)])


def hand_words(w, lanes) -> list[int]:
    """Packed words written out from the layout rule (word m*G + g, lane p = W[g*P+p, m],
    4-bit two's complement), independent of pack_weight_words."""
    n, m = w.shape
    g = -(-n // lanes)
    out = []
    for mi in range(m):
        for gi in range(g):
            word = 0
            for p in range(lanes):
                v = int(w[gi * lanes + p, mi]) if gi * lanes + p < n else 0
                word |= (v & 0xF) << (4 * p)
            out.append(word)
    return out


@pytest.mark.sim
@pytest.mark.parametrize("storage", [("spram", "ram"), ("spram", "rom")])
def test_load_weights_over_uart_then_samples_match_golden(storage):
    rng = np.random.default_rng(21)
    net = random_network(rng, sizes=[12, 9, 5], input_bits=1, weight_bits=4, state_bits=4)
    assert P.load_layout(net, CoreConfig()).layers == ()
    x = random_inputs(rng, net, 3, 3, density=0.3)
    gold = simulate(net, x)
    lanes = (3, 2)
    divisor = 4
    config = CoreConfig(lanes=lanes, count_bits=8, weight_storage=storage)
    bridge = UartBridge(net, config, divisor=divisor)
    ld = bridge.load
    ram = [i for i, s in enumerate(storage) if s != "rom"]
    assert ld.layers == tuple(ram)
    # 12 inputs x G=3 words of 3 x 4 bits (12 bits -> 2 bytes); 9 x G=3 words of 2 x 4
    assert ld.depths == (36, 27)[:len(ram)] and ld.word_bytes == 2
    words = {i: P.weight_words(net, config, i) for i in ram}
    for i in ram:
        assert words[i] == hand_words(net.layers[i].weight, lanes[i])
    fr = bridge.framing
    empty = simulate(zero_weights(net, ram), x[:1])
    got, log = [], []

    async def reply(ctx, n):
        return await read_bytes(ctx, got, n, LIMIT)

    async def send(ctx, data):
        for byte in data:
            await send_byte(ctx, bridge.rx, byte, divisor)

    async def host(ctx):
        ctx.set(bridge.rx, 1)
        await ctx.tick().repeat(3 * divisor)
        await send(ctx, [P.CMD_IDENT])
        log.append(("ident0", P.decode_ident(await reply(ctx, P.Framing.IDENT_BYTES))))
        # a sample before loading: answered, status bit 3, computed with empty RAM
        await send(ctx, P.encode_sample(net, x[0], fr))
        log.append(("early", P.decode_reply(await reply(ctx, fr.reply_bytes), fr)))
        for i in ram:            # two bursts per layer (a start address other than 0)
            half = len(words[i]) // 2
            for a, chunk in ((0, words[i][:half]), (half, words[i][half:])):
                await send(ctx, P.encode_weight_write(i, a, chunk, ld.word_bytes))
                log.append(("write", P.decode_ack(await reply(ctx, 2), P.CMD_WRITE)))
        # dropped: past the last layer's depth, and a ROM / missing layer
        last = ram[-1]
        await send(ctx, P.encode_weight_write(last, ld.depths[-1], [0xFFF], ld.word_bytes))
        log.append(("bad addr", P.decode_ack(await reply(ctx, 2), P.CMD_WRITE)))
        await send(ctx, P.encode_weight_write(7, 0, [1, 2], ld.word_bytes))
        log.append(("bad layer", P.decode_ack(await reply(ctx, 2), P.CMD_WRITE)))
        await send(ctx, P.encode_weight_write(ram[0], 0, [], ld.word_bytes))   # no words
        log.append(("empty", P.decode_ack(await reply(ctx, 2), P.CMD_WRITE)))
        await send(ctx, [P.CMD_LOADED])
        log.append(("loaded", P.decode_ack(await reply(ctx, 2), P.CMD_LOADED)))
        await send(ctx, [P.CMD_IDENT])
        log.append(("ident1", P.decode_ident(await reply(ctx, P.Framing.IDENT_BYTES))))
        for b in range(x.shape[0]):
            await send(ctx, P.encode_sample(net, x[b], fr))
            log.append(("sample", P.decode_reply(await reply(ctx, fr.reply_bytes),
                                                 fr)))
        # rewriting one word clears "loaded"; CMD_LOADED then counts 1 word: not loaded
        await send(ctx, P.encode_weight_write(ram[0], 0, words[ram[0]][:1], ld.word_bytes))
        log.append(("rewrite", P.decode_ack(await reply(ctx, 2), P.CMD_WRITE)))
        await send(ctx, [P.CMD_LOADED])
        log.append(("partial", P.decode_ack(await reply(ctx, 2), P.CMD_LOADED)))

    run_simulation(bridge, [host], [tx_monitor(bridge.tx, divisor, got)], name="bridge_load")
    d = dict((k, v) for k, v in log if k not in ("write", "sample"))
    assert d["ident0"] == {"model_id": P.model_id(net), "beat_bytes": fr.beat_bytes,
                           "n_out": net.n_out, "count_bytes": 1, "ram_weights": True,
                           "weights_loaded": False, "static_input": False,
                           "word_bytes": 2,
                           "load_words": sum(ld.depths)}
    early = d["early"]
    assert early.status == P.STATUS_NOT_LOADED
    assert early.prediction == empty.predictions[0]
    assert list(early.counts) == list(empty.counts[0])
    writes = [v for k, v in log if k == "write"]
    assert writes == [P.STATUS_NOT_LOADED] * 2 * len(ram)
    assert d["bad addr"] == d["bad layer"] == P.STATUS_NOT_LOADED | P.STATUS_WRITE_REJECTED
    assert d["empty"] == P.STATUS_NOT_LOADED      # the rejected flag is cleared by a reply
    assert d["loaded"] == 0
    assert d["ident1"]["weights_loaded"] is True
    samples = [v for k, v in log if k == "sample"]
    assert [r.status for r in samples] == [0] * x.shape[0]
    assert [r.prediction for r in samples] == list(gold.predictions)
    assert [list(r.counts) for r in samples] == [list(c) for c in gold.counts]
    assert d["rewrite"] == P.STATUS_NOT_LOADED
    assert d["partial"] == P.STATUS_NOT_LOADED
    assert not got, "unexpected extra bytes"


@pytest.mark.sim
def test_run_host_code_loads_weights_into_simulated_bridge():
    """``qsnn-hw run``'s BoardLink against the bridge RTL with SPRAM weights: identify says
    RAM weights (not loaded), load_weights writes and commits them in several bursts,
    then run_samples is bit-exact; wrong lanes are refused before anything is written."""
    from qsnn_hw.cli import UserError
    from qsnn_hw.commands.run import BoardLink, run_samples
    rng = np.random.default_rng(12)
    net = random_network(rng, sizes=[10, 6, 4], input_bits=1, weight_bits=4, state_bits=4)
    x = random_inputs(rng, net, 3, 4, density=0.25)
    storage = ["spram", "rom"]
    config = CoreConfig(lanes=(2, 2), count_bits=5, weight_storage=storage)
    bridge = UartBridge(net, config, divisor=4)
    link = BoardLink(SimulatedPort(bridge, 4), net)
    ident = link.identify()
    assert ident["ram_weights"] and not ident["weights_loaded"]
    assert ident["load_words"] == 10 * 3 and ident["word_bytes"] == 1
    with pytest.raises(UserError, match="expects 30 weight words"):
        link.load_weights(config.replace(lanes=(1, 2)))
    r = link.load_weights(config, burst=7)
    assert r["words"] == 30 and r["bytes"] == 5 * (1 + 7) + 30 + 1   # 5 headers, words, LOADED
    assert link.identify()["weights_loaded"]
    res = run_samples(link, x, simulate(net, x).predictions, clock_mhz=100.0)
    assert res["bit_exact"] and res["status"] == 0 and res["board_accuracy"] == 1.0


@pytest.mark.sim
def test_run_command_loads_weights_from_the_build_report(tmp_path, monkeypatch, capsys):
    """``qsnn-hw run`` on a (simulated) RAM-weight board: without --report it refuses
    (it cannot know the packing); with the build's report.json it loads, then runs."""
    import json

    import serial

    from qsnn_hw.artifact import Artifact, save_artifact
    from qsnn_hw.cli import main
    rng = np.random.default_rng(13)
    net = random_network(rng, sizes=[8, 5, 3], input_bits=1, weight_bits=4, state_bits=4)
    model = save_artifact(tmp_path / "m.qsnn", Artifact(net))
    storage = ["spram", "spram"]
    config = CoreConfig(lanes=(2, 3), count_bits=16, weight_storage=storage)
    report = tmp_path / "report.json"
    report.write_text(json.dumps({"lanes": [2, 3], "clock": {"actual_mhz": 12.0},
                                  "core": config.to_dict(),
                                  "weights": {"storage": storage}}))

    class Port(SimulatedPort):
        def __init__(self, *args, **kwargs):
            super().__init__(UartBridge(net, config, divisor=4), 4)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def reset_input_buffer(self):
            pass
    monkeypatch.setattr(serial, "Serial", Port)
    args = ["run", str(model), "--board", "icebreaker", "--port", "sim", "--samples", "2"]
    assert main(args) == 2
    assert "weights are in RAM and must be loaded: give --report" in capsys.readouterr().err
    assert main(args + ["--report", str(report)]) == 0
    out = capsys.readouterr().out
    # 8 inputs x ceil(5/2) words + 5 inputs x ceil(3/3) words
    assert "loaded 29 weight words" in out
    assert re.search(r"bit-exact\s+yes", out) and re.search(r"status flags\s+0x0\n", out)
