"""Host side of ``qsnn-hw run`` against a software board: a fake serial port that
answers the protocol from its own byte-level decoding and the golden model (the gateware
side is proven in tests/test_boards_bridge.py)."""

import numpy as np
import pytest

from qsnn_hw.boards import protocol as P
from qsnn_hw.cli import UserError
from qsnn_hw.commands.run import BoardLink, format_result, run_samples
from qsnn_hw.golden import simulate
from qsnn_hw.testing import random_inputs, random_network


class FakeBoard:
    """Decodes host bytes as the bridge does (command, beats of ``beat_bytes``) and
    replies with golden results; ``corrupt`` flips the prediction of sample k."""

    def __init__(self, net, steps, model_id=None, corrupt=None):
        self.net, self.steps = net, steps
        self.model_id = P.model_id(net) if model_id is None else model_id
        self.corrupt = corrupt
        self.out = bytearray()
        self.n = 0
        addr_bits = max(1, (net.n_in - 1).bit_length())
        self.addr_bits, self.nbytes = addr_bits, (addr_bits + 2 + 7) // 8

    def write(self, data: bytes):
        if data[0] == P.CMD_IDENT:
            self.out += bytes([P.CMD_IDENT]) + self.model_id.to_bytes(4, "little") + \
                bytes([self.nbytes]) + self.net.n_out.to_bytes(2, "little") + bytes([2]) + \
                bytes([P.WEIGHTS_LOADED, 0, 0, 0, 0])   # ROM weights
            return
        assert data[0] == P.CMD_SAMPLE
        x = np.zeros((1, self.steps, self.net.n_in), np.int64)
        t = 0
        for k in range(1, len(data), self.nbytes):
            beat = int.from_bytes(data[k:k + self.nbytes], "little")
            if beat >> self.addr_bits & 1:
                t += 1
            else:
                x[0, t, beat & ((1 << self.addr_bits) - 1)] = 1
        assert t == self.steps
        g = simulate(self.net, x)
        pred = int(g.predictions[0])
        if self.corrupt == self.n:
            pred = (pred + 1) % self.net.n_out
        self.n += 1
        self.out += bytes([P.REPLY_SAMPLE, 0, pred])
        for c in g.counts[0]:
            self.out += int(c).to_bytes(2, "little")
        self.out += (1000 + self.n).to_bytes(4, "little")

    def read(self, n):
        data, self.out = bytes(self.out[:n]), self.out[n:]
        return data


def _net_and_inputs():
    rng = np.random.default_rng(5)
    net = random_network(rng, sizes=[20, 8, 4], input_bits=1, state_bits=4)
    return net, random_inputs(rng, net, 6, 5, density=0.3)


def test_run_samples_agree_with_golden():
    net, x = _net_and_inputs()
    labels = simulate(net, x).predictions.copy()
    labels[0] = (labels[0] + 1) % net.n_out          # one label the model gets wrong
    link = BoardLink(FakeBoard(net, x.shape[1]), net)
    assert link.identify()["n_out"] == net.n_out
    r = run_samples(link, x, labels, clock_mhz=10.0)
    assert r["bit_exact"] and r["prediction_agreement"] == 1.0
    assert r["board_accuracy"] == pytest.approx(5 / 6)
    assert r["cycles_mean"] == pytest.approx(1000 + 3.5)       # 1001..1006
    assert r["core_us_mean"] == pytest.approx(100.35)
    assert "bit-exact" in format_result(r)


def test_run_detects_disagreement_and_wrong_model():
    net, x = _net_and_inputs()
    r = run_samples(BoardLink(FakeBoard(net, x.shape[1], corrupt=2), net), x, None, 10.0)
    assert not r["bit_exact"]
    assert r["prediction_agreement"] == pytest.approx(5 / 6)
    with pytest.raises(UserError, match="model id"):
        BoardLink(FakeBoard(net, x.shape[1], model_id=1), net).identify()


def test_run_timeout_message():
    net, _ = _net_and_inputs()

    class Silent:
        def write(self, data):
            pass

        def read(self, n):
            return b""
    with pytest.raises(UserError, match="before the timeout"):
        BoardLink(Silent(), net).identify()


def test_ctrl_c_waits_until_the_sample_frame_is_sent():
    """Ctrl-C arriving while a sample's frame is being written is raised only after the
    whole frame is out, so the board is never left waiting for the rest of a frame."""
    import os
    import signal

    net, x = _net_and_inputs()

    class InterruptedPort(FakeBoard):
        def __init__(self, *a):
            super().__init__(*a)
            self.sent = []

        def write(self, data):
            if data[0] == P.CMD_SAMPLE:    # Ctrl-C after the first half of the frame
                half = len(data) // 2
                self.sent.append(data[:half])
                os.kill(os.getpid(), signal.SIGINT)
                self.sent.append(data[half:])
            super().write(data)

    port = InterruptedPort(net, x.shape[1])
    link = BoardLink(port, net)
    link.identify()
    with pytest.raises(KeyboardInterrupt):
        link.infer(x[0])
    assert b"".join(port.sent) == P.encode_sample(net, x[0], link.framing)
    assert port.n == 1     # the board decoded one whole sample
