"""The client installs into a fresh environment, without the service, and its CLI works.

A venv of the machine's Python 3.11 gets ``./clients/python`` (from a copy, so that the
build leaves nothing in the repository) by the repository's pinned uv, whose cache makes
it a second or two. It is skipped only when uv cannot reach the package index, and never
when ``CI=true``: there it must run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import scorer_client
from scipy.special import softmax
from sklearn.metrics import accuracy_score, log_loss

from tests.live_server import ROOT, LiveServer

CLIENT = ROOT / "clients" / "python"
UV = ["bash", str(ROOT / "scripts" / "uv.sh")]
# What uv says when the index is out of reach (DNS, connection, proxy, offline mode).
UNREACHABLE = (
    "dns error",
    "error sending request",
    "failed to fetch",
    "connection refused",
    "network is unreachable",
    "timed out",
    "offline",
)
SERVER_ONLY = ("app", "fastapi", "starlette", "uvicorn", "pydantic", "pydantic_settings")


def _run(command: list[str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    # No PYTHONPATH or virtualenv of the test run leaks into the fresh environment.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bin directory of a new venv holding scorer-client and its dependencies only."""
    tmp = tmp_path_factory.mktemp("distribution")
    source = tmp / "client"
    shutil.copytree(
        CLIENT, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__")
    )
    venv = tmp / "venv"
    made = _run([*UV, "venv", str(venv), "--python", "python3.11"], ROOT)
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    done = _run([*UV, "pip", "install", "--python", str(python), str(source)], ROOT, timeout=300)
    if done.returncode != 0:
        reachable = not any(text in done.stderr.lower() for text in UNREACHABLE)
        if reachable or os.environ.get("CI") == "true":
            pytest.fail(f"uv pip install ./clients/python failed:\n{done.stderr}")
        pytest.skip(f"uv cannot reach the package index: {done.stderr.strip()[-300:]}")
    return venv / "bin"


def test_the_client_imports_without_any_server_dependency(fresh: Path, tmp_path: Path) -> None:
    code = (
        "import importlib.util, scorer_client, scorer_client.metrics, scorer_client.files\n"
        "from scorer_client import ScoringClient\n"
        "from scorer_client.metrics import aggregate_metrics, merge_aggregates\n"
        f"absent = {(*SERVER_ONLY, 'pyarrow', 'matplotlib')!r}\n"
        "print([n for n in absent if importlib.util.find_spec(n) is not None])\n"
        "print(scorer_client.__version__)\n"
    )
    done = _run([str(fresh / "python"), "-c", code], tmp_path, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["[]", scorer_client.__version__]


def test_the_installed_command_evaluates_npy_files(
    fresh: Path, server: LiveServer, tmp_path: Path
) -> None:
    version = _run([str(fresh / "scorer"), "--version"], tmp_path, timeout=60)
    assert version.returncode == 0, version.stderr
    assert version.stdout == f"scorer-client {scorer_client.__version__}\n"

    rng = np.random.default_rng(5)
    logits = rng.normal(size=(3_000, 4))
    labels = rng.integers(0, 4, size=3_000)
    np.save(tmp_path / "x.npy", logits)
    np.save(tmp_path / "y.npy", labels)
    command = [str(fresh / "scorer"), "evaluate", "x.npy", "y.npy", "--loss", "cross-entropy"]
    command += ["--json", "--batch-rows", "1000", "--url", server.url]
    done = _run(command, tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    probs = softmax(logits, axis=1)
    assert (out["rows"], out["batches"]) == (3_000, 3)
    assert out["loss"] == pytest.approx(log_loss(labels, probs), rel=1e-9)
    assert out["accuracy"] == accuracy_score(labels, probs.argmax(axis=1))
    assert [t["k"] for t in out["top_k"]] == [1]  # top-5 of 4 classes is 1 by definition


def test_without_the_extras_the_command_names_them(
    fresh: Path, server: LiveServer, tmp_path: Path
) -> None:
    pq.write_table(pa.table({"logits": [0.5, -1.0], "label": [1, 0]}), tmp_path / "b.parquet")
    parquet = [str(fresh / "scorer"), "evaluate", "b.parquet", "--url", server.url]
    done = _run(parquet, tmp_path, timeout=60)
    assert done.returncode == 2
    assert "pip install 'scorer-client[parquet]'" in done.stderr
    np.save(tmp_path / "x.npy", np.zeros(2))
    np.save(tmp_path / "y.npy", np.zeros(2))
    report = [str(fresh / "scorer"), "evaluate", "x.npy", "y.npy", "--report", "r.html"]
    done = _run([*report, "--url", server.url], tmp_path, timeout=60)
    assert done.returncode == 2
    assert "--report needs matplotlib: pip install 'scorer-client[report]'" in done.stderr
