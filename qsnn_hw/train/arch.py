"""The network's shape: the ``--arch`` syntax and the geometry of a chain of layers.

``--arch`` is a ``-``-separated list of layers, input first, output last:

* ``<C>c<K>`` -- a K x K convolution with C output channels, optionally followed (any
  order, each at most once) by ``p<P>`` (zero padding P on each side, default 0),
  ``s<S>`` (stride 1 or 2, default 1) and ``b`` (batch normalization);
* ``mp<K>`` -- max pooling of the preceding convolution's spikes over K x K windows
  (stride K); it must follow a convolution, once;
* ``<N>`` -- a dense layer of N neurons (``<N>b``: batch-normalized); a dense layer
  after a convolution reads its output flattened channel-major (C, H, W).

Convolutions come before every dense layer, and the last layer is dense (the classes).
Example: ``8c3-mp2-16c3p1s2b-10``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .config import MAX_KERNEL, MAX_POOL, LayerConfig

_CONV = re.compile(r"^(\d+)c(\d+)((?:p\d+|s\d+|b)*)$")
_POOL = re.compile(r"^mp(\d+)$")
_DENSE = re.compile(r"^(\d+)(b?)$")
MAX_SIZE = 1 << 16


class ArchError(ValueError):
    """An ``--arch`` string or a layer chain that cannot be built (message says why)."""


def _number(text: str, what: str, lo: int, hi: int, token: str) -> int:
    value = int(text)
    if not lo <= value <= hi:
        raise ArchError(f"--arch: {what} in {token!r} must be in [{lo}, {hi}], got {value}")
    return value


def parse_arch(text: str) -> list[dict]:
    """The layers of an ``--arch`` string as :class:`LayerConfig` shape fields (``size``,
    ``kernel``, ``stride``, ``padding``, ``pool``, ``batch_norm``), input first."""
    tokens = [t.strip().lower() for t in str(text).split("-")]
    if not text or not str(text).strip() or any(t == "" for t in tokens):
        raise ArchError(f"--arch: empty layer in {text!r}; write layers like "
                        f"'8c3-mp2-16c3p1-10' (see --help)")
    layers: list[dict] = []
    for token in tokens:
        if m := _POOL.match(token):
            k = _number(m.group(1), "the pool size", 2, MAX_POOL, token)
            if not layers or not layers[-1]["kernel"]:
                raise ArchError(f"--arch: {token!r} must follow a convolution (it pools that "
                                f"layer's spikes); it follows "
                                f"{'the input' if not layers else 'a dense layer'}")
            if layers[-1]["pool"] != 1:
                raise ArchError(f"--arch: two poolings after one convolution ({token!r}); "
                                f"give one mp<K> with the combined size")
            layers[-1]["pool"] = k
        elif m := _CONV.match(token):
            if layers and not layers[-1]["kernel"]:
                raise ArchError(f"--arch: convolution {token!r} after a dense layer; "
                                f"convolutions must come first")
            size = _number(m.group(1), "the channel count", 1, MAX_SIZE, token)
            kernel = _number(m.group(2), "the kernel size", 1, MAX_KERNEL, token)
            opts = re.findall(r"p\d+|s\d+|b", m.group(3))
            keys = [o[0] for o in opts]
            if len(set(keys)) != len(keys):
                raise ArchError(f"--arch: {token!r} repeats an option (p, s, b at most once)")
            layer = dict(size=size, kernel=kernel, stride=1, padding=0, pool=1,
                         batch_norm="b" in keys)
            for o in opts:
                if o[0] == "p":
                    layer["padding"] = _number(o[1:], "the padding", 0, kernel - 1, token)
                elif o[0] == "s":
                    layer["stride"] = _number(o[1:], "the stride", 1, 2, token)
            layers.append(layer)
        elif m := _DENSE.match(token):
            size = _number(m.group(1), "the layer size", 1, MAX_SIZE, token)
            layers.append(dict(size=size, kernel=0, stride=1, padding=0, pool=1,
                               batch_norm=bool(m.group(2))))
        else:
            raise ArchError(f"--arch: cannot read {token!r}; a layer is <C>c<K>[p<P>][s<S>][b] "
                            f"(convolution), mp<K> (max pooling) or <N>[b] (dense)")
    if layers[-1]["kernel"]:
        raise ArchError(f"--arch: the last layer must be dense (one neuron per class), "
                        f"got a convolution in {text!r}")
    return layers


def describe_arch(layers) -> str:
    """The ``--arch`` string of a chain of :class:`LayerConfig` (the inverse of
    :func:`parse_arch`)."""
    out = []
    for lc in layers:
        if lc.kernel:
            out.append(f"{lc.size}c{lc.kernel}" + (f"p{lc.padding}" if lc.padding else "")
                       + (f"s{lc.stride}" if lc.stride != 1 else "")
                       + ("b" if lc.batch_norm else ""))
            if lc.pool > 1:
                out.append(f"mp{lc.pool}")
        else:
            out.append(f"{lc.size}" + ("b" if lc.batch_norm else ""))
    return "-".join(out)


@dataclass(frozen=True)
class Geometry:
    """Where one layer sits: ``n_in`` inputs, read as ``in_shape`` (C, H, W) by a
    convolution (None for a dense layer); ``conv_shape`` its neurons (C_out, H_out, W_out)
    before pooling and ``out_shape`` its output spikes (None for a dense layer)."""

    n_in: int
    in_shape: tuple | None = None
    conv_shape: tuple | None = None
    out_shape: tuple | None = None

    @property
    def n_neurons(self) -> int:
        c, h, w = self.conv_shape
        return c * h * w

    @property
    def n_out(self) -> int:
        c, h, w = self.out_shape
        return c * h * w


def geometry(layers, n_in: int, image_shape=None, source: str = "the input") -> list:
    """The :class:`Geometry` of every layer of ``layers`` (:class:`LayerConfig`) fed with
    ``n_in`` inputs that form an image ``image_shape`` (C, H, W), or None when they do
    not (``source`` names them in errors)."""
    shape = tuple(image_shape) if image_shape is not None else None
    if shape is not None and len(shape) != 3:
        raise ArchError(f"image_shape must be (channels, height, width), got {shape!r}")
    if shape is not None and shape[0] * shape[1] * shape[2] != n_in:
        raise ArchError(f"image_shape {shape} has {shape[0] * shape[1] * shape[2]} values "
                        f"but {source} has {n_in}")
    out, m, dense_seen = [], int(n_in), False
    for i, lc in enumerate(layers):
        if not isinstance(lc, LayerConfig):
            raise TypeError(f"layers[{i}] must be a LayerConfig, got {type(lc).__name__}")
        if not lc.is_conv:
            out.append(Geometry(m))
            m, shape, dense_seen = lc.size, None, True
            continue
        if dense_seen:
            raise ArchError(f"layer {i} is a convolution after a dense layer; convolutions "
                            f"must come first")
        if shape is None:
            raise ArchError(f"layer {i} is a convolution but {source} is not an image (it "
                            f"has no (channels, height, width) shape); use dense layers "
                            f"(--hidden) for it")
        c, h, w = shape
        k, s, p = lc.kernel, lc.stride, lc.padding
        if h + 2 * p < k or w + 2 * p < k:
            raise ArchError(f"layer {i}: kernel {k}x{k} does not fit its {h}x{w} input with "
                            f"padding {p}; use a smaller kernel or more padding")
        conv = (lc.size, (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1)
        if lc.pool > min(conv[1:]):
            raise ArchError(f"layer {i}: pool {lc.pool} is larger than its {conv[1]}x{conv[2]} "
                            f"output")
        pooled = (conv[0], conv[1] // lc.pool, conv[2] // lc.pool)
        out.append(Geometry(m, shape, conv, pooled))
        shape = pooled
        m = pooled[0] * pooled[1] * pooled[2]
    return out


__all__ = ["ArchError", "Geometry", "describe_arch", "geometry", "parse_arch"]
