"""``scorer_client.files``: every format yields the same chunks, and mistakes are named."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest
from scorer_client.errors import MissingDependency
from scorer_client.files import (
    PARQUET_EXTRA,
    default_rows,
    open_dataset,
    read_batches,
)

RNG = np.random.default_rng(7)
ROWS, CLASSES = 23, 3
X = RNG.normal(size=(ROWS, CLASSES))
Y = RNG.integers(0, CLASSES, size=ROWS)

Writer = Callable[[Path], tuple[list[Path], dict[str, Any]]]


def _fixed(values: np.ndarray) -> pa.Array:
    return pa.FixedSizeListArray.from_arrays(pa.array(values.ravel()), values.shape[1])


def _csv(path: Path, header: list[str] | None, columns: list[np.ndarray]) -> None:
    # repr() round-trips a float64 exactly, so the CSV holds the very numbers.
    lines = [] if header is None else [",".join(header)]
    for row in zip(*columns, strict=True):
        lines.append(",".join(repr(v.item()) for v in row))
    path.write_text("\n".join(lines) + "\n")


def npy_pair(d: Path) -> tuple[list[Path], dict[str, Any]]:
    np.save(d / "x.npy", X)
    np.save(d / "y.npy", Y)
    return [d / "x.npy", d / "y.npy"], {}


def npz_named(d: Path) -> tuple[list[Path], dict[str, Any]]:
    np.savez(d / "d.npz", labels=Y, logits=X)
    return [d / "d.npz"], {}


def npz_positional(d: Path) -> tuple[list[Path], dict[str, Any]]:
    np.savez(d / "d.npz", X, Y)  # arr_0, arr_1: predictions, then labels
    return [d / "d.npz"], {}


def npz_keys(d: Path) -> tuple[list[Path], dict[str, Any]]:
    np.savez(d / "d.npz", scores=X, truth=Y, other=Y)
    return [d / "d.npz"], {"predictions_key": "scores", "labels_key": "truth"}


def parquet_list(d: Path) -> tuple[list[Path], dict[str, Any]]:
    table = pa.table({"id": np.arange(ROWS), "logits": list(X), "label": Y})
    pq.write_table(table, d / "d.parquet", row_group_size=5)  # groups across the chunks
    return [d / "d.parquet"], {}


def parquet_fixed_list(d: Path) -> tuple[list[Path], dict[str, Any]]:
    pq.write_table(pa.table({"predictions": _fixed(X), "target": Y}), d / "d.parquet")
    return [d / "d.parquet"], {}


def parquet_columns(d: Path) -> tuple[list[Path], dict[str, Any]]:
    table = pa.table({"c": X[:, 2], "a": X[:, 0], "b": X[:, 1], "y": Y})
    pq.write_table(table, d / "d.parquet", row_group_size=9)
    return [d / "d.parquet"], {"predictions_column": "a,b,c", "labels_column": "y"}


def arrow_file(d: Path) -> tuple[list[Path], dict[str, Any]]:
    table = pa.table({"logits": _fixed(X), "labels": Y})
    with ipc.new_file(d / "d.arrow", table.schema) as out:
        for batch in table.to_batches(max_chunksize=4):
            out.write_batch(batch)
    return [d / "d.arrow"], {}


def arrow_stream(d: Path) -> tuple[list[Path], dict[str, Any]]:
    table = pa.table({"probs": list(X), "labels": Y})
    with ipc.new_stream(d / "d.ipc", table.schema) as out:
        for batch in table.to_batches(max_chunksize=6):
            out.write_batch(batch)
    return [d / "d.ipc"], {}


def feather_file(d: Path) -> tuple[list[Path], dict[str, Any]]:
    table = pa.table({"x0": X[:, 0], "x1": X[:, 1], "x2": X[:, 2], "labels": Y})
    feather.write_feather(table, d / "d.feather", chunksize=10)
    return [d / "d.feather"], {"predictions_column": ["x0", "x1", "x2"]}


def csv_header(d: Path) -> tuple[list[Path], dict[str, Any]]:
    _csv(d / "d.csv", ["label", "p0", "p1", "p2"], [Y, X[:, 0], X[:, 1], X[:, 2]])
    return [d / "d.csv"], {"predictions_column": "p0,p1,p2"}


def csv_headerless_pair(d: Path) -> tuple[list[Path], dict[str, Any]]:
    np.savetxt(d / "x.csv", X, delimiter=",", fmt="%.17g")  # round-trips float64
    np.savetxt(d / "y.csv", Y, fmt="%d")
    return [d / "x.csv", d / "y.csv"], {"header": False}


def mixed_pair(d: Path) -> tuple[list[Path], dict[str, Any]]:
    np.save(d / "x.npy", X)
    pq.write_table(pa.table({"labels": Y, "weight": np.ones(ROWS)}), d / "y.parquet")
    return [d / "x.npy", d / "y.parquet"], {"labels_column": "labels"}


WRITERS = [
    npy_pair,
    npz_named,
    npz_positional,
    npz_keys,
    parquet_list,
    parquet_fixed_list,
    parquet_columns,
    arrow_file,
    arrow_stream,
    feather_file,
    csv_header,
    csv_headerless_pair,
    mixed_pair,
]


def _no_pyarrow(monkeypatch: pytest.MonkeyPatch) -> None:
    # A None entry makes `import pyarrow` (and its submodules) raise ImportError.
    for name in [n for n in sys.modules if n == "pyarrow" or n.startswith("pyarrow.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "pyarrow", None)


def _check(chunks: list[tuple[np.ndarray, np.ndarray]], rows: int) -> None:
    sizes = [len(x) for x, _ in chunks]
    assert sizes == [min(rows, ROWS - start) for start in range(0, ROWS, rows)]
    for i, (x, y) in enumerate(chunks):
        assert len(y) == len(x)
        np.testing.assert_array_equal(x, X[i * rows : (i + 1) * rows], strict=True)
        np.testing.assert_array_equal(y, Y[i * rows : (i + 1) * rows], strict=True)


@pytest.mark.parametrize("writer", WRITERS, ids=[w.__name__ for w in WRITERS])
@pytest.mark.parametrize("rows", [1, 7, 23, 100])
def test_every_format_yields_the_same_chunks(tmp_path: Path, writer: Writer, rows: int) -> None:
    paths, names = writer(tmp_path)
    data = open_dataset(*paths, **names)
    _check(list(data.batches(rows)), rows)
    x, y = data.first_row()
    np.testing.assert_array_equal(x, X[:1], strict=True)
    np.testing.assert_array_equal(y, Y[:1], strict=True)
    assert data.row_bytes() == 8 * CLASSES + 8


@pytest.mark.parametrize("writer", [csv_header, csv_headerless_pair])
def test_csv_without_pyarrow_reads_the_same(
    tmp_path: Path, writer: Writer, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths, names = writer(tmp_path)
    _no_pyarrow(monkeypatch)
    with pytest.raises(ImportError):
        import pyarrow.csv  # noqa: F401
    for rows in (1, 7, 100):
        _check(list(read_batches(*paths, rows=rows, **names)), rows)


def test_a_vector_column_is_one_column_of_scores(tmp_path: Path) -> None:
    scores, truth = RNG.uniform(size=10), (RNG.uniform(size=10) > 0.5)
    pq.write_table(pa.table({"probs": scores, "label": truth}), tmp_path / "b.parquet")
    (x, y), (x2, y2) = list(read_batches(tmp_path / "b.parquet", rows=6))
    np.testing.assert_array_equal(np.concatenate([x, x2]), scores, strict=True)
    np.testing.assert_array_equal(np.concatenate([y, y2]), truth, strict=True)


def test_npy_chunks_are_copies_not_views_of_the_file(tmp_path: Path) -> None:
    paths, _ = npy_pair(tmp_path)
    x, _ = next(open_dataset(*paths).batches(5))
    assert type(x) is np.ndarray
    assert x.flags.owndata


def test_the_row_counts_are_known_where_the_format_says_them(tmp_path: Path) -> None:
    assert open_dataset(*npy_pair(tmp_path)[0]).rows == ROWS
    assert open_dataset(*parquet_list(tmp_path)[0]).rows == ROWS
    assert open_dataset(*arrow_file(tmp_path)[0]).rows == ROWS
    assert open_dataset(*arrow_stream(tmp_path)[0]).rows is None
    assert open_dataset(*csv_headerless_pair(tmp_path)[0], header=False).rows is None


def test_default_rows_aim_at_32_mib_and_a_million_at_most() -> None:
    assert default_rows(12) == 1_000_000
    assert default_rows(4000 + 8) == 32 * 1024 * 1024 // 4008 == 8371
    assert default_rows(10**9) == 1


def test_row_counts_that_differ_are_refused_before_reading(tmp_path: Path) -> None:
    np.save(tmp_path / "x.npy", X)
    np.save(tmp_path / "y.npy", Y[:20])
    message = r"x\.npy has 23 rows but .*y\.npy has 20: predictions and labels diverge at row 20"
    with pytest.raises(ValueError, match=message):
        open_dataset(tmp_path / "x.npy", tmp_path / "y.npy")


@pytest.mark.parametrize(("labels", "rows"), [(20, 7), (20, 10), (30, 7), (30, 23)])
def test_streams_that_differ_fail_at_the_row_where_they_diverge(
    tmp_path: Path, labels: int, rows: int
) -> None:
    np.savetxt(tmp_path / "x.csv", X, delimiter=",")
    np.savetxt(tmp_path / "y.csv", np.resize(Y, labels), fmt="%d")
    batches = open_dataset(tmp_path / "x.csv", tmp_path / "y.csv", header=False).batches(rows)
    short, long = ("y", "x") if labels < ROWS else ("x", "y")
    end = min(labels, ROWS)
    message = (
        rf"{short}\.csv ends after {end} rows but .*{long}\.csv has more: predictions and"
        rf" labels diverge at row {end}$"
    )
    with pytest.raises(ValueError, match=message):
        for _ in batches:
            pass


def test_a_missing_column_is_named_with_the_columns_there_are(tmp_path: Path) -> None:
    paths, _ = parquet_columns(tmp_path)
    with pytest.raises(
        ValueError, match=r"d\.parquet: no column 'd'; its columns are: c, a, b, y$"
    ):
        open_dataset(*paths, predictions_column="a,d", labels_column="y")
    with pytest.raises(
        ValueError,
        match=r"no predictions column \(looked for predictions, logits, probs, log_probs\);"
        r" name it with --predictions-column; its columns are: c, a, b, y$",
    ):
        open_dataset(*paths, labels_column="y")
    paths, _ = csv_header(tmp_path)
    with pytest.raises(ValueError, match=r"no column 'p3'; its columns are: label, p0, p1, p2$"):
        open_dataset(*paths, predictions_column="p0,p3")


def test_npz_names_and_wrong_options(tmp_path: Path) -> None:
    np.savez(tmp_path / "three.npz", a=X, b=Y, c=Y)
    with pytest.raises(ValueError, match=r"holds a, b, c: name the arrays with --predictions-key"):
        open_dataset(tmp_path / "three.npz")
    with pytest.raises(ValueError, match=r"no array 'z'; its arrays are: a, b, c"):
        open_dataset(tmp_path / "three.npz", predictions_key="z", labels_key="b")
    np.savez(tmp_path / "uneven.npz", logits=X, labels=Y[:5])
    with pytest.raises(ValueError, match=r"differ in rows \(logits 23, labels 5\)"):
        open_dataset(tmp_path / "uneven.npz")
    with pytest.raises(ValueError, match="--predictions-column names a column of a table"):
        open_dataset(tmp_path / "uneven.npz", predictions_column="x")
    np.save(tmp_path / "x.npy", X)
    with pytest.raises(ValueError, match=r"a \.npy file holds one array"):
        open_dataset(tmp_path / "x.npy")
    with pytest.raises(ValueError, match=r"expected one of \.npy, \.npz, \.parquet"):
        open_dataset(tmp_path / "x.txt")
    with pytest.raises(FileNotFoundError, match=r"missing\.parquet"):
        open_dataset(tmp_path / "missing.parquet")


def test_values_that_cannot_be_read_are_named_by_row(tmp_path: Path) -> None:
    ragged = pa.table({"logits": [[1.0, 2.0], [3.0, 4.0], [5.0]], "labels": [0, 1, 0]})
    pq.write_table(ragged, tmp_path / "ragged.parquet")
    with pytest.raises(ValueError, match=r"column 'logits': row 2 holds 1 values, the rows before"):
        list(read_batches(tmp_path / "ragged.parquet", rows=10))
    holes = pa.table({"logits": [1.0, 2.0, None], "labels": [0, 1, 0]})
    pq.write_table(holes, tmp_path / "holes.parquet")
    with pytest.raises(ValueError, match=r"column 'logits' is empty \(null\) at row 2$"):
        list(read_batches(tmp_path / "holes.parquet", rows=2))
    text = pa.table({"logits": ["a", "b"], "labels": [0, 1]})
    pq.write_table(text, tmp_path / "text.parquet")
    with pytest.raises(ValueError, match="column 'logits' holds string: expected numbers"):
        list(read_batches(tmp_path / "text.parquet", rows=2))
    (tmp_path / "short.csv").write_text("logits,labels\n0.5,1\n0.25\n")
    with pytest.raises(ValueError, match=r"short\.csv: CSV parse error: Expected 2 columns, got 1"):
        list(read_batches(tmp_path / "short.csv", rows=5))


def test_csv_mistakes_without_pyarrow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _no_pyarrow(monkeypatch)
    (tmp_path / "short.csv").write_text("logits,labels\n0.5,1\n0.25\n")
    with pytest.raises(ValueError, match=r"short\.csv: row 1 has 1 fields; the file has 2 columns"):
        list(read_batches(tmp_path / "short.csv", rows=5))
    (tmp_path / "text.csv").write_text("logits,labels\n0.5,1\n0.25,0\nabc,0\n")
    with pytest.raises(ValueError, match=r"column 'logits': row 2 holds 'abc'; expected a number$"):
        list(read_batches(tmp_path / "text.csv", rows=2))
    (tmp_path / "hole.csv").write_text("logits,labels\n0.5,1\n,0\n")
    with pytest.raises(ValueError, match=r"column 'logits' is empty \(null\) at row 1$"):
        list(read_batches(tmp_path / "hole.csv", rows=5))


def test_parquet_and_arrow_without_pyarrow_name_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    parquet, _ = parquet_list(tmp_path)
    arrow, _ = arrow_file(tmp_path)
    _no_pyarrow(monkeypatch)
    for path in (*parquet, *arrow):
        with pytest.raises(MissingDependency) as caught:
            open_dataset(path)
        assert PARQUET_EXTRA in str(caught.value)
        assert "pip install 'scorer-client[parquet]'" in str(caught.value)


# CSV headers, names and types: what pandas writes, and files whose types change late.

READERS = ["pyarrow", "csv-module"]


@pytest.fixture(params=READERS)
def reader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each CSV test runs with pyarrow's reader and with the csv module's."""
    if request.param == "csv-module":
        _no_pyarrow(monkeypatch)
    return str(request.param)


