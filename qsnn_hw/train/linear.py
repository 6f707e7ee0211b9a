"""The linear operation of a LIF layer -- the current ``W x`` it feeds its neurons -- and
max pooling of a convolution's spikes. The LIF dynamics (:mod:`.model`) are the same for
every neuron whatever its current comes from; these classes are the only place that
knows whether a layer is dense or convolutional.

Inputs are flat rows ``(R, M)`` (R = batch, or timesteps x batch); currents are flat rows
``(R, N)`` with a convolution's neurons channel-major ``(C_out, H_out, W_out)``, as in the
contract (docs/fixed-point.md). Each operation has a float forward (training), its
backward (weight and input gradients), and an exact integer forward on the deployed
integers (``int_current``), all vectorised over rows, channels and positions: a
convolution is a matrix product over its receptive fields (im2col with NumPy stride
tricks), its input gradient a scatter-add loop over the K x K kernel taps (never over
pixels).
"""

from __future__ import annotations

import numpy as np

# float32 holds every integer below 2**24 exactly: a product of integer-valued matrices
# whose every partial sum stays below that is exact (else float64, exact below 2**53)
_EXACT32, _EXACT64 = 1 << 24, 1 << 53


def int_matmul(x: np.ndarray, w: np.ndarray, input_max: int) -> np.ndarray:
    """``x @ w.T`` of integer-valued arrays (``w``: (rows, fan-in)), exactly, as int64."""
    bound = int(np.abs(w).sum(axis=1).max(initial=0)) * int(input_max)
    if bound >= _EXACT64:
        return x.astype(np.int64) @ w.T.astype(np.int64)
    dtype = np.float32 if bound < _EXACT32 else np.float64
    return np.rint(x.astype(dtype, copy=False) @ w.T.astype(dtype)).astype(np.int64)


class Dense:
    """``I = x @ W.T``: ``W`` (N, M), one channel per neuron."""

    is_conv = False
    in_shape = None
    stride, padding = 1, 0
    positions = 1

    def __init__(self, n_in: int, n_out: int):
        self.n_in, self.n_neurons, self.channels = int(n_in), int(n_out), int(n_out)
        self.weight_shape = (self.n_neurons, self.n_in)
        self.fan_in = self.n_in

    def current(self, x: np.ndarray, w: np.ndarray) -> np.ndarray:
        return x @ w.T

    def int_current(self, x: np.ndarray, w: np.ndarray, input_max: int) -> np.ndarray:
        return int_matmul(x, w, input_max)

    def backward(self, d: np.ndarray, x: np.ndarray, w: np.ndarray, need_dx: bool):
        """``(dL/dW, dL/dx or None)`` given ``d = dL/dI`` (R, N)."""
        return d.T @ x, (d @ w if need_dx else None)

    def per_neuron(self, v: np.ndarray) -> np.ndarray:
        """A per-channel vector (C,) spread over the neurons (N,)."""
        return v

    def channel_sum(self, a: np.ndarray) -> np.ndarray:
        """(R, N) -> (C,): summed over rows and positions."""
        return a.sum(axis=0)

    def channel_view(self, w: np.ndarray) -> np.ndarray:
        """A per-channel vector (C,) shaped to broadcast against the weight."""
        return w[:, None]


