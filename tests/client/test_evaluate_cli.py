"""``scorer evaluate`` against a live server: the numbers are scikit-learn's on the whole file."""

from __future__ import annotations

import importlib.metadata
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import scorer_client
from scipy.special import expit, softmax
from scorer_client.cli import main, metric_options
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    brier_score_loss,
    f1_score,
    log_loss,
    precision_recall_fscore_support,
    roc_auc_score,
    top_k_accuracy_score,
)

from tests.live_server import LiveServer, free_port, live_server

RNG = np.random.default_rng(2024)
BINARY_ROWS = 200_000
API_KEY = "evaluate-test-key"


@pytest.fixture(scope="module")
def binary_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray, np.ndarray]:
    """A binary Parquet file: float64 logits of a roughly calibrated model, int labels."""
    logits = RNG.normal(size=BINARY_ROWS) * 2.0
    labels = (RNG.uniform(size=BINARY_ROWS) < expit(logits)).astype(np.int64)
    path = tmp_path_factory.mktemp("binary") / "scores.parquet"
    pq.write_table(pa.table({"logits": logits, "label": labels}), path, row_group_size=50_000)
    return path, logits, labels


@pytest.fixture(scope="module")
def multiclass_files(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, Path, np.ndarray, np.ndarray]:
    """10-class logits and class-index labels as a pair of .npy files."""
    folder = tmp_path_factory.mktemp("multiclass")
    logits = RNG.normal(size=(5_000, 10)) * 1.5
    labels = np.array([RNG.choice(10, p=p) for p in softmax(logits, axis=1)])
    np.save(folder / "x.npy", logits)
    np.save(folder / "y.npy", labels)
    return folder / "x.npy", folder / "y.npy", logits, labels


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server that wants a bearer key."""
    with live_server(tmp_path_factory.mktemp("keyed"), {"SCORER_API_KEYS": API_KEY}) as live:
        yield live


def _json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> dict[str, Any]:
    status = main(argv)
    captured = capsys.readouterr()
    assert status == 0, captured.err
    out: dict[str, Any] = json.loads(captured.out)
    return out


def test_a_binary_parquet_file_equals_scikit_learn_on_the_whole_file(
    server: LiveServer,
    binary_file: tuple[Path, np.ndarray, np.ndarray],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path, logits, labels = binary_file
    report = tmp_path / "report.html"
    argv = ["evaluate", str(path), "--loss", "binary-cross-entropy", "--json"]
    argv += ["--batch-rows", "30000", "--report", str(report), "--url", server.url]
    out = _json(capsys, argv)

    assert (out["rows"], out["batches"], out["count"]) == (BINARY_ROWS, 7, BINARY_ROWS)
    probs = expit(logits)  # what the service computes in float64, the CLI's default
    decided = probs > 0.5
    assert out["loss"] == pytest.approx(log_loss(labels, probs), rel=1e-9)
    assert out["brier"] == pytest.approx(brier_score_loss(labels, probs), rel=1e-9)
    assert out["accuracy"] == accuracy_score(labels, decided)
    precision, recall, f1, _ = precision_recall_fscore_support(labels, decided, average="binary")
    classification = out["classification"]
    assert classification["threshold"] == 0.5
    assert classification["precision"] == [precision]
    assert classification["recall"] == [recall]
    assert classification["f1"] == [pytest.approx(f1, rel=1e-15)]
    assert classification["support"] == [int(labels.sum())]

    curves = out["curves"]
    assert curves["bins"] == 1000
    (auc,), (auc_bound,) = curves["roc_auc"], curves["roc_auc_bound"]
    (ap,), (ap_bound,) = curves["average_precision"], curves["average_precision_bound"]
    assert abs(auc - roc_auc_score(labels, probs)) <= auc_bound < 1e-3
    assert abs(ap - average_precision_score(labels, probs)) <= ap_bound < 2e-3
    assert curves["roc"][0]["thresholds"][0] == "inf"  # non-finite floats as the service writes
    assert out["calibration"]["bins"] == 15

    page = report.read_text(encoding="utf-8")
    assert page.lower().startswith("<!doctype html>")
    for figure in ("reliability", "roc", "pr"):
        assert f'<figure id="{figure}"><svg' in page
    assert 'id="classification"' in page


def test_the_table_and_the_json_say_the_same(
    server: LiveServer,
    binary_file: tuple[Path, np.ndarray, np.ndarray],
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = str(binary_file[0])
    argv = ["evaluate", path, "--loss", "binary-cross-entropy", "--url", server.url]
    argv += ["--metrics", "classification,curves", "--curve-bins", "200", "--threshold", "0.7"]
    out = _json(capsys, [*argv, "--json"])
    assert main(argv) == 0
    table = dict(line.split(None, 1) for line in capsys.readouterr().out.splitlines())
    assert float(table["loss"]) == pytest.approx(out["loss"], rel=1e-9)
    assert float(table["f1"]) == pytest.approx(out["classification"]["f1"][0], rel=1e-9)
    assert float(table["macro_roc_auc"]) == pytest.approx(out["curves"]["roc_auc"][0], rel=1e-9)
    bound = out["curves"]["roc_auc_bound"][0]
    assert float(table["macro_roc_auc_bound"]) == pytest.approx(bound, rel=1e-9)
    assert table["curve_bins"] == "200"
    assert out["classification"]["threshold"] == 0.7
    assert "brier" not in out
    assert "calibration" not in out
    assert (table["rows"], table["batches"]) == (str(BINARY_ROWS), "1")


def test_multiclass_npy_files_equal_scikit_learn(
    server: LiveServer,
    multiclass_files: tuple[Path, Path, np.ndarray, np.ndarray],
    capsys: pytest.CaptureFixture[str],
) -> None:
    x, y, logits, labels = multiclass_files
    argv = ["evaluate", str(x), str(y), "--loss", "cross-entropy", "--batch-rows", "1200"]
    out = _json(capsys, [*argv, "--concurrency", "3", "--json", "--url", server.url])

    probs = softmax(logits, axis=1)
    assert (out["rows"], out["batches"], out["count"]) == (5_000, 5, 5_000)
    assert out["loss"] == pytest.approx(log_loss(labels, probs), rel=1e-9)
    assert out["accuracy"] == accuracy_score(labels, probs.argmax(axis=1))
    assert out["brier"] == pytest.approx(brier_score_loss(labels, probs), rel=1e-9)
    assert [t["k"] for t in out["top_k"]] == [1, 5]  # the cross-entropy default
    for top in out["top_k"]:
        expected = top_k_accuracy_score(labels, probs, k=top["k"], labels=np.arange(10))
        assert top["accuracy"] == expected
    macro = f1_score(labels, probs.argmax(axis=1), average="macro", zero_division=0)
    assert out["classification"]["macro"]["f1"] == pytest.approx(macro, rel=1e-12)
    assert out["per_class"]["support"] == np.bincount(labels, minlength=10).tolist()
    assert out["calibration"]["bins"] == 15


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out == f"scorer-client {scorer_client.__version__}\n"
    assert importlib.metadata.version("scorer-client") == scorer_client.__version__


def test_url_and_key_come_from_the_environment(
    keyed_server: LiveServer,
    multiclass_files: tuple[Path, Path, np.ndarray, np.ndarray],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    x, y, logits, labels = multiclass_files
    monkeypatch.setenv("SCORER_URL", keyed_server.url)
    monkeypatch.setenv("SCORER_API_KEY", API_KEY)
    out = _json(capsys, ["evaluate", str(x), str(y), "--json", "--metrics", "brier"])
    assert out["loss"] == pytest.approx(log_loss(labels, softmax(logits, axis=1)), rel=1e-9)
    score = ["score", "--logits", str(x), "--labels", str(y), "--json"]
    assert _json(capsys, score)["loss"] == pytest.approx(out["loss"], rel=1e-12)

    assert main(["evaluate", str(x), str(y), "--api-key", "wrong"]) == 1
    assert "403" in capsys.readouterr().err
    monkeypatch.delenv("SCORER_API_KEY")
    assert main(["evaluate", str(x), str(y)]) == 1
    assert "401" in capsys.readouterr().err


def test_refusals_exit_1_and_unusable_input_exits_2(
    server: LiveServer,
    binary_file: tuple[Path, np.ndarray, np.ndarray],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    np.save(tmp_path / "x.npy", np.zeros(4))
    np.save(tmp_path / "y.npy", np.array([0, 1, 2, 1]))
    binary = ["evaluate", str(tmp_path / "x.npy"), str(tmp_path / "y.npy")]
    binary += ["--loss", "binary-cross-entropy"]
    assert main([*binary, "--url", server.url]) == 1
    err = capsys.readouterr().err
    assert "422 Unprocessable Entity" in err
    assert "labels.2: labels must be in [0, 1] (or ignore_index); got 2 at [2]" in err
    nowhere = f"http://127.0.0.1:{free_port()}"
    assert main([*binary, "--url", nowhere]) == 1
    assert "ConnectError" in capsys.readouterr().err

    usage = [
        ([*binary, "--metrics", "brier,roc"], "--metrics: unknown 'roc'; known: classification"),
        ([*binary, "--metrics", "top_k=a"], "--metrics: top_k takes integers; got 'a'"),
        ([*binary, "--batch-rows", "0"], "--concurrency and --batch-rows must be at least 1"),
        (["evaluate", str(tmp_path / "x.npy")], "a .npy file holds one array"),
        (["evaluate", str(tmp_path / "missing.csv")], "missing.csv: no such file"),
    ]
    for argv, message in usage:
        assert main([*argv, "--url", nowhere]) == 2
        assert message in capsys.readouterr().err

    # Missing extras are named before anything is read or sent.
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert main([*binary, "--report", str(tmp_path / "r.html"), "--url", nowhere]) == 2
    assert (
        "--report needs matplotlib: pip install 'scorer-client[report]'" in capsys.readouterr().err
    )
    assert not (tmp_path / "r.html").exists()
    for name in [n for n in sys.modules if n == "pyarrow" or n.startswith("pyarrow.")]:
        monkeypatch.setitem(sys.modules, name, None)
    assert main(["evaluate", str(binary_file[0]), "--url", nowhere]) == 2
    assert "pip install 'scorer-client[parquet]'" in capsys.readouterr().err


def test_an_option_of_a_metric_asks_for_the_metric() -> None:
    binary = "binary-cross-entropy"
    assert metric_options("curves", binary, 1, threshold=0.3) == {
        "curves": True,
        "classification": True,
        "threshold": 0.3,
    }
    assert metric_options("brier", binary, 1, curve_bins=50) == {
        "brier": True,
        "curves": True,
        "curve_bins": 50,
    }
    assert metric_options("top_k=1", "cross-entropy", 10, calibration_bins=5) == {
        "top_k": [1],
        "calibration": True,
        "calibration_bins": 5,
    }
    assert metric_options("brier", binary, 1) == {"brier": True}  # nothing set, nothing asked
    defaults = metric_options(None, binary, 1)
    assert metric_options(None, binary, 1, threshold=0.7) == {**defaults, "threshold": 0.7}


def _lines(path: Path, header: str | None, rows: list[str]) -> None:
    path.write_text("\n".join(([] if header is None else [header]) + rows) + "\n")


def test_csv_files_as_pandas_writes_them_equal_scikit_learn(
    server: LiveServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows, classes = 2_000, 4
    logits = RNG.normal(size=(rows, classes))
    labels = np.array([RNG.choice(classes, p=p) for p in softmax(logits, axis=1)])
    # DataFrame(logits).to_csv(index=False): a header of 0,1,2,3; labels as floats, 1.0.
    header = ",".join(map(str, range(classes)))
    _lines(tmp_path / "x.csv", header, [",".join(map(repr, map(float, r))) for r in logits])
    _lines(tmp_path / "y.csv", "label", [repr(float(v)) for v in labels])
    argv = ["evaluate", str(tmp_path / "x.csv"), str(tmp_path / "y.csv"), "--json"]
    out = _json(capsys, [*argv, "--batch-rows", "600", "--url", server.url])
    assert (out["rows"], out["batches"], out["count"]) == (rows, 4, rows)
    assert out["loss"] == pytest.approx(log_loss(labels, softmax(logits, axis=1)), rel=1e-9)

    # The same without headers, named f0, f1, ...
    _lines(tmp_path / "x.csv", None, [",".join(map(repr, map(float, r))) for r in logits])
    _lines(tmp_path / "y.csv", None, [str(v) for v in labels])
    argv += ["--no-header", "--predictions-column", "f0,f1,f2,f3", "--url", server.url]
    assert _json(capsys, argv)["loss"] == pytest.approx(out["loss"], rel=1e-12)

    # With pandas' index, the file is refused, naming the column and what to do.
    index = [f"{i}," + ",".join(map(repr, map(float, r))) for i, r in enumerate(logits)]
    _lines(tmp_path / "i.csv", "," + header, index)
    np.save(tmp_path / "y.npy", labels)
    assert main(["evaluate", str(tmp_path / "i.csv"), str(tmp_path / "y.npy")]) == 2
    err = capsys.readouterr().err
    assert "i.csv: column 1 has no name in the header" in err
    assert "to_csv(index=False)" in err
    assert "--predictions-column" in err
    chosen = ["--predictions-column", header, "--url", server.url, "--json"]
    picked = _json(capsys, ["evaluate", str(tmp_path / "i.csv"), str(tmp_path / "y.npy"), *chosen])
    assert picked["loss"] == pytest.approx(out["loss"], rel=1e-12)


def test_a_binary_csv_with_spaces_and_late_decimals_and_a_threshold(
    server: LiveServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Whole numbers for more than pyarrow's first block (8 MiB), then decimals: the
    # types of the columns are not those of the first rows.
    rows = 1_500_000
    logits = np.r_[np.arange(rows - 2) % 3 - 1.0, 0.25, -0.75]
    labels = np.r_[np.arange(rows - 2) % 2, 1, 0]
    text = "\n".join(f"{a:g}, {b}" for a, b in zip(logits, labels, strict=True))
    (tmp_path / "d.csv").write_text("logits, labels\n" + text + "\n")
    argv = ["evaluate", str(tmp_path / "d.csv"), "--loss", "binary-cross-entropy", "--json"]
    argv += ["--metrics", "curves", "--threshold", "0.3", "--url", server.url]
    out = _json(capsys, argv)
    probs = expit(logits)
    assert (out["rows"], out["count"]) == (rows, rows)
    assert out["loss"] == pytest.approx(log_loss(labels, probs), rel=1e-9)
    classification = out["classification"]  # asked for by --threshold alone
    assert classification["threshold"] == 0.3
    expected = precision_recall_fscore_support(labels, probs > 0.3, average="binary")
    assert classification["f1"] == [pytest.approx(expected[2], rel=1e-12)]
    assert "curves" in out
    assert "brier" not in out

    # Cross-entropy labels must be class indices: 0.5 is named by its row, exit 2.
    (tmp_path / "soft.csv").write_text("logits,labels\n0.5,1\n0.25,0.5\n")
    assert main(["evaluate", str(tmp_path / "soft.csv"), "--url", server.url]) == 2
    err = capsys.readouterr().err
    assert "soft.csv: column 'labels': row 1 holds 0.5; cross-entropy labels are class" in err
