# amaranth: UnusedElaboratable=no
"""Bounded proof of the stream protocol of a small layer engine (qsnn_hw.formal.protocol,
``qsnn-hw prove --protocol``): the unmodified engine is proven for the default depth, the
witnesses show the depth reaches a whole sample, and engines with one deliberate fault
fail with the property and cycle that catch them (docs/verification.md, "What is proven,
what is simulated")."""

import json

import pytest
from amaranth.hdl import Signal

from qsnn_hw.cli import main
from qsnn_hw.formal.protocol import (
    DEFAULT_DEPTH,
    PROPERTIES,
    ProtocolProof,
    prove_protocol,
)
from qsnn_hw.hdl.engine import LayerEngine
from qsnn_hw.hdl.frontend import SpikeFrontEnd

pytestmark = [pytest.mark.formal,
              pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")]


def test_engine_protocol_is_proven():
    res = prove_protocol()
    assert res.proven, res.failure and (res.failure.describe() + "\n" + res.failure.beats())
    assert list(res.seconds) == list(PROPERTIES) and res.depth == DEFAULT_DEPTH
    assert res.config["n_in"] == 3 and res.config["groups"] == 2


@pytest.mark.parametrize("witness,latest", [("eot", DEFAULT_DEPTH - 1),
                                            ("last", DEFAULT_DEPTH - 1), ("error", 4)])
def test_the_depth_reaches_a_whole_sample(witness, latest):
    """Not vacuous: within the depth an end-of-timestep word, a sample's last word and
    the error flag are reachable (a property saying they never happen fails)."""
    # the solver returns some model, not the earliest: the depth bounds the cycle
    res = prove_protocol(witness=witness, depth=latest + 1)
    assert not res.proven and res.failure.properties == ["witness"]
    assert res.failure.cycle <= latest
    rows = res.failure.trace
    if witness == "last":   # an input eot with last was accepted before the output's
        assert any(r["in_valid"] and r["in_ready"] and r["in_eot"] and r["in_last"]
                   for r in rows[:-1])


def test_harness_validation():
    with pytest.raises(ValueError, match="unknown properties"):
        ProtocolProof(properties=("bogus",))
    with pytest.raises(ValueError, match="witness must be"):
        ProtocolProof(witness="bogus")


# ---- mutants: one fault each, built by subclassing; the proof must fail --------------
class KeepsBadAddress(SpikeFrontEnd):
    """An address >= M is taken as an event (not dropped)."""

    def decode(self, m, cur, cur_valid, cur_done, error_set):
        ev = self.event
        bad = ~cur.eot & cur.last
        m.d.comb += [
            ev.valid.eq(cur_valid & ~bad), ev.eot.eq(cur.eot), ev.last.eq(cur.last),
            ev.m.eq(cur.addr), ev.x.eq(1), cur_done.eq(bad | ev.take),
            error_set.eq(cur_valid & (bad | (~cur.eot & (cur.addr >= self.n_in)))),
        ]


class NeverFlags(SpikeFrontEnd):
    """Invalid beats are dropped but the error flag is never set."""

    def decode(self, m, cur, cur_valid, cur_done, error_set):
        super().decode(m, cur, cur_valid, cur_done, Signal())


class FlagsTheLastEot(SpikeFrontEnd):
    """The error flag also rises on a (valid) eot beat with last."""

    def decode(self, m, cur, cur_valid, cur_done, error_set):
        inner = Signal()
        super().decode(m, cur, cur_valid, cur_done, inner)
        m.d.comb += error_set.eq(inner | (cur_valid & cur.eot & cur.last))


class DropsEot(SpikeFrontEnd):
    """An end of timestep without last is consumed without an event (ignored)."""

    def decode(self, m, cur, cur_valid, cur_done, error_set):
        ev = self.event
        bad = ~cur.eot & (cur.last | (cur.addr >= self.n_in))
        skip = cur.eot & ~cur.last
        m.d.comb += [
            ev.valid.eq(cur_valid & ~bad & ~skip), ev.eot.eq(cur.eot),
            ev.last.eq(cur.last), ev.m.eq(cur.addr), ev.x.eq(1),
            cur_done.eq(bad | skip | ev.take), error_set.eq(cur_valid & bad),
        ]


class LosesLast(SpikeFrontEnd):
    """The sample's last end of timestep reaches the engine without its last bit."""

    def decode(self, m, cur, cur_valid, cur_done, error_set):
        super().decode(m, cur, cur_valid, cur_done, error_set)
        m.d.comb += self.event.last.eq(0)


def engine_with(frontend):
    def build(layer, **kw):
        engine = LayerEngine(layer, **kw)
        engine.frontend = frontend(layer.n_in)
        return engine
    return build


# mutant: (front end, the property expected to catch it)
MUTANTS = {
    "keeps_bad_address": (KeepsBadAddress, "event_order"),
    "never_flags": (NeverFlags, "error_before_next_event"),
    "flags_the_last_eot": (FlagsTheLastEot, "error_only_after_invalid"),
    # a dropped end of timestep stays at the head of the shadow queue: the next event
    # taken is out of order, or, if more beats arrive first, the queue passes the skid
    # buffer's two beats (which comes first depends on when the update takes events)
    "drops_eot": (DropsEot, ("event_order", "buffer_bound")),
    "loses_last": (LosesLast, "event_order"),
}


@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_mutant_fails_the_proof(name):
    frontend, caught_by = MUTANTS[name]
    caught_by = (caught_by,) if isinstance(caught_by, str) else caught_by
    res = prove_protocol(engine=engine_with(frontend))
    assert not res.proven
    f = res.failure
    assert set(caught_by) & set(f.properties), f.describe()
    assert 0 <= f.cycle < DEFAULT_DEPTH and f.trace[-1]["cycle"] == f.cycle
    assert f.describe().startswith(f"cycle {f.cycle}: ")
    assert any(p in f.describe() for p in caught_by)
    accepted = [r for r in f.trace if r["in_valid"] and r["in_ready"]]
    if name == "keeps_bad_address":
        assert any(r["in_addr"] == 3 and not r["in_eot"] for r in accepted)
    if name in ("never_flags", "flags_the_last_eot"):
        assert not any(r["error"] for r in f.trace[:-1]) or name == "flags_the_last_eot"
    if name == "flags_the_last_eot":
        assert any(r["in_eot"] and r["in_last"] for r in accepted)
    if name == "loses_last":
        assert any(r["in_eot"] and r["in_last"] for r in accepted)
    if name == "drops_eot":        # an end of timestep without last was accepted
        assert any(r["in_eot"] and not r["in_last"] for r in accepted)


# ---- the command ------------------------------------------------------------------------
def test_prove_protocol_command(capsys):
    assert main(["prove", "--protocol", "--depth", "16"]) == 0
    out = capsys.readouterr().out
    assert "16 cycles from reset" in out
    assert all(f"  {p}: proven in " in out for p in PROPERTIES)
    assert f"PROVEN: {len(PROPERTIES)} properties for 16 cycles" in out


def test_prove_protocol_command_reports_a_failure(monkeypatch, capsys):
    import functools

    import qsnn_hw.formal.protocol as protocol
    monkeypatch.setattr(protocol, "prove_protocol",
                        functools.partial(protocol.prove_protocol,
                                          engine=engine_with(KeepsBadAddress)))
    assert main(["prove", "--protocol", "--depth", "16", "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] is False and "event_order" in doc["failure"]["properties"]
    assert doc["failure"]["trace"][-1]["cycle"] == doc["failure"]["cycle"]


def test_prove_protocol_command_errors(tmp_path, capsys):
    assert main(["prove", "--protocol", str(tmp_path / "x.qsnn")]) == 2
    assert "takes no MODEL" in capsys.readouterr().err
    assert main(["prove"]) == 2
    assert "needs a MODEL" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["prove", "--protocol", "--depth", "4"])
    assert exc.value.code == 2
