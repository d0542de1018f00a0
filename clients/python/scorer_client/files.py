"""Predictions and labels from files, in chunks of rows: NumPy, Parquet, Arrow IPC and CSV.

:func:`open_dataset` opens one file holding both, or a predictions file and a labels
file, and :meth:`Dataset.batches` yields ``(predictions, labels)`` NumPy arrays of
exactly ``rows`` rows (the last chunk fewer), which is what
:func:`scorer_client.evaluate.evaluate` takes. The whole file is never loaded where the
format allows streaming, so a dataset larger than memory is evaluated chunk by chunk:

- ``.npy``: memory-mapped; each chunk is a copy of its rows.
- ``.npz``: arrays by name. Members of a zip archive cannot be memory-mapped, so each
  array is loaded whole, once; prefer ``.npy``, Parquet or Arrow for large data.
- ``.parquet``: read ``rows`` rows at a time (``ParquetFile.iter_batches``).
- ``.arrow`` / ``.feather`` / ``.ipc``: Arrow IPC, the file (Feather v2) or the stream
  format, record batch by record batch.
- ``.csv``: the first line is the column names (``header=False``: it is data, and the
  columns are ``f0``, ``f1``, ...); streamed by pyarrow when it is installed, else by the
  standard :mod:`csv` module, which is slower but needs nothing. Values are read as
  float64, whatever the first rows look like; a labels column of cross-entropy is class
  indices, int64 in every chunk (a value that is no whole number is an error naming its
  row); of binary-cross-entropy, float64. Several label columns are probabilities.

In tables (Parquet, Arrow, CSV) a role is one numeric column (``[N]``), one list or
fixed-size-list column (``[N, C]``), or several numeric columns stacked as ``[N, C]``.
Parquet and Arrow need pyarrow, the ``parquet`` extra; without it opening such a file
raises :class:`MissingDependency` naming the command that installs it.

Example:
    >>> import numpy as np, tempfile, pathlib
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = pathlib.Path(folder) / "d.npz"
    ...     np.savez(path, logits=np.arange(10.0), labels=np.arange(10) % 2)
    ...     [(len(x), y.tolist()) for x, y in open_dataset(path).batches(4)]
    [(4, [0, 1, 0, 1]), (4, [0, 1, 0, 1]), (2, [0, 1])]
"""

from __future__ import annotations

import csv
import importlib
import itertools
import os
import re
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from scorer_client.errors import MissingDependency

__all__ = [
    "ARROW_SUFFIXES",
    "LABEL_NAMES",
    "PARQUET_EXTRA",
    "PREDICTION_NAMES",
    "SUFFIXES",
    "Dataset",
    "default_rows",
    "is_number",
    "open_dataset",
    "read_batches",
]

Role = Literal["predictions", "labels"]
Loss = Literal["cross-entropy", "binary-cross-entropy"]
Chunk = tuple[NDArray[Any], ...]

PREDICTION_NAMES = ("predictions", "logits", "probs", "log_probs")
LABEL_NAMES = ("labels", "label", "targets", "target")
DEFAULT_NAMES: dict[Role, tuple[str, ...]] = {
    "predictions": PREDICTION_NAMES,
    "labels": LABEL_NAMES,
}
ARROW_SUFFIXES = (".arrow", ".feather", ".ipc")
SUFFIXES = (".npy", ".npz", ".parquet", *ARROW_SUFFIXES, ".csv")
PARQUET_EXTRA = "pip install 'scorer-client[parquet]'"

# What a default chunk aims at: well under the service's 64 MiB body limit, and large
# enough that the per-request overhead is noise. A binary row is a few bytes, so a cap on
# rows keeps one request's work (and its latency) bounded too.
BATCH_BYTES = 32 * 1024 * 1024
MAX_DEFAULT_ROWS = 1_000_000
# pyarrow's CSV reader reads a block at a time: larger than its 1 MiB default, fewer
# pieces to join. (The types are given, float64, not inferred from the first block.)
CSV_BLOCK_BYTES = 8 * 1024 * 1024
LOSSES: tuple[Loss, ...] = ("cross-entropy", "binary-cross-entropy")
# What pandas calls a column whose header is empty (its index, written by to_csv).
UNNAMED = re.compile(r"Unnamed: \d+")
INTEGER = re.compile(r"[+-]?\d+")