class Conv2d:
    """A 2-D convolution of inputs read as ``in_shape`` (C, H, W) with ``channels``
    kernels of ``kernel`` x ``kernel``, ``stride`` and zero ``padding``; the weight is
    ``(C_out, C, K, K)``, taps in the (c, ky, kx) order of the contract's matrix."""

    is_conv = True

    def __init__(self, in_shape, channels: int, kernel: int, stride: int = 1,
                 padding: int = 0):
        self.in_shape = tuple(int(v) for v in in_shape)
        c, h, w = self.in_shape
        self.channels, self.kernel = int(channels), int(kernel)
        self.stride, self.padding = int(stride), int(padding)
        k, s, p = self.kernel, self.stride, self.padding
        self.conv_shape = (self.channels, (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1)
        self.positions = self.conv_shape[1] * self.conv_shape[2]
        self.n_in = c * h * w
        self.n_neurons = self.channels * self.positions
        self.weight_shape = (self.channels, c, k, k)
        self.fan_in = c * k * k

    def patches(self, x: np.ndarray) -> np.ndarray:
        """Every neuron's receptive field, zero padded: (R, M) -> (R * H_out * W_out,
        C*K*K), rows in (r, y, x) order."""
        c, h, w = self.in_shape
        k, s, p = self.kernel, self.stride, self.padding
        _, ho, wo = self.conv_shape
        img = x.reshape(-1, c, h, w)
        if p:
            img = np.pad(img, ((0, 0), (0, 0), (p, p), (p, p)))
        win = np.lib.stride_tricks.sliding_window_view(img, (k, k), axis=(2, 3))
        win = win[:, :, : (ho - 1) * s + 1: s, : (wo - 1) * s + 1: s]  # (R, C, Ho, Wo, K, K)
        return win.transpose(0, 2, 3, 1, 4, 5).reshape(-1, self.fan_in)

    def _neurons(self, cols: np.ndarray, rows: int) -> np.ndarray:
        """(R * positions, C_out) -> (R, N) channel-major."""
        return cols.reshape(rows, self.positions, self.channels).transpose(0, 2, 1) \
            .reshape(rows, self.n_neurons)

    def current(self, x: np.ndarray, w: np.ndarray) -> np.ndarray:
        cols = self.patches(x) @ w.reshape(self.channels, -1).T
        return self._neurons(cols, x.shape[0])

    def int_current(self, x: np.ndarray, w: np.ndarray, input_max: int) -> np.ndarray:
        cols = int_matmul(self.patches(x), w.reshape(self.channels, -1), input_max)
        return self._neurons(cols, x.shape[0])

    def backward(self, d: np.ndarray, x: np.ndarray, w: np.ndarray, need_dx: bool):
        rows = d.shape[0]
        dcols = np.ascontiguousarray(d.reshape(rows, self.channels, self.positions)
                                     .transpose(0, 2, 1)).reshape(-1, self.channels)
        # patches.T @ dcols, not dcols.T @ patches: OpenBLAS is 10-30x slower on this
        # (few rows, long inner dimension) product the other way round
        dw = (self.patches(x).T @ dcols).T.reshape(self.weight_shape)
        if not need_dx:
            return dw, None
        c, h, wd = self.in_shape
        k, s, p = self.kernel, self.stride, self.padding
        _, ho, wo = self.conv_shape
        dp = (dcols @ w.reshape(self.channels, -1)).reshape(rows, ho, wo, c, k, k)
        dimg = np.zeros((rows, c, h + 2 * p, wd + 2 * p), dtype=d.dtype)
        for ky in range(k):              # scatter-add each kernel tap's gradient
            for kx in range(k):
                dimg[:, :, ky: ky + (ho - 1) * s + 1: s, kx: kx + (wo - 1) * s + 1: s] += \
                    dp[:, :, :, :, ky, kx].transpose(0, 3, 1, 2)
        return dw, dimg[:, :, p: p + h, p: p + wd].reshape(rows, self.n_in)

    def per_neuron(self, v: np.ndarray) -> np.ndarray:
        return np.repeat(v, self.positions)

    def channel_sum(self, a: np.ndarray) -> np.ndarray:
        return a.reshape(-1, self.channels, self.positions).sum(axis=(0, 2))

    def channel_view(self, w: np.ndarray) -> np.ndarray:
        return w[:, None, None, None]


class MaxPool:
    """Max pooling of a convolution's neurons ``conv_shape`` (C, H, W) over ``k`` x ``k``
    windows (stride k, partial windows dropped): for spikes, the OR of the window.

    Backward, the gradient of a window's output goes to the neuron of the window with the
    highest membrane (the first on ties): since the spike is a monotone step,
    ``OR_i H(u_i - theta) = H(max_i u_i - theta)``, so this is that expression's
    (surrogate) derivative -- as for max pooling of a conventional network, on the
    membrane."""

    def __init__(self, conv_shape, k: int):
        self.conv_shape = tuple(int(v) for v in conv_shape)
        self.k = int(k)
        c, h, w = self.conv_shape
        self.out_shape = (c, h // self.k, w // self.k)
        self.n_neurons = c * h * w
        self.n_out = int(np.prod(self.out_shape))
        # flat neuron index of every window position: (C, PH, PW, k*k)
        ch, py, px, dy, dx = np.ix_(np.arange(c), np.arange(self.out_shape[1]),
                                    np.arange(self.out_shape[2]), np.arange(self.k),
                                    np.arange(self.k))
        idx = (ch * h + py * self.k + dy) * w + px * self.k + dx     # (C, PH, PW, k, k)
        self._index = idx.reshape(self.n_out, self.k * self.k)

    def _windows(self, a: np.ndarray) -> np.ndarray:
        """A view of (..., N) as (..., C, PH, k, PW, k): window (c, py, px) is
        ``[..., c, py, :, px, :]`` (the rows and columns no window covers left out)."""
        c, h, w = self.conv_shape
        _, ph, pw = self.out_shape
        k = self.k
        img = a.reshape(a.shape[:-1] + (c, h, w))[..., : ph * k, : pw * k]
        return img.reshape(a.shape[:-1] + (c, ph, k, pw, k))

    def forward(self, z: np.ndarray) -> np.ndarray:
        """(..., N) -> (..., n_out): the maximum of each window (k*k elementwise maxima of
        strided views, much faster than gathering the windows)."""
        win = self._windows(z)
        out = win[..., 0, :, 0].copy()
        for dy in range(self.k):
            for dx in range(self.k):
                if dy or dx:
                    np.maximum(out, win[..., dy, :, dx], out=out)
        return out.reshape(z.shape[:-1] + (self.n_out,))

    def route(self, u: np.ndarray) -> np.ndarray:
        """(..., N) membranes -> (..., n_out) flat index of each window's highest one (the
        first in (dy, dx) order on ties)."""
        win = np.moveaxis(self._windows(u), -3, -2)      # (..., C, PH, PW, k, k)
        pick = np.argmax(win.reshape(u.shape[:-1] + (self.n_out, self.k * self.k)), axis=-1)
        return self._index[np.arange(self.n_out), pick]

    def backward(self, d_out: np.ndarray, route: np.ndarray) -> np.ndarray:
        """(..., n_out) -> (..., N): each window's gradient to its routed neuron (windows
        do not overlap, so nothing collides)."""
        d = np.zeros(d_out.shape[:-1] + (self.n_neurons,), dtype=d_out.dtype)
        np.put_along_axis(d, route, d_out, axis=-1)
        return d


__all__ = ["Conv2d", "Dense", "MaxPool", "int_matmul"]
