"""Mutation check of the gateware tests: each mutant is a deliberate one-line fault in
``qsnn_hw/hdl``, applied to a copy of the package; the fast tests of
``tests/test_hdl_top.py`` chosen for it must fail on the copy, and all of them must pass
on an unmutated copy (so a mutant is caught by its fault, not by the copy).

A test id reads ``<mutant>--<test that catches it>[--<another>]`` (the table is in
docs/verification.md, "Reliability: gateware tests"). Run it with
``pytest tests/test_mutants.py`` (about 30 s on one core).
"""

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = [pytest.mark.sim, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Mutant:
    """``old`` -> ``new`` in ``qsnn_hw/hdl/<file>`` (``old`` must occur exactly once);
    ``tests``: node ids that must fail, in tests/test_hdl_top.py unless they name their
    file (``test_hdl_conv.py::...``)."""

    name: str
    file: str
    old: str
    new: str
    tests: tuple


INVALID = "test_invalid_beat_is_dropped_and_flagged"
CONV = "test_hdl_conv.py::"
TAWQ = "test_hdl_tawq.py::"
MUTANTS = [
    Mutant("address_ge_M_not_flagged", "frontend.py",
           "error_set.eq(cur_valid & bad),",
           "error_set.eq(cur_valid & bad & (cur.last | self.loaded)),",
           (f"{INVALID}[address_ge_M-spike-streamed]",)),
    Mutant("short_timestep_not_flagged", "frontend.py",
           "| (ev.take & ev.eot & ~idx_full & ~self.loaded)),",
           "),",
           (f"{INVALID}[short_timestep-direct-streamed]",)),
    Mutant("skipped_zero_takes_no_position", "frontend.py",
           "value_done = (ev.take & ~ev.eot) | skip",
           "value_done = ev.take & ~ev.eot",
           (f"{INVALID}[value_beyond_M-direct-streamed]",)),
    Mutant("static_reuse_clears_the_bank", "engine.py",
           "upd.step_clear.eq(ev.last if self.geometry.static else 1),",
           "upd.step_clear.eq(1),",
           (f"{INVALID}[input_after_first_eot-spike-static]",)),
    Mutant("top_clip_removed", "lif.py",
           "u = Mux(v < L.mem_lo, L.mem_lo, Mux(v > L.mem_hi, L.mem_hi, v))",
           "u = Mux(v < L.mem_lo, L.mem_lo, v)",
           ("test_saturation_at_both_ends[spikes-unquantized-first]",)),
    Mutant("zero_reset_keeps_the_current", "lif.py",
           "m.d.sync += v.eq(Mux(z_prev_r, 0, leak + current_r))",
           "m.d.sync += v.eq(Mux(z_prev_r, current_r, leak + current_r))",
           ("test_saturation_at_both_ends[spikes-unquantized-first]",)),
    Mutant("new_sample_keeps_the_membrane", "lif.py",
           "u_prev = Mux(fresh, 0, state)",
           "u_prev = state",
           (f"{INVALID}[address_ge_M-spike-streamed]",)),
    Mutant("no_forwarding_at_distance_G", "accumulate.py",
           "if d >= reuse_distance",
           "if d > reuse_distance",
           ("test_accumulator_forwarding[0.0-1]",)),
    Mutant("dense_run_one_word_long", "addressing.py",
           "g_last.eq(g == G - 2)",
           "g_last.eq(g == G - 1)",
           ("test_accumulator_forwarding[0.0-2]",)),
    Mutant("argmax_tie_to_highest_index", "top.py",
           "(cmp_cnt > best_cnt)",
           "(cmp_cnt >= best_cnt)",
           ("test_count_ties_go_to_the_lowest_index",)),
    # the convolution engine (tests/test_hdl_conv.py)
    Mutant("conv_bias_read_by_group", "update.py",
           "m.d.comb += self.biases.r_addr.eq(bcg)",
           "m.d.comb += self.biases.r_addr.eq(ug)",
           (f"{CONV}test_random_conv_networks_bit_exact[3]",)),
    Mutant("conv_single_issue_not_free", "conv.py",
           'free = ~busy | Mux(first, f["single"], last_r)',
           'free = ~busy | Mux(first, f["none"], last_r)',
           (f"{CONV}test_addressing_issues_every_valid_tap_once_back_to_back[0]",)),
    Mutant("conv_kernel_column_step_wrong", "conv.py",
           "a.eq(c_a - (2 * CG - 1))",
           "a.eq(c_a - (2 * CG - 2))",
           (f"{CONV}test_addressing_issues_every_valid_tap_once_back_to_back[3]",)),
    Mutant("pool_emits_after_the_first_window_row", "update.py",
           "last_pos = (dx == k - 1) & (dy == k - 1)",
           "last_pos = (dx == k - 1) & (dy == 0)",
           (f"{CONV}test_random_conv_networks_bit_exact[4]",)),
    # TaWQ layers (tests/test_hdl_tawq.py)
    Mutant("tawq_multipliers_of_step_0", "update.py",
           "m.d.sync += base.eq(p_t * CG)",
           "m.d.sync += base.eq(0)",
           (f"{TAWQ}test_hand_network_bit_exact[varying]",)),
    Mutant("tawq_scale_truncates", "lif.py",
           "half = (1 << (L.tawq_shift - 1)) if L.tawq_shift else 0",
           "half = 0",
           (f"{TAWQ}test_random_tawq_cores_bit_exact[0]",)),
    Mutant("tawq_table_column_one_step_late", "accumulate.py",
           "m.d.sync += col_r.eq(Array(Const(v, 2 * n_codes) for v in cols)[self.step])",
           "m.d.sync += col_r.eq(Array(Const(v, 2 * n_codes) for v in cols)[self.step - 1])",
           (f"{TAWQ}test_hand_network_bit_exact[constant]",)),
    Mutant("tawq_wrong_step_count_not_flagged", "engine.py",
           "self.error.eq(self.frontend.error | bad)",
           "self.error.eq(self.frontend.error)",
           (f"{TAWQ}test_wrong_timestep_count_sets_the_error_flag[3]",)),
]


def _copy(tmp: Path, mutant: Mutant | None = None) -> Path:
    """The package, sim/, tests/test_hdl_top.py, tests/test_hdl_conv.py,
    tests/test_hdl_tawq.py and the pytest configuration under ``tmp``, with ``mutant``
    applied."""
    for pkg in ("qsnn_hw", "sim"):
        shutil.copytree(ROOT / pkg, tmp / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    (tmp / "tests").mkdir()
    for name in ("pyproject.toml", "tests/conftest.py", "tests/test_hdl_top.py",
                 "tests/test_hdl_conv.py", "tests/test_hdl_tawq.py"):
        shutil.copy(ROOT / name, tmp / name)
    if mutant is not None:
        path = tmp / "qsnn_hw" / "hdl" / mutant.file
        text = path.read_text()
        assert text.count(mutant.old) == 1, f"{mutant.name}: must match exactly once"
        path.write_text(text.replace(mutant.old, mutant.new))
    return tmp


def _pytest(tmp: Path, tests, *args) -> subprocess.CompletedProcess:
    """``tests`` of the copy's tests/test_hdl_top.py (or the file a node id names) in a
    subprocess that imports the copy's package (PYTHONPATH and pytest's ``pythonpath =
    ["."]`` both point at it)."""
    env = {**os.environ, "PYTHONPATH": str(tmp)}
    nodes = [f"tests/{t}" if "::" in t else f"tests/test_hdl_top.py::{t}" for t in tests]
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
                           "-p", "no:xdist", *args, *nodes], cwd=tmp, env=env,
                          capture_output=True, text=True, timeout=600)


