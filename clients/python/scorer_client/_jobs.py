"""One scoring call as one or more requests: bodies per chunk of the batch axis, and the merge.

Chunks of a mean loss are scored with reduction ``sum`` so that a chunk whose
labels are all ignored is no error, and the mean is ``sum(loss_sum) / sum(total_weight)``
over all chunks: exactly the batch's mean, never an average of averages.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from numpy.typing import NDArray

from scorer_client._wire import as_tensor, encode, prepare
from scorer_client.errors import ScoringAPIError
from scorer_client.results import LossResult, SoftmaxResult

__all__ = ["Job"]

# Room for the option fields and the msgpack framing of each tensor.
_OVERHEAD = 4096


@dataclass
class Job:
    """A call: its path, the arrays split along axis 0, the arrays sent whole, the options.

    ``elementwise`` (binary cross-entropy) may be cut along axis 0 at any rank; the others
    only when the class axis is not axis 0.
    """

    path: str
    split: dict[str, NDArray[Any]]
    whole: dict[str, NDArray[Any]]
    options: dict[str, Any]
    reduction: str | None = None  # None: softmax
    elementwise: bool = False
    rows: int = field(init=False)

    def __post_init__(self) -> None:
        self.split = {k: prepare(v) for k, v in self.split.items()}
        self.whole = {k: prepare(v) for k, v in self.whole.items()}
        first = next(iter(self.split.values()))
        self.rows = first.shape[0] if first.ndim else 1

    @property
    def splittable(self) -> bool:
        """Whether the batch axis can be cut: rows on axis 0 of every split array."""
        arrays = list(self.split.values())
        if self.rows < 2 or any(a.ndim < 1 or a.shape[0] != self.rows for a in arrays):
            return False
        ndim = arrays[0].ndim
        return self.elementwise or (ndim >= 2 and self.options.get("axis", -1) % ndim != 0)

    def rows_per_request(self, max_body_bytes: int) -> int:
        """Rows per chunk so that each body stays under ``max_body_bytes``."""
        size = sum(array.nbytes for array in (*self.split.values(), *self.whole.values()))
        if size + _OVERHEAD <= max_body_bytes or not self.splittable:
            return self.rows
        per_row = sum(array.nbytes for array in self.split.values()) / self.rows
        fixed = sum(array.nbytes for array in self.whole.values()) + _OVERHEAD
        return max(1, min(self.rows, int((max_body_bytes - fixed) // max(per_row, 1))))

    def bodies(self, rows: int) -> list[bytes]:
        """The request bodies, ``rows`` rows of the batch each."""
        options = dict(self.options)
        whole = {name: as_tensor(array) for name, array in self.whole.items()}
        parts = [self.split]
        if rows < self.rows:
            parts = [
                {name: array[start : start + rows] for name, array in self.split.items()}
                for start in range(0, self.rows, rows)
            ]
        if self.reduction is not None:
            # One request: the server's own reduction. Several: sums, merged exactly here.
            several = len(parts) > 1 and self.reduction == "mean"
            options["reduction"] = "sum" if several else self.reduction
        return [
            encode({**{k: as_tensor(v) for k, v in part.items()}, **whole, **options})
            for part in parts
        ]

    def combine(self, responses: list[dict[str, Any]]) -> LossResult | SoftmaxResult:
        """One result from the chunks' response bodies."""
        if self.reduction is None:
            if len(responses) == 1:
                return SoftmaxResult.from_body(responses[0])
            return SoftmaxResult.combine([SoftmaxResult.from_body(r) for r in responses])
        parts = [LossResult.from_body(r) for r in responses]
        if len(parts) == 1:
            return parts[0]
        try:
            return LossResult.combine(parts, self.reduction)
        except ZeroDivisionError:
            message = "the mean is over a total weight of 0 (all labels ignored, or zero weights)"
            raise ScoringAPIError(422, "Unprocessable Entity", message, []) from None


def goes_with_rows(weights: NDArray[Any], per_sample_ndim: int, rows: int) -> bool:
    """Whether sample weights are cut with the rows (one per row) or broadcast whole."""
    return weights.ndim == per_sample_ndim and weights.ndim > 0 and weights.shape[0] == rows > 1
