"""cocotb testbenches and their runners (Icarus Verilog and Verilator)."""