def test_mutant_tests_pass_unmutated(tmp_path):
    """Every test a mutant relies on passes on an unmutated copy, and the copy is what
    the subprocess imports."""
    tmp = _copy(tmp_path)
    where = subprocess.run([sys.executable, "-c", "import qsnn_hw; print(qsnn_hw.__file__)"],
                           cwd=tmp, env={**os.environ, "PYTHONPATH": str(tmp)},
                           capture_output=True, text=True, check=True).stdout.strip()
    assert Path(where).is_relative_to(tmp)
    tests = sorted({t for m in MUTANTS for t in m.tests})
    run = _pytest(tmp, tests)
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"{len(tests)} passed" in run.stdout, run.stdout


@pytest.mark.parametrize("mutant", MUTANTS,
                         ids=[f"{m.name}--{'--'.join(m.tests)}" for m in MUTANTS])
def test_mutant_is_caught(mutant, tmp_path):
    """The mutant makes a chosen test fail on an assertion (not on an import or an
    elaboration error)."""
    run = _pytest(_copy(tmp_path, mutant), mutant.tests, "-x")
    out = run.stdout + run.stderr
    assert run.returncode == 1, f"{mutant.name} survived (exit {run.returncode}):\n{out}"
    assert re.search(r"^E +(AssertionError|assert )", run.stdout, re.M), out