def _all(*paths: Path, rows: int = 7, **names: Any) -> tuple[np.ndarray, np.ndarray]:
    chunks = list(read_batches(*paths, rows=rows, **names))
    for x, y in chunks[1:]:
        assert (x.dtype, y.dtype) == (chunks[0][0].dtype, chunks[0][1].dtype)
    return np.concatenate([x for x, _ in chunks]), np.concatenate([y for _, y in chunks])


def test_a_numeric_header_is_a_header_not_a_row(tmp_path: Path, reader: str) -> None:
    # pandas.DataFrame(X).to_csv(index=False): the header is 0,1,2; of one column, 0.
    _csv(tmp_path / "x.csv", ["0", "1", "2"], [X[:, 0], X[:, 1], X[:, 2]])
    _csv(tmp_path / "y.csv", ["0"], [Y])
    x, y = _all(tmp_path / "x.csv", tmp_path / "y.csv")
    np.testing.assert_array_equal(x, X, strict=True)
    np.testing.assert_array_equal(y, Y, strict=True)
    x, _ = _all(tmp_path / "x.csv", tmp_path / "y.csv", predictions_column="2,0")
    np.testing.assert_array_equal(x, X[:, [2, 0]], strict=True)


def test_no_header_reads_the_first_line_as_data(tmp_path: Path, reader: str) -> None:
    whole = np.arange(2 * ROWS).reshape(ROWS, 2)
    np.savetxt(tmp_path / "x.csv", whole, delimiter=",", fmt="%d")  # 0,1 then 2,3 ...
    np.savetxt(tmp_path / "y.csv", Y, fmt="%d")
    x, y = _all(tmp_path / "x.csv", tmp_path / "y.csv", header=False)
    np.testing.assert_array_equal(x, whole.astype(np.float64), strict=True)
    np.testing.assert_array_equal(y, Y, strict=True)
    x, _ = _all(tmp_path / "x.csv", tmp_path / "y.csv", header=False, predictions_column="f1")
    np.testing.assert_array_equal(x, whole[:, 1].astype(np.float64), strict=True)
    # Read with a header, its first line is names (0 and 1): one row fewer.
    np.save(tmp_path / "y.npy", Y)
    with pytest.raises(ValueError, match=r"x\.csv ends after 22 rows but .*y\.npy has more"):
        _all(tmp_path / "x.csv", tmp_path / "y.npy", predictions_column="0,1")