def default_rows(row_bytes: int) -> int:
    """Rows per chunk so that a chunk is about 32 MiB, and at most a million rows."""
    return max(1, min(MAX_DEFAULT_ROWS, BATCH_BYTES // max(row_bytes, 1)))


def _module(name: str, what: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ImportError:
        raise MissingDependency(
            f"reading {what} needs pyarrow: {PARQUET_EXTRA} (or pip install pyarrow)"
        ) from None


def _has_pyarrow() -> bool:
    try:
        for name in ("pyarrow", "pyarrow.csv"):
            importlib.import_module(name)
    except ImportError:
        return False
    return True


def _columns_option(value: str | Sequence[str] | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    names = value.split(",") if isinstance(value, str) else list(value)
    names = [name.strip() for name in names]
    if not names or not all(names):
        raise ValueError(f"column names must not be empty; got {value!r}")
    return tuple(names)


class _Source(ABC):
    """One file read for one role or both; its chunks hold one array per role, in order."""

    rows: int | None = None  # known before reading: npy, npz, Parquet, Arrow IPC files

    def __init__(self, path: Path, roles: tuple[Role, ...]) -> None:
        self.path = path
        self.roles = roles

    @abstractmethod
    def first_row(self) -> Chunk:
        """The first row of each role (a chunk of one row), to size the chunks."""

    @abstractmethod
    def pieces(self, rows: int) -> Iterator[Chunk]:
        """The file in order, in pieces of any size (``rows`` is a hint)."""


def _names(
    path: Path, roles: tuple[Role, ...], found: Sequence[str], given: dict[Role, Any], what: str
) -> dict[Role, Any]:
    # A name given must exist; else the first default name present, or None: the caller
    # decides whether what remains is unambiguous (an npz's only array, a file's columns).
    chosen: dict[Role, Any] = {}
    for role in roles:
        wanted = given[role]
        if wanted is None:
            chosen[role] = next((n for n in DEFAULT_NAMES[role] if n in found), None)
            continue
        for name in (wanted,) if isinstance(wanted, str) else wanted:
            if name not in found:
                raise ValueError(
                    f"{path}: no {what} {name!r}; its {what}s are: {', '.join(found) or '(none)'}"
                )
        chosen[role] = wanted
    return chosen


class _Npy(_Source):
    """A ``.npy`` file, memory-mapped: only the rows of the chunk in hand are read."""

    def __init__(self, path: Path, roles: tuple[Role, ...]) -> None:
        super().__init__(path, roles)
        if len(roles) != 1:
            raise ValueError(f"{path}: a .npy file holds one array; give the labels in a file too")
        self.array: NDArray[Any] = np.load(path, mmap_mode="r", allow_pickle=False)
        if self.array.ndim == 0:
            raise ValueError(f"{path}: a scalar; expected one row per sample")
        self.rows = int(self.array.shape[0])

    def first_row(self) -> Chunk:
        return (np.array(self.array[:1]),)

    def pieces(self, rows: int) -> Iterator[Chunk]:
        for start in range(0, self.array.shape[0], rows):
            # np.array copies: np.ascontiguousarray would return a view of the mapping for
            # a C-order array, and a chunk in flight should hold memory, not the file.
            yield (np.array(self.array[start : start + rows]),)


class _Npz(_Source):
    """A ``.npz`` archive: zip members cannot be memory-mapped, so each array is loaded
    whole, once, when the file is opened; chunks are views of it."""

    def __init__(self, path: Path, roles: tuple[Role, ...], keys: dict[Role, str | None]) -> None:
        super().__init__(path, roles)
        with np.load(path, allow_pickle=False) as archive:
            found = list(archive.files)
            chosen = _names(path, roles, found, dict(keys), "array")
            missing = [role for role in roles if chosen[role] is None]
            rest = [name for name in found if name not in chosen.values()]
            if missing and len(rest) != len(missing):
                flags = " and ".join(f"--{role}-key" for role in missing)
                raise ValueError(f"{path} holds {', '.join(found)}: name the arrays with {flags}")
            for role, name in zip(missing, rest, strict=False):
                chosen[role] = name  # np.savez(f, predictions, labels): arr_0, arr_1
            self.arrays = [np.asarray(archive[chosen[role]]) for role in roles]
        for role, array in zip(roles, self.arrays, strict=True):
            if array.ndim == 0:
                raise ValueError(f"{path}: {role} {chosen[role]!r} is a scalar")
        lengths = {len(array) for array in self.arrays}
        if len(lengths) > 1:
            sizes = zip(roles, self.arrays, strict=True)
            counts = ", ".join(f"{chosen[role]} {len(array):,}" for role, array in sizes)
            raise ValueError(f"{path}: predictions and labels differ in rows ({counts})")
        self.rows = len(self.arrays[0])

    def first_row(self) -> Chunk:
        return tuple(array[:1] for array in self.arrays)

    def pieces(self, rows: int) -> Iterator[Chunk]:
        for start in range(0, self.rows or 0, rows):
            yield tuple(array[start : start + rows] for array in self.arrays)


class _Table(_Source):
    """Parquet, Arrow IPC or CSV: each role is one column, a list column, or several."""

    columns: dict[Role, tuple[str, ...]]

    def _choose(self, found: list[str], given: dict[Role, tuple[str, ...] | None]) -> None:
        chosen = _names(self.path, self.roles, found, dict(given), "column")
        self.columns = {}
        for role in self.roles:
            names = chosen[role]
            if names is None and len(self.roles) == 1:
                names = tuple(found)  # a file of labels only (or predictions only): all of it
            if names is None:
                raise ValueError(
                    f"{self.path}: no {role} column (looked for"
                    f" {', '.join(DEFAULT_NAMES[role])}); name it with --{role}-column;"
                    f" its columns are: {', '.join(found)}"
                )
            self.columns[role] = (names,) if isinstance(names, str) else tuple(names)

    @property
    def wanted(self) -> list[str]:
        """The columns to read, each once, in the order the roles name them."""
        return list(dict.fromkeys(n for role in self.roles for n in self.columns[role]))

    def _from_arrow(self, batch: Any, start: int) -> Chunk:
        return tuple(
            _arrow_values(batch, self.columns[role], f"{self.path}", start) for role in self.roles
        )


def _arrow_values(batch: Any, names: tuple[str, ...], where: str, start: int) -> NDArray[Any]:
    # One column as it is ([N] or [N, C] from lists), or numeric columns stacked as [N, C].
    if len(names) == 1:
        return _arrow_column(batch.column(names[0]), f"{where}: column {names[0]!r}", start)
    stacked = []
    for name in names:
        values = _arrow_column(batch.column(name), f"{where}: column {name!r}", start)
        if values.ndim != 1:
            raise ValueError(
                f"{where}: column {name!r} holds lists; stacked columns must hold one number a row"
            )
        stacked.append(values)
    return np.stack(stacked, axis=1)


def _arrow_column(array: Any, where: str, start: int) -> NDArray[Any]:
    pa = importlib.import_module("pyarrow")
    kind = array.type
    _no_nulls(array, where, start)
    if _numeric(pa, kind):
        return np.asarray(array.to_numpy(zero_copy_only=False))
    if pa.types.is_fixed_size_list(kind) or pa.types.is_list(kind) or pa.types.is_large_list(kind):
        if not _numeric(pa, kind.value_type):
            raise ValueError(f"{where} holds {kind}: expected numbers or lists of numbers")
        values = array.flatten()  # respects the slice of the batch
        _no_nulls(values, f"{where} (an element of a list)", 0)
        if pa.types.is_fixed_size_list(kind):
            width = int(kind.list_size)
        else:
            lengths = importlib.import_module("pyarrow.compute").list_value_length(array)
            lengths = np.asarray(lengths.to_numpy(zero_copy_only=False))
            width = int(lengths[0]) if len(lengths) else 0
            uneven = np.flatnonzero(lengths != width)
            if uneven.size:
                row = int(uneven[0])
                raise ValueError(
                    f"{where}: row {start + row:,} holds {int(lengths[row])} values, the rows"
                    f" before it {width}; every row needs as many"
                )
        flat = np.asarray(values.to_numpy(zero_copy_only=False))
        return flat.reshape(len(array), width)
    raise ValueError(f"{where} holds {kind}: expected numbers or lists of numbers")


def _numeric(pa: Any, kind: Any) -> bool:
    types = pa.types
    return bool(types.is_integer(kind) or types.is_floating(kind) or types.is_boolean(kind))


def _no_nulls(array: Any, where: str, start: int) -> None:
    if array.null_count:
        nulls = np.asarray(array.is_null().to_numpy(zero_copy_only=False))
        raise ValueError(f"{where} is empty (null) at row {start + int(np.argmax(nulls)):,}")


class _Parquet(_Table):
    """A Parquet file, read ``rows`` rows (of the chosen columns only) at a time."""

    def __init__(
        self, path: Path, roles: tuple[Role, ...], given: dict[Role, tuple[str, ...] | None]
    ) -> None:
        super().__init__(path, roles)
        self.pq = _module("pyarrow.parquet", "Parquet files")
        with self.pq.ParquetFile(path) as file:
            self._choose(list(file.schema_arrow.names), given)
            self.rows = int(file.metadata.num_rows)

    def first_row(self) -> Chunk:
        return _first(self.pieces(1), self.path)

    def pieces(self, rows: int) -> Iterator[Chunk]:
        start = 0
        with self.pq.ParquetFile(self.path) as file:
            for batch in file.iter_batches(batch_size=rows, columns=self.wanted):
                yield self._from_arrow(batch, start)
                start += batch.num_rows


class _Ipc(_Table):
    """An Arrow IPC file (Feather v2) or stream, record batch by record batch."""

    def __init__(
        self, path: Path, roles: tuple[Role, ...], given: dict[Role, tuple[str, ...] | None]
    ) -> None:
        super().__init__(path, roles)
        self.pa = _module("pyarrow", "Arrow files")
        self.ipc = _module("pyarrow.ipc", "Arrow files")
        with self.pa.OSFile(str(path), "rb") as source:
            try:
                reader = self.ipc.open_file(source)
            except self.pa.ArrowInvalid:
                reader = None  # not the file format: perhaps the stream format
            else:
                schema, self.rows = reader.schema, int(reader.count_rows())
        self.stream = reader is None
        if self.stream:
            with self.pa.OSFile(str(path), "rb") as source:
                try:
                    schema = self.ipc.open_stream(source).schema
                except self.pa.ArrowInvalid as exc:
                    raise ValueError(
                        f"{path}: not an Arrow IPC file or stream (Feather v1 is not read): {exc}"
                    ) from None
        self._choose(list(schema.names), given)

    def first_row(self) -> Chunk:
        return _first(self.pieces(1), self.path)

    def pieces(self, rows: int) -> Iterator[Chunk]:
        # OSFile, not a memory map: each batch is read into memory as it comes, so what the
        # process holds stays bounded by the chunks in flight, not the file's size.
        start = 0
        with self.pa.OSFile(str(self.path), "rb") as source:
            if self.stream:
                batches = iter(self.ipc.open_stream(source))
            else:
                reader = self.ipc.open_file(source)
                batches = (reader.get_batch(i) for i in range(reader.num_record_batches))
            for batch in batches:
                picked = batch.select(self.wanted)
                yield self._from_arrow(picked, start)
                start += batch.num_rows


class _Csv(_Table):
    """A CSV file: a header of column names, or none (``header=False``: ``f0``, ``f1``, ...).

    Every column read is float64 (a text file has no types, and a type guessed from the
    first rows would not hold for the rest); the labels of ``cross-entropy``, one column,
    are then class indices: int64, or an error naming the row.
    """

    def __init__(
        self,
        path: Path,
        roles: tuple[Role, ...],
        given: dict[Role, tuple[str, ...] | None],
        header: bool,
        loss: Loss,
    ) -> None:
        super().__init__(path, roles)
        self.header = header
        self.loss = loss
        with path.open(newline="", encoding="utf-8-sig") as file:
            first = next(csv.reader(file), None)
        if first is None:
            raise ValueError(f"{path} is empty")
        if not first:
            raise ValueError(f"{path}: the first line is empty; expected column names or data")
        if header:
            found = [field.strip() for field in first]
            # pandas writes the header of unnamed columns as 0,1,2: integers are names. A
            # first line of other numbers (1.5e-01, what np.savetxt writes) is data.
            if all(is_number(name) for name in found) and not all(
                INTEGER.fullmatch(name) for name in found
            ):
                raise ValueError(
                    f"{path}: the first line looks like data ({', '.join(found[:3])}"
                    f"{', ...' if len(found) > 3 else ''}), not column names: pass --no-header"
                    " (header=False) for a file without a header"
                )
        else:
            found = [f"f{i}" for i in range(len(first))]
        self.found = found
        self._choose(found, given)
        self._check_names()

    def _check_names(self) -> None:
        # Only the columns read matter: an index column left out by the names chosen is
        # no mistake.
        for name in self.wanted:
            if name == "" or UNNAMED.fullmatch(name):
                what = f"column {self.found.index(name) + 1}" if name == "" else f"column {name!r}"
                raise ValueError(
                    f"{self.path}: {what} has no name in the header: an index, as pandas'"
                    " to_csv writes it, would be read as data. Write the file with"
                    " to_csv(index=False), or choose the columns with --predictions-column"
                    " / --labels-column"
                )
            count = self.found.count(name)
            if count > 1:
                raise ValueError(
                    f"{self.path}: the header names {count} columns {name!r}; rename them"
                )

    def first_row(self) -> Chunk:
        return _first(self._stdlib(1), self.path)

    def pieces(self, rows: int) -> Iterator[Chunk]:
        if _has_pyarrow():
            return self._arrow()
        return self._stdlib(rows)

    def _arrow(self) -> Iterator[Chunk]:
        pa = importlib.import_module("pyarrow")
        pacsv = importlib.import_module("pyarrow.csv")
        # The names are given (stripped, as the header was read above) and the header
        # line skipped: pyarrow's own names would keep the spaces of "logits, labels".
        read = pacsv.ReadOptions(
            column_names=self.found, skip_rows=1 if self.header else 0, block_size=CSV_BLOCK_BYTES
        )
        convert = pacsv.ConvertOptions(
            include_columns=self.wanted,
            column_types={name: pa.float64() for name in self.wanted},
            # Only an empty field is missing: "nan" and "inf" are numbers, as float() reads them.
            null_values=[""],
        )
        try:
            reader = pacsv.open_csv(self.path, read_options=read, convert_options=convert)
        except pa.ArrowException as exc:
            raise self._arrow_error(exc) from None
        start = 0
        while True:
            # pyarrow reads a block when opening and at each batch; its errors say what
            # is wrong but not in which file, and not all of them are ValueErrors.
            try:
                batch = reader.read_next_batch()
                chunk = self._class_indices(self._from_arrow(batch, start), start)
            except StopIteration:
                return
            except pa.ArrowException as exc:
                raise self._arrow_error(exc) from None
            yield chunk
            start += batch.num_rows

    def _arrow_error(self, exc: Exception) -> ValueError:
        text = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        return ValueError(f"{self.path}: {text}")

    def _stdlib(self, rows: int) -> Iterator[Chunk]:
        index = {name: i for i, name in enumerate(self.found)}
        wanted = [index[name] for name in self.wanted]  # unique: _check_names
        start = 0
        with self.path.open(newline="", encoding="utf-8-sig") as file:
            parsed = csv.reader(file)
            if self.header:
                next(parsed)
            lines = (line for line in parsed if line)  # as pyarrow, skip empty lines
            while block := list(itertools.islice(lines, rows)):
                for offset, line in enumerate(block):
                    if len(line) != len(self.found):
                        raise ValueError(
                            f"{self.path}: row {start + offset:,} has {len(line)} fields;"
                            f" the file has {len(self.found)} columns"
                        )
                values = {i: self._parse(block, i, start) for i in wanted}
                chunk = tuple(
                    _stack([values[index[name]] for name in self.columns[role]])
                    for role in self.roles
                )
                yield self._class_indices(chunk, start)
                start += len(block)

    def _parse(self, block: list[list[str]], i: int, start: int) -> NDArray[np.float64]:
        where = f"{self.path}: column {self.found[i]!r}"
        texts = [line[i].strip() for line in block]
        if "" in texts:
            raise ValueError(f"{where} is empty (null) at row {start + texts.index(''):,}")
        try:
            return np.array(texts, dtype=np.float64)
        except (ValueError, OverflowError):
            row = next(r for r, text in enumerate(texts) if not is_number(text))
            raise ValueError(
                f"{where}: row {start + row:,} holds {texts[row]!r}; expected a number"
            ) from None

    def _class_indices(self, chunk: Chunk, start: int) -> Chunk:
        # Decided by the loss and the columns, never by the values of a chunk: every
        # chunk has the same dtype. One label column of cross-entropy is class indices
        # (int64, as the service tells them from probabilities by dtype and shape);
        # several are class probabilities, and binary labels may be probabilities.
        if self.loss != "cross-entropy" or "labels" not in self.roles:
            return chunk
        at = self.roles.index("labels")
        labels = chunk[at]
        if labels.ndim != 1:
            return chunk
        whole = np.isfinite(labels) & (labels == np.round(labels)) & (np.abs(labels) < 2.0**63)
        if not whole.all():
            row = int(np.argmin(whole))
            raise ValueError(
                f"{self.path}: column {self.columns['labels'][0]!r}: row {start + row:,} holds"
                f" {labels[row].item()!r}; cross-entropy labels are class indices (whole"
                " numbers). Probabilities are one column per class, or binary:"
                " --loss binary-cross-entropy"
            )
        return (*chunk[:at], labels.astype(np.int64), *chunk[at + 1 :])


def _stack(columns: list[NDArray[Any]]) -> NDArray[Any]:
    return columns[0] if len(columns) == 1 else np.stack(columns, axis=1)


def is_number(text: str) -> bool:
    """Whether ``text`` reads as a float (a CSV cell, a command-line value)."""
    try:
        float(text)
    except ValueError:
        return False
    return True


def _first(pieces: Iterator[Chunk], path: Path) -> Chunk:
    for piece in pieces:
        if len(piece[0]):
            return tuple(array[:1] for array in piece)
    raise ValueError(f"{path} has no rows")


def _open(
    path: Path,
    roles: tuple[Role, ...],
    keys: dict[Role, str | None],
    columns: dict[Role, tuple[str, ...] | None],
    header: bool = True,
    loss: Loss = "cross-entropy",
) -> _Source:
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise ValueError(f"{path}: expected one of {', '.join(SUFFIXES)}")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    table = suffix not in (".npy", ".npz")
    for role in roles:
        if table and keys[role] is not None:
            raise ValueError(f"{path}: --{role}-key names an array of a .npz file")
        if not table and columns[role] is not None:
            raise ValueError(f"{path}: --{role}-column names a column of a table")
    if suffix == ".npy":
        if keys[roles[0]] is not None:
            raise ValueError(f"{path}: --{roles[0]}-key names an array of a .npz file")
        return _Npy(path, roles)
    if suffix == ".npz":
        return _Npz(path, roles, keys)
    if suffix == ".parquet":
        return _Parquet(path, roles, columns)
    if suffix == ".csv":
        return _Csv(path, roles, columns, header, loss)
    return _Ipc(path, roles, columns)


def _rechunk(pieces: Iterator[Chunk], rows: int) -> Iterator[Chunk]:
    """Pieces of any sizes regrouped into chunks of exactly ``rows`` rows (the last fewer)."""
    held: list[Chunk] = []
    count = 0
    for piece in pieces:
        size, at = len(piece[0]), 0
        while at < size:
            take = min(rows - count, size - at)
            held.append(piece if take == size else tuple(a[at : at + take] for a in piece))
            count, at = count + take, at + take
            if count == rows:
                yield _join(held)
                held, count = [], 0
    if count:
        yield _join(held)


def _join(held: list[Chunk]) -> Chunk:
    if len(held) == 1:
        return held[0]
    return tuple(np.concatenate(parts) for parts in zip(*held, strict=True))


class Dataset:
    """Predictions and labels, from one file or two, read in chunks of rows.

    ``rows`` is the number of rows when the formats say it before reading (npy, npz,
    Parquet, Arrow IPC files), else None (CSV, Arrow streams).
    """

    def __init__(self, predictions: _Source, labels: _Source | None = None) -> None:
        self.predictions = predictions
        self.labels = labels
        self.rows = predictions.rows
        if labels is not None:
            a, b = predictions.rows, labels.rows
            if a is not None and b is not None and a != b:
                raise ValueError(
                    f"{predictions.path} has {a:,} rows but {labels.path} has {b:,}:"
                    f" predictions and labels diverge at row {min(a, b):,}"
                )
            self.rows = None if b is None else a

    def first_row(self) -> tuple[NDArray[Any], NDArray[Any]]:
        """The first row of the predictions and of the labels (each a chunk of one row)."""
        if self.labels is None:
            x, y = self.predictions.first_row()
            return x, y
        return self.predictions.first_row()[0], self.labels.first_row()[0]

    def row_bytes(self) -> int:
        """Bytes of one row of predictions and labels, as read (to size the chunks)."""
        return sum(array.nbytes for array in self.first_row())

    def batches(self, rows: int) -> Iterator[tuple[NDArray[Any], NDArray[Any]]]:
        """``(predictions, labels)`` chunks of exactly ``rows`` rows, the last one fewer.

        Raises:
            ValueError: a value that cannot be read, or (two files) row counts that
                differ, naming the row where the files diverge.
        """
        if rows < 1:
            raise ValueError(f"rows must be at least 1; got {rows}")
        if self.labels is None:
            for both in _rechunk(self.predictions.pieces(rows), rows):
                yield both[0], both[1]
            return
        done = 0
        ahead = _rechunk(self.predictions.pieces(rows), rows)
        behind = _rechunk(self.labels.pieces(rows), rows)
        for x, y in itertools.zip_longest(ahead, behind):
            nx = 0 if x is None else len(x[0])
            ny = 0 if y is None else len(y[0])
            if x is None or y is None or nx != ny:
                # Every chunk but the last has `rows` rows: the shorter file ends in this one.
                short = self.predictions.path if nx < ny else self.labels.path
                long = self.labels.path if nx < ny else self.predictions.path
                end = done + min(nx, ny)
                raise ValueError(
                    f"{short} ends after {end:,} rows but {long} has more: predictions and"
                    f" labels diverge at row {end:,}"
                )
            done += nx
            yield x[0], y[0]


def open_dataset(
    predictions: str | os.PathLike[str],
    labels: str | os.PathLike[str] | None = None,
    *,
    predictions_key: str | None = None,
    labels_key: str | None = None,
    predictions_column: str | Sequence[str] | None = None,
    labels_column: str | Sequence[str] | None = None,
    header: bool = True,
    loss: Loss = "cross-entropy",
) -> Dataset:
    """Open predictions and labels: both in ``predictions``, or labels in ``labels``.

    Keys name arrays of ``.npz`` files, columns name columns of Parquet, Arrow and CSV
    files (``"a,b,c"`` or a sequence: several columns stacked as ``[N, C]``). Unnamed,
    a role is the first of :data:`PREDICTION_NAMES` / :data:`LABEL_NAMES` present; a
    file read for one role only may hold just that (its only array, or all its
    columns), and an ``.npz`` of two arrays of other names is (predictions, labels) in
    order. The files are checked here (formats, names, row counts where known), so a
    mistake is an error before anything is sent.

    CSV files: the first line is the column names unless ``header`` is False (columns
    ``f0``, ``f1``, ...; a first line of decimals is refused as a header: it is data); a
    column read that has no name (``""`` or pandas' ``Unnamed: N``, an index) is an
    error. Their values are float64, and one column of
    labels is int64 class indices for ``loss`` cross-entropy, float64 for
    binary-cross-entropy (the types of the other formats are the file's).

    Raises:
        MissingDependency: Parquet or Arrow without pyarrow.
        ValueError: an unknown format, a missing array or column, rows that differ.
        OSError: a file that cannot be read.
    """
    if loss not in LOSSES:
        raise ValueError(f"loss must be cross-entropy or binary-cross-entropy; got {loss!r}")
    keys: dict[Role, str | None] = {"predictions": predictions_key, "labels": labels_key}
    columns: dict[Role, tuple[str, ...] | None] = {
        "predictions": _columns_option(predictions_column),
        "labels": _columns_option(labels_column),
    }
    first = Path(predictions)
    paths = [first] if labels is None else [first, Path(labels)]
    if not header and all(path.suffix.lower() != ".csv" for path in paths):
        raise ValueError("--no-header (header=False) is for CSV files")
    if labels is None:
        return Dataset(_open(first, ("predictions", "labels"), keys, columns, header, loss))
    return Dataset(
        _open(first, ("predictions",), keys, columns, header, loss),
        _open(Path(labels), ("labels",), keys, columns, header, loss),
    )


def read_batches(
    predictions: str | os.PathLike[str],
    labels: str | os.PathLike[str] | None = None,
    *,
    rows: int,
    **names: Any,
) -> Iterator[tuple[NDArray[Any], NDArray[Any]]]:
    """``open_dataset(predictions, labels, **names).batches(rows)``: the files are
    opened (and checked) now, read as the chunks are taken."""
    return open_dataset(predictions, labels, **names).batches(rows)
