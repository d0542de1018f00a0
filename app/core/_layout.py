"""Class-axis layout: the class axis moved last by views, and row blocks over it."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["BLOCK_ELEMENTS", "Layout"]

# Blocks of about 64k elements keep a block and its few temporaries in L2 cache.
BLOCK_ELEMENTS = 1 << 16

Index = tuple[int, ...]


class Layout:
    """An array of ``shape`` whose class axis is ``axis`` (non-negative).

    Rows are the positions of the other axes in C order; row ``r`` of the moved view
    is the caller's ``x[i..., :, j...]`` with ``(i..., j...) = unravel(r, lead_shape)``.
    ``lead_shape`` is the shape without the class axis (the per-sample shape), ``classes``
    the class axis's length and ``rows`` the number of rows (samples).
    """

    __slots__ = ("axis", "classes", "lead_shape", "rows", "shape")

    def __init__(self, shape: tuple[int, ...], axis: int) -> None:
        self.shape, self.axis = shape, axis
        self.lead_shape = shape[:axis] + shape[axis + 1 :]
        self.classes = shape[axis]
        self.rows = math.prod(self.lead_shape)

    def block_rows(self) -> int:
        """Rows per block."""
        return max(1, BLOCK_ELEMENTS // max(1, self.classes))

    def view(self, a: NDArray[Any]) -> NDArray[Any] | None:
        """``a`` as ``[rows, classes]`` (rows in per-sample C order) without a copy; else None."""
        moved = a if self.axis == a.ndim - 1 else np.moveaxis(a, self.axis, -1)
        try:
            return moved.reshape(self.rows, self.classes, copy=False)
        except (ValueError, TypeError):  # needs a copy; or NumPy < 2.1 (no copy=)
            return None

    def take(self, a: NDArray[Any], rows: slice | NDArray[np.intp]) -> NDArray[Any]:
        """The ``[rows, classes]`` part of ``a``: a view where one exists, else a gather."""
        flat = self.view(a)
        if flat is not None:
            return flat[rows]
        moved = np.moveaxis(a, self.axis, -1)
        r = np.arange(rows.start, rows.stop) if isinstance(rows, slice) else rows
        out: NDArray[Any] = moved[np.unravel_index(r, self.lead_shape)]
        return out

    def blocks(self, a: NDArray[Any]) -> Iterator[tuple[slice, NDArray[Any]]]:
        """Yield ``(rows, block)`` with ``block`` the ``[rows, classes]`` part of ``a``.

        Blocks are views when the moved array can be flattened without a copy, and
        block-sized gathers otherwise, so no full-size copy of ``a`` is ever made.
        Callers must treat blocks as read-only.
        """
        step = self.block_rows()
        for r0 in range(0, self.rows, step):
            rows = slice(r0, min(self.rows, r0 + step))
            yield rows, self.take(a, rows)

    def row_index(self, r: int) -> Index:
        """The caller's index of row ``r`` in the per-sample shape."""
        if not self.lead_shape:
            return ()
        return tuple(int(i) for i in np.unravel_index(r, self.lead_shape))

    def unflatten(self, flat: NDArray[Any]) -> NDArray[Any]:
        """``[rows, classes]`` in moved order back to the caller's layout (a view)."""
        shaped = flat.reshape((*self.lead_shape, self.classes))
        return shaped if self.axis == len(self.shape) - 1 else np.moveaxis(shaped, -1, self.axis)

    def first_bad_element(
        self,
        a: NDArray[Any],
        bad: Callable[[NDArray[Any]], NDArray[np.bool_]],
        skip: NDArray[np.bool_] | None = None,
    ) -> tuple[Index, int]:
        """First element (C order of the caller's layout) where ``bad`` holds, and the count.

        ``skip`` marks rows (ignored samples) whose elements are never bad.
        """
        best: tuple[int, Index] | None = None
        count = 0
        for rows, block in self.blocks(a):
            mask = bad(block)
            if skip is not None:
                mask &= ~skip[rows, None]
            r, c = np.nonzero(mask)
            if r.size == 0:
                continue
            count += int(r.size)
            lead = np.unravel_index(r + rows.start, self.lead_shape) if self.lead_shape else ()
            full = (*lead[: self.axis], c, *lead[self.axis :])
            order = np.ravel_multi_index(full, self.shape)
            k = int(np.argmin(order))
            cand = (int(order[k]), tuple(int(i[k]) for i in full))
            best = cand if best is None or cand < best else best
        assert best is not None  # only called after a block reported a bad element
        return best[1], count

    def first_bad_row(
        self,
        a: NDArray[Any],
        bad: Callable[[NDArray[Any]], NDArray[np.bool_]],
        skip: NDArray[np.bool_] | None = None,
    ) -> tuple[Index, int]:
        """First row (in per-sample C order) where ``bad`` holds, and the count."""
        first = -1
        count = 0
        for rows, block in self.blocks(a):
            mask = bad(block)
            if skip is not None:
                mask &= ~skip[rows]
            hits = np.flatnonzero(mask)
            if hits.size and first < 0:
                first = int(hits[0]) + rows.start
            count += int(hits.size)
        assert first >= 0  # only called after a block reported a bad row
        return self.row_index(first), count
