"""The committed protobuf code is what scripts/protos.sh makes of the .proto today."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.live_server import ROOT

GENERATED = Path("app/api/grpc/protos")


def test_the_generated_code_is_up_to_date(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHON": sys.executable}
    subprocess.run(["bash", "scripts/protos.sh", str(tmp_path)], cwd=ROOT, check=True, env=env)
    for name in ("grpc_predict_v2_pb2.py", "grpc_predict_v2_pb2.pyi"):
        fresh = (tmp_path / GENERATED / name).read_text(encoding="utf-8")
        committed = (ROOT / GENERATED / name).read_text(encoding="utf-8")
        assert fresh == committed, f"{name} is stale: run 'bash scripts/protos.sh'"


def test_the_messages_live_beside_tritonclients_copy_of_the_protocol() -> None:
    """Both define inference.ModelInferRequest; ours is in a pool of its own."""
    service_pb2 = pytest.importorskip("tritonclient.grpc.service_pb2")
    from app.api.grpc.protos import grpc_predict_v2_pb2 as ours

    theirs = service_pb2.ModelInferRequest(model_name="softmax", raw_input_contents=[b"\0" * 4])
    theirs.parameters["temperature"].double_param = 2.0
    read = ours.ModelInferRequest.FromString(theirs.SerializeToString())
    assert read.model_name == "softmax"
    assert read.parameters["temperature"].double_param == 2.0
    assert ours.ModelInferRequest.DESCRIPTOR.full_name == "inference.ModelInferRequest"
