"""Byte helpers shared by the bridge components."""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Value


def shift_in(reg, byte, n: int):
    """``reg`` (``n`` bytes) with ``byte`` shifted in from the top: after ``n`` bytes the
    first one received is the lowest (little-endian)."""
    return (reg >> 8) | (byte << (8 * n - 8))


def le_bytes(value, n: int) -> list:
    """``n`` little-endian bytes of ``value`` (zero-extended)."""
    v = Cat(Value.cast(value), Const(0, 8 * n))
    return [v[8 * k:8 * k + 8] for k in range(n)]
