"""Board support: a UART bridge around the generated core, board top-levels with a PLL and
status LEDs on amaranth-boards platforms, and the synthesis flow with its report.

``uart`` (8N1 UART), ``protocol`` (host side of the bridge protocol), ``bridge`` (the
platform-independent bridge gateware: command decoder, reply encoder, weight loader),
``pll`` (iCE40 / ECP5 PLL parameters and instances), ``families`` (the FPGA family
registry), ``boards`` (the board registry), ``top`` (board top-levels), ``build``
(synthesis into a temporary directory, nextpnr report parsing, fit checks).
"""