def test_a_first_line_of_decimals_is_data_that_needs_no_header(tmp_path: Path) -> None:
    np.savetxt(tmp_path / "x.csv", X, delimiter=",")  # 1.234e-01,...: no header
    with pytest.raises(
        ValueError, match=r"x\.csv: the first line looks like data .*: pass --no-header"
    ):
        open_dataset(tmp_path / "x.csv", *npy_pair(tmp_path)[0][1:])
    with pytest.raises(ValueError, match=r"--no-header \(header=False\) is for CSV files"):
        open_dataset(*npy_pair(tmp_path)[0], header=False)


@pytest.mark.parametrize("index", ["", "Unnamed: 0"])
def test_a_pandas_index_column_is_refused_unless_left_out(
    tmp_path: Path, reader: str, index: str
) -> None:
    # DataFrame(X).to_csv() writes the index as a column named "" (",0,1,2"); read back
    # and written again it is "Unnamed: 0". Taken as a class it would be a silent mistake.
    _csv(tmp_path / "x.csv", [index, "0", "1", "2"], [np.arange(ROWS), *X.T])
    np.save(tmp_path / "y.npy", Y)
    paths = (tmp_path / "x.csv", tmp_path / "y.npy")
    named = "column 1 has no name" if index == "" else "column 'Unnamed: 0' has no name"
    with pytest.raises(ValueError, match=rf"x\.csv: {named} .*index=False.*--predictions-column"):
        open_dataset(*paths)
    x, y = _all(*paths, predictions_column="0,1,2")
    np.testing.assert_array_equal(x, X, strict=True)
    np.testing.assert_array_equal(y, Y, strict=True)
    # A file of both, read by the default names, leaves the index out: nothing to refuse.
    _csv(tmp_path / "d.csv", [index, "logits", "labels"], [np.arange(ROWS), X[:, 0], Y])
    x, y = _all(tmp_path / "d.csv")
    np.testing.assert_array_equal(x, X[:, 0], strict=True)
    np.testing.assert_array_equal(y, Y, strict=True)
    if index:  # named, it can be chosen: still not data
        with pytest.raises(ValueError, match=rf"d\.csv: {named}"):
            open_dataset(tmp_path / "d.csv", predictions_column=index)


