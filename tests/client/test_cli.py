"""``scorer score`` (``python -m scorer_client score``) against a live server."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest
from scorer_client.cli import load_array, main

from app.core import LossOptions, score_binary_cross_entropy, score_cross_entropy
from tests.live_server import ROOT, LiveServer, free_port

RNG = np.random.default_rng(44)


@pytest.fixture
def batch(tmp_path: Path) -> tuple[Path, Path, np.ndarray, np.ndarray]:
    logits = RNG.normal(size=(25, 4)).astype(np.float32)
    labels = RNG.integers(0, 4, size=25)
    np.save(tmp_path / "x.npy", logits)
    np.save(tmp_path / "y.npy", labels)
    return tmp_path / "x.npy", tmp_path / "y.npy", logits, labels


def _json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> dict[str, object]:
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_table_from_the_console(
    server: LiveServer, batch: tuple[Path, Path, np.ndarray, np.ndarray]
) -> None:
    x, y, logits, labels = batch
    command = [
        sys.executable,
        "-m",
        "scorer_client",
        "score",
        "--logits",
        str(x),
        "--labels",
        str(y),
    ]
    done = subprocess.run(
        [*command, "--url", server.url], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    rows = dict(line.split(None, 1) for line in done.stdout.splitlines())
    expected = score_cross_entropy(logits, labels, LossOptions())
    assert float(rows["loss"]) == pytest.approx(expected.loss, rel=1e-9)
    assert rows["precision"] == "float32"
    assert expected.diagnostics is not None
    assert float(rows["accuracy"]) == pytest.approx(expected.diagnostics.accuracy, rel=1e-9)
    assert {"overflow_rows", "max_abs_logit", "mean_entropy", "count"} <= rows.keys()


def test_json_with_options(
    server: LiveServer,
    batch: tuple[Path, Path, np.ndarray, np.ndarray],
    capsys: pytest.CaptureFixture[str],
) -> None:
    x, y, logits, labels = batch
    options = ["--ignore-index", "2", "--label-smoothing", "0.1", "--precision", "float64"]
    out = _json(
        capsys,
        ["score", "--logits", str(x), "--labels", str(y), "--url", server.url, "--json", *options],
    )
    expected = score_cross_entropy(
        logits, labels, LossOptions(ignore_index=2, label_smoothing=0.1, precision="float64")
    )
    assert out["loss"] == expected.loss
    assert out["total_weight"] == expected.total_weight
    assert out["precision"] == "float64"
    assert out["requests"] == 1


def test_npz_and_csv_inputs(
    server: LiveServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    logits = RNG.normal(size=(6, 3))
    labels = RNG.integers(0, 3, size=6)
    np.savez(tmp_path / "both.npz", logits=logits, labels=labels)
    np.savetxt(tmp_path / "x.csv", logits, delimiter=",")
    np.savetxt(tmp_path / "y.csv", labels, delimiter=",", fmt="%d")
    expected = score_cross_entropy(logits, labels, LossOptions()).loss
    npz = str(tmp_path / "both.npz")
    from_npz = _json(
        capsys,
        ["score", "--logits", npz, "--labels", f"{npz}:labels", "--url", server.url, "--json"],
    )
    assert from_npz["loss"] == expected
    csv = ["--logits", str(tmp_path / "x.csv"), "--labels", str(tmp_path / "y.csv")]
    from_csv = _json(capsys, ["score", *csv, "--url", server.url, "--json"])
    assert from_csv["loss"] == pytest.approx(expected, rel=1e-15)
    assert from_csv["label_kind"] == "index"


def test_binary_and_softmax(
    server: LiveServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    logits = RNG.normal(size=(5, 3))
    targets = (RNG.uniform(size=(5, 3)) > 0.5).astype(np.float64)
    np.save(tmp_path / "x.npy", logits)
    np.save(tmp_path / "t.npy", targets)
    args = ["score", "--logits", str(tmp_path / "x.npy"), "--url", server.url, "--json"]
    binary = _json(
        capsys,
        [
            *args,
            "--labels",
            str(tmp_path / "t.npy"),
            "--loss",
            "binary-cross-entropy",
            "--pos-weight",
            "2",
        ],
    )
    expected = score_binary_cross_entropy(logits, targets, LossOptions(pos_weight=2.0))
    assert binary["loss"] == expected.loss
    soft = _json(capsys, [*args, "--loss", "softmax"])
    assert "loss" not in soft
    assert soft["count"] == 5


def test_service_errors_exit_1(
    server: LiveServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    np.save(tmp_path / "x.npy", np.zeros((2, 3)))
    np.save(tmp_path / "y.npy", np.array([0, 7]))
    argv = ["score", "--logits", str(tmp_path / "x.npy"), "--labels", str(tmp_path / "y.npy")]
    assert main([*argv, "--url", server.url]) == 1
    err = capsys.readouterr().err
    assert "422 Unprocessable Entity" in err
    assert "labels.1: labels must be integers in [0, 3)" in err
    assert main([*argv, "--url", f"http://127.0.0.1:{free_port()}"]) == 1
    assert "ConnectError" in capsys.readouterr().err


def test_usage_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["score", "--logits", str(tmp_path / "missing.npy"), "--labels", "y.npy"]) == 2
    assert "missing.npy" in capsys.readouterr().err
    np.savez(tmp_path / "two.npz", a=np.zeros(2), b=np.zeros(2))
    with pytest.raises(ValueError, match="holds a, b"):
        load_array(str(tmp_path / "two.npz"), "logits")
    with pytest.raises(ValueError, match=r"expected a \.npy"):
        load_array("x.txt", "logits")


def test_console_script_entry_point() -> None:
    pyproject = tomllib.loads((ROOT / "clients" / "python" / "pyproject.toml").read_text())
    target = pyproject["project"]["scripts"]["scorer"]
    module, _, function = target.partition(":")
    assert getattr(importlib.import_module(module), function) is main
