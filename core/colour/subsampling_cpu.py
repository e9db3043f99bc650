"""The CPU form of chroma downsampling (:func:`chromaflow.core.colour.downsample_chroma`): the tent filter's few
taps per output sample in one numba pass, instead of two dense matrix products over whole planes.

The dense products multiply mostly zeros (a 4:2:0 frame at 854x480 costs two 240x480x854 and 240x854x427 products
per plane, a tenth of a CPU colorize's time); the taps are read from the same matrices, so the weights are the
same. Sums are taken in float64, so results agree with the products to float32 rounding (their integer code
values, rounded half to even, differ only where a value lies within that rounding of a half: a few code values
in a million, by one).
"""

import numba
import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor

Taps = tuple[NDArray[np.int64], NDArray[np.float64]]  # (n_out, T) input indices and weights (0 past the last)


def matrix_taps(matrix: Tensor) -> Taps:
    """The non-zero entries of a resampling matrix ``(n_out, n_in)`` as padded ``(index, weight)`` rows."""
    m = matrix.numpy()
    count = max(1, int((m != 0).sum(axis=1).max()))
    index = np.zeros((m.shape[0], count), np.int64)
    weight = np.zeros((m.shape[0], count), np.float64)
    for row in range(m.shape[0]):
        cols = np.flatnonzero(m[row])
        index[row, : len(cols)] = cols
        weight[row, : len(cols)] = m[row, cols]
    return index, weight


@numba.njit(cache=True, parallel=True)
def _apply(
    planes: NDArray[np.float32],
    rows_i: NDArray[np.int64],
    rows_w: NDArray[np.float64],
    cols_i: NDArray[np.int64],
    cols_w: NDArray[np.float64],
    out: NDArray[np.float32],
) -> None:  # pragma: no cover - compiled
    count, _, w_in = planes.shape
    h_out, w_out = out.shape[1], out.shape[2]
    for task in numba.prange(count * h_out):
        p, i = task // h_out, task % h_out
        line = np.zeros(w_in)
        for t in range(rows_i.shape[1]):
            wt = rows_w[i, t]
            if wt != 0.0:
                src = planes[p, rows_i[i, t]]
                for x in range(w_in):
                    line[x] += wt * src[x]
        for j in range(w_out):
            acc = 0.0
            for t in range(cols_i.shape[1]):
                acc += cols_w[j, t] * line[cols_i[j, t]]
            out[p, i, j] = acc


def resample_taps(planes: Tensor, rows: Taps, cols: Taps) -> Tensor:
    """``R @ planes @ C.T`` over the last two dimensions of float32 CPU ``planes``, ``R`` and ``C`` given by their
    taps (:func:`matrix_taps`)."""
    shape = planes.shape
    flat = np.ascontiguousarray(planes.reshape(-1, shape[-2], shape[-1]).numpy(), dtype=np.float32)
    h_out, w_out = rows[0].shape[0], cols[0].shape[0]
    out = np.empty((flat.shape[0], h_out, w_out), np.float32)
    _apply(flat, *rows, *cols, out)
    return torch.from_numpy(out).reshape(*shape[:-2], h_out, w_out)