def test_a_column_named_twice_is_refused_when_read(tmp_path: Path) -> None:
    _csv(tmp_path / "d.csv", ["logits", "logits", "labels"], [X[:, 0], X[:, 1], Y])
    with pytest.raises(ValueError, match=r"d\.csv: the header names 2 columns 'logits'"):
        open_dataset(tmp_path / "d.csv")


def test_spaces_around_the_names_are_not_part_of_them(tmp_path: Path, reader: str) -> None:
    lines = ["logits , labels"] + [f"{float(a)!r}, {b}" for a, b in zip(X[:, 0], Y, strict=True)]
    (tmp_path / "d.csv").write_text("\n".join(lines) + "\n")
    x, y = _all(tmp_path / "d.csv")
    np.testing.assert_array_equal(x, X[:, 0], strict=True)
    np.testing.assert_array_equal(y, Y, strict=True)


ARROW_ERRORS = [
    pa.ArrowKeyError,  # not a ValueError
    pa.ArrowTypeError,  # nor this one
    pa.ArrowNotImplementedError,
    pa.ArrowMemoryError,
    pa.ArrowInvalid,
]


@pytest.mark.parametrize("error", ARROW_ERRORS, ids=[e.__name__ for e in ARROW_ERRORS])
@pytest.mark.parametrize("when", ["opening", "reading"])
def test_every_arrow_error_while_reading_is_a_value_error_naming_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: type[Exception], when: str
) -> None:
    paths, names = csv_header(tmp_path)

    class Reader:
        def read_next_batch(self) -> Any:
            raise error("what pyarrow says")

    def open_csv(*args: Any, **kwargs: Any) -> Reader:
        if when == "opening":
            raise error("what pyarrow says")
        return Reader()

    monkeypatch.setattr("pyarrow.csv.open_csv", open_csv)
    with pytest.raises(ValueError, match=r"d\.csv: what pyarrow says$"):
        list(read_batches(*paths, rows=5, **names))


