"""Small helpers shared by the gateware components (no Amaranth state here)."""

from __future__ import annotations

from amaranth.hdl import signed, unsigned


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def index_width(count: int) -> int:
    """Bits of an unsigned index in ``[0, count - 1]`` (at least 1, so ports never vanish)."""
    return max(1, (int(count) - 1).bit_length())


def pack_lanes(values, width: int) -> int:
    """Pack integers (lane 0 in the low bits) into one word of ``len(values) * width`` bits,
    two's complement per lane."""
    word = 0
    mask = (1 << width) - 1
    for i, v in enumerate(values):
        word |= (int(v) & mask) << (i * width)
    return word


def unpack_lanes(word: int, width: int, lanes: int, is_signed: bool) -> list[int]:
    """Inverse of :func:`pack_lanes`."""
    mask = (1 << width) - 1
    out = []
    for i in range(lanes):
        v = (int(word) >> (i * width)) & mask
        if is_signed and v >> (width - 1):
            v -= 1 << width
        out.append(v)
    return out


def shape_of(width: int, is_signed: bool):
    return signed(width) if is_signed else unsigned(width)


def check_lanes(lanes) -> int:
    if isinstance(lanes, bool) or not isinstance(lanes, int):
        raise TypeError(f"lanes must be an integer, got {lanes!r}")
    if not 1 <= lanes <= 256:
        raise ValueError(f"lanes must be in [1, 256], got {lanes}")
    return lanes
