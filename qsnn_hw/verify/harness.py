"""The Verilog harness top of a simulation bundle (:mod:`.bundle`): drives every core
from preloaded stimulus with randomized back-pressure and writes what the cores' trace
ports show into one trace file per core (format: :mod:`.cocotb_tb`)."""

from __future__ import annotations

from pathlib import Path

TRACE_FIELDS = ("word_valid", "word", "state_en", "state_addr", "state_data")


def _stimulus(a, k: int, e: dict, out: Path) -> str:
    """Core ``k``'s preloaded beats, weight-load words, back-pressure LFSR and control
    wires; returns the weight-load port connections (empty without RAM weights)."""
    n, p = e["name"], f"c{k}_"
    w, nb, ns = e["payload_width"] + e["gap_bits"], max(1, e["beats"]), e["samples"]
    seed = (e["seed"] * 2654435761 + k) % 65535 + 1
    a(f"  // ---- core {k}: {n} (seed {e['seed']})")
    a(f"  reg [{w - 1}:0] {p}stim [0:{nb - 1}];")
    a(f'  initial $readmemh("{(out / (n + ".stim.hex")).as_posix()}", {p}stim);')
    a(f"  integer {p}f;")
    a(f'  initial {p}f = $fopen("{(out / (n + ".trace")).as_posix()}", "w");')
    a(f"  reg [31:0] {p}ptr = 32'd0;")
    a(f"  reg [{e['gap_bits'] - 1}:0] {p}wait = 0;")
    a(f"  reg [31:0] {p}started = 32'd0;")
    a(f"  reg [31:0] {p}got = 32'd0;")
    a(f"  reg [15:0] {p}lfsr = 16'd{seed};")
    # RAM/SPRAM weights: written through weight_load, one word per cycle, before any start
    nl, lw = e["load_words"], e["load_widths"]
    load_ports = ""
    if nl:
        dw, aw, yw = lw["data"], lw["addr"], lw["layer"]
        tot = dw + aw + yw
        a(f"  reg [{tot - 1}:0] {p}wl [0:{nl - 1}];")
        a(f'  initial $readmemh("{(out / (n + ".weights.hex")).as_posix()}", {p}wl);')
        a(f"  reg [31:0] {p}lptr = 32'd0;")
        a(f"  wire {p}loading = {p}lptr < 32'd{nl};")
        a(f"  wire [{tot - 1}:0] {p}lw = {p}wl[{p}loading ? {p}lptr : 32'd0];")
        a(f"  always @(posedge clk) if (!rst && {p}loading) {p}lptr <= {p}lptr + 32'd1;")
        load_ports = (f"    .weight_load__data({p}lw[{dw - 1}:0]), "
                      f".weight_load__addr({p}lw[{dw + aw - 1}:{dw}]),\n"
                      f"    .weight_load__layer({p}lw[{tot - 1}:{dw + aw}]), "
                      f".weight_load__en(!rst && {p}loading),")
    else:
        a(f"  wire {p}loading = 1'b0;")
    a(f"  wire {p}have = {p}ptr < 32'd{e['beats']};")
    a(f"  wire [{w - 1}:0] {p}cur = {p}stim[{p}have ? {p}ptr : 32'd0];")
    a(f"  wire {p}ev_valid = !rst && !{p}loading && {p}have && {p}wait == 0;")
    a(f"  wire {p}ev_ready, {p}busy, {p}done, {p}error, {p}res_valid;")
    a(f"  wire [{e['result_width'] - 1}:0] {p}res;")
    a(f"  wire {p}res_ready = {{1'b0, {p}lfsr[3:0]}} < 5'd{e['ready_prob16']};")
    a(f"  wire {p}start = !rst && !{p}loading && !{p}busy && {p}started < 32'd{ns};")
    return load_ports


def _instance(a, k: int, e: dict, load_ports: str) -> None:
    """Core ``k``'s instance with a gated clock, every port connected (trace ports to
    ``c<k>_t<l>_<field>`` wires)."""
    n, p, pw, ns = e["name"], f"c{k}_", e["payload_width"], e["samples"]
    trace_ports = []
    for layer in e["layers"]:
        li = layer["index"]
        for f in TRACE_FIELDS:
            a(f"  wire [{layer['ports'][f] - 1}:0] {p}t{li}_{f};")
            trace_ports.append(f".trace__layer{li}__{f}({p}t{li}_{f})")
    # The core's clock stops once it delivered every result: an event-driven simulator
    # then spends nothing on it. Gated on the falling edge, so it never glitches.
    a(f"  reg {p}run = 1'b1;")
    a(f"  always @(negedge clk) {p}run <= {p}got != 32'd{ns};")
    a(f"  wire {p}clk = clk & {p}run;")
    a(f"  {n} {p}dut (")
    a(f"    .clk({p}clk), .rst(rst),")
    a(f"    .events__payload({p}cur[{pw - 1}:0]), .events__valid({p}ev_valid),")
    a(f"    .events__ready({p}ev_ready),")
    a(f"    .results__payload({p}res), .results__valid({p}res_valid),")
    a(f"    .results__ready({p}res_ready),")
    if load_ports:
        a(load_ports)
    a("    " + ", ".join(trace_ports) + ",")
    a(f"    .start({p}start), .busy({p}busy), .done({p}done), .error({p}error));")