def test_a_value_that_is_no_number_is_a_value_error_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / "bad.csv").write_text("logits,labels\n0.5,1\nabc,0\n")
    with pytest.raises(ValueError, match=r"bad\.csv: .*invalid value 'abc'"):
        list(read_batches(tmp_path / "bad.csv", rows=5))


def _late_floats(path: Path, rows: int, label: float) -> tuple[np.ndarray, np.ndarray]:
    # Whole numbers for a few thousand rows (more than pyarrow's first block), then not.
    x = np.r_[np.arange(rows) % 2, 0.25, 0.75]
    y = np.r_[np.arange(rows) % 2, 0.0, label]
    lines = ["logits,labels"] + [f"{a:g},{b:g}" for a, b in zip(x, y, strict=True)]
    path.write_text("\n".join(lines) + "\n")
    return x, y


def test_column_types_do_not_follow_the_first_rows(
    tmp_path: Path, reader: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("scorer_client.files.CSV_BLOCK_BYTES", 1024)
    x, y = _late_floats(tmp_path / "d.csv", 3000, 1.0)
    for loss in ("cross-entropy", "binary-cross-entropy"):
        got_x, got_y = _all(tmp_path / "d.csv", rows=1000, loss=loss)
        np.testing.assert_array_equal(got_x, x, strict=True)  # predictions: float64
        expected = y.astype(np.int64) if loss == "cross-entropy" else y
        np.testing.assert_array_equal(got_y, expected, strict=True)
    x, y = _late_floats(tmp_path / "d.csv", 3000, 0.5)  # a binary label may be a probability
    got_x, got_y = _all(tmp_path / "d.csv", rows=1000, loss="binary-cross-entropy")
    np.testing.assert_array_equal(got_x, x, strict=True)
    np.testing.assert_array_equal(got_y, y, strict=True)


def test_cross_entropy_labels_are_class_indices_in_every_chunk(tmp_path: Path, reader: str) -> None:
    lines = ["logits,labels"] + [
        f"{float(a)!r},{float(b)!r}" for a, b in zip(X[:, 0], Y, strict=True)
    ]
    (tmp_path / "d.csv").write_text("\n".join(lines) + "\n")  # labels written 1.0, 0.0, 2.0
    for rows in (1, 7, 100):
        _, y = _all(tmp_path / "d.csv", rows=rows)  # cross-entropy is the default
        np.testing.assert_array_equal(y, Y, strict=True)
        _, y = _all(tmp_path / "d.csv", rows=rows, loss="binary-cross-entropy")
        np.testing.assert_array_equal(y, Y.astype(np.float64), strict=True)
    # Two or more label columns are class probabilities: floats, whatever the loss.
    soft = RNG.dirichlet(np.ones(CLASSES), size=ROWS)
    _csv(tmp_path / "s.csv", ["p0", "p1", "p2", "q0", "q1", "q2"], [*X.T, *soft.T])
    x, y = _all(tmp_path / "s.csv", predictions_column="p0,p1,p2", labels_column="q0,q1,q2")
    np.testing.assert_array_equal(x, X, strict=True)
    np.testing.assert_array_equal(y, soft, strict=True)


@pytest.mark.parametrize("value", ["0.5", "nan", "inf", "1e30"])
def test_a_cross_entropy_label_that_is_no_class_index_is_named_by_row(
    tmp_path: Path, reader: str, value: str
) -> None:
    (tmp_path / "d.csv").write_text(f"logits,labels\n0.5,1\n0.25,0\n0.75,2\n0.1,{value}\n")
    with pytest.raises(
        ValueError,
        match=rf"d\.csv: column 'labels': row 3 holds {re.escape(repr(float(value)))};"
        r" cross-entropy labels are class indices .*--loss binary-cross-entropy",
    ):
        list(read_batches(tmp_path / "d.csv", rows=2))
    _, y = _all(tmp_path / "d.csv", rows=2, loss="binary-cross-entropy")
    assert y.dtype == np.float64


def test_the_loss_is_one_of_the_two(tmp_path: Path) -> None:
    paths, _ = npy_pair(tmp_path)
    with pytest.raises(ValueError, match=r"loss must be cross-entropy or binary-cross-entropy"):
        open_dataset(*paths, loss="softmax")  # type: ignore[arg-type]