def _driver_and_trace(a, k: int, e: dict, watchdog: int) -> tuple[str, str]:
    """Core ``k``'s stimulus pointer, trace writer and watchdog; returns its finished
    and stuck conditions."""
    p, pw, ns = f"c{k}_", e["payload_width"], e["samples"]
    w = pw + e["gap_bits"]
    a(f"  always @(posedge {p}clk) begin")
    a("    if (!rst) begin")
    a(f"      {p}lfsr <= {{{p}lfsr[14:0], {p}lfsr[15] ^ {p}lfsr[13] ^ {p}lfsr[12] ^ "
      f"{p}lfsr[10]}};")
    a(f"      if ({p}ev_valid && {p}ev_ready) begin")
    a(f"        {p}ptr <= {p}ptr + 32'd1;")
    a(f"        {p}wait <= ({p}ptr + 32'd1 < 32'd{e['beats']}) ? "
      f"{p}stim[{p}ptr + 32'd1][{w - 1}:{pw}] : 0;")
    a(f"      end else if ({p}wait != 0) {p}wait <= {p}wait - 1;")
    a(f"      if ({p}start) begin")
    a(f"        {p}started <= {p}started + 32'd1;")
    a(f'        $fwrite({p}f, "B %0d\\n", cycle);')
    a("      end")
    a(f"      if ({p}res_valid && {p}res_ready) begin")
    a(f"        {p}got <= {p}got + 32'd1;")
    a(f'        $fwrite({p}f, "R %0d %0d %h\\n", cycle, {p}error, {p}res);')
    a(f"        $fflush({p}f);")
    a("      end")
    act = [f"{p}loading", f"({p}ev_valid && {p}ev_ready)", f"({p}res_valid && {p}res_ready)",
           f"{p}start", f"({p}got == 32'd{ns})"]
    for layer in e["layers"]:
        li, t = layer["index"], f"{p}t{layer['index']}_"
        a(f"      if ({t}word_valid) $fwrite({p}f, \"W{li} %h\\n\", {t}word);")
        a(f"      if ({t}state_en) $fwrite({p}f, \"S{li} %h %h\\n\", {t}state_addr, "
          f"{t}state_data);")
        act += [f"{t}word_valid", f"{t}state_en"]
    a("    end")
    a("  end")
    # watchdog: cycles without any activity while the core still owes results
    a(f"  reg [31:0] {p}idle = 32'd0;")
    a("  always @(posedge clk)")
    a(f"    {p}idle <= (rst || {' || '.join(act)}) ? 32'd0 : {p}idle + 32'd1;")
    return f"({p}got == 32'd{ns})", f"({p}idle > 32'd{watchdog})"


def _core(a, k: int, e: dict, out: Path, watchdog: int) -> tuple[str, str]:
    """Append core ``k``: stimulus, instance, trace writer; returns its finished and
    stuck conditions."""
    _instance(a, k, e, _stimulus(a, k, e, out))
    return _driver_and_trace(a, k, e, watchdog)


def harness(entries: list[dict], out: Path, limit: int, top: str, reset_cycles: int,
            watchdog: int) -> str:
    """The Verilog text of the harness top ``top`` for the bundle ``entries``."""
    L: list[str] = []
    a = L.append
    a("// Generated by qsnn_hw.verify.harness: preloaded stimulus, randomized "
      "back-pressure, traces.")
    a("`timescale 1ns/1ps")
    a(f"module {top}(")
    a("`ifdef QSNN_EXT_CLOCK")
    a("  input clk")
    a("`endif")
    a(");")
    a("`ifndef QSNN_EXT_CLOCK")
    a("  reg clk = 1'b0;")
    a("  always #5 clk = ~clk;")
    a("`endif")
    a("  reg [7:0] rcnt = 8'd0;")
    a(f"  wire rst = rcnt < 8'd{reset_cycles};")
    a("  always @(posedge clk) if (rst) rcnt <= rcnt + 8'd1;")
    a("  reg [63:0] cycle /*verilator public_flat_rd*/ = 64'd0;")
    a("  always @(posedge clk) cycle <= cycle + 64'd1;")
    a("  reg all_done /*verilator public_flat_rd*/ = 1'b0;")
    a("  reg timeout /*verilator public_flat_rd*/ = 1'b0;")
    a("  initial begin")
    a('    if ($test$plusargs("qsnn_vcd")) begin')
    a('      $dumpfile("waves.vcd");')
    a(f"      $dumpvars(0, {top});")
    a("    end")
    a("  end")
    finished, stuck = [], []
    for k, e in enumerate(entries):
        fin, st = _core(a, k, e, Path(out), watchdog)
        finished.append(fin)
        stuck.append(st)
    flush = [f"        $fflush(c{k}_f);" for k in range(len(entries))]
    a("  always @(posedge clk) begin")
    a("    if (!all_done) begin")
    a(f"      if ({' && '.join(finished)}) begin")
    L.extend(flush)
    a("        all_done <= 1'b1;")
    a(f"      end else if (cycle >= 64'd{limit} || {' || '.join(stuck)}) begin")
    L.extend(flush)
    a("        timeout <= 1'b1;")
    a("        all_done <= 1'b1;")
    a("      end")
    a("    end")
    a("  end")
    a("endmodule")
    return "\n".join(L) + "\n"
