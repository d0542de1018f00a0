"""Clients generated from the committed OpenAPI document make real calls to a live server.

Python: openapi-python-client. TypeScript: @hey-api/openapi-ts, type-checked with tsc,
bundled with esbuild and run with Node. Everything is generated into the test's temporary
directory (npm keeps only its own cache). Without Node or npm the TypeScript test skips
with the reason; with CI=true it is required.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.api.openapi import SPEC_PATH
from tests.live_server import LiveServer, live_server

NPM_PACKAGES = ["@hey-api/openapi-ts@0.99.0", "typescript@5.9.3", "esbuild@0.28.2"]
LOGITS, LABELS = [[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]], [2, 1]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(tmp_path_factory.mktemp("generated")) as live:
        yield live


def _run(command: list[str], cwd: Path, timeout: float = 180) -> str:
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, (
        f"{' '.join(command)}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    )
    return done.stdout


def _v1_loss(server: LiveServer) -> dict[str, Any]:
    body = {"logits": LOGITS, "labels": LABELS, "outputs": ["per_sample", "probs"]}
    return dict(httpx.post(f"{server.url}/v1/cross-entropy", json=body, timeout=30).json())


PYTHON_CALLS = """
import json, sys
from scorer_api import Client
from scorer_api.api.open_inference_protocol import model_infer
from scorer_api.api.scoring import cross_entropy
from scorer_api.models import (
    CrossEntropyRequest, CrossEntropyRequestOutputsItem, InferenceRequest, LossResponse,
    RequestInput, RequestInputDatatype, RequestOutput,
)

client = Client(base_url=sys.argv[1], raise_on_unexpected_status=True)
outputs = [CrossEntropyRequestOutputsItem.PER_SAMPLE, CrossEntropyRequestOutputsItem.PROBS]
v1 = cross_entropy.sync(
    client=client, body=CrossEntropyRequest(logits=%(logits)r, labels=%(labels)r, outputs=outputs)
)
assert isinstance(v1, LossResponse), v1
v2 = model_infer.sync(
    "cross-entropy",
    client=client,
    body=InferenceRequest(
        inputs=[
            RequestInput(name="logits", shape=[2, 3], datatype=RequestInputDatatype.FP64,
                         data=[x for row in %(logits)r for x in row]),
            RequestInput(name="labels", shape=[2], datatype=RequestInputDatatype.INT64,
                         data=%(labels)r),
        ],
        outputs=[RequestOutput(name="loss"), RequestOutput(name="per_sample")],
    ),
)
error = cross_entropy.sync(client=client, body=CrossEntropyRequest(logits=[[1, 2, 3]], labels=[7]))
print(json.dumps({"v1": v1.to_dict(), "v2": v2.to_dict(), "error": error.to_dict()}))
"""


def test_generated_python_client(server: LiveServer, tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"post_hooks": []}))
    generator = [sys.executable, "-m", "openapi_python_client", "generate", "--meta", "none"]
    _run(
        [
            *generator,
            "--path",
            str(SPEC_PATH),
            "--output-path",
            "scorer_api",
            "--config",
            str(config),
        ],
        cwd=tmp_path,
    )
    script = tmp_path / "calls.py"
    script.write_text(PYTHON_CALLS % {"logits": LOGITS, "labels": LABELS})
    out = json.loads(_run([sys.executable, str(script), server.url], cwd=tmp_path, timeout=60))
    expected = _v1_loss(server)
    assert out["v1"]["loss"] == expected["loss"]
    assert out["v1"]["probs"] == expected["probs"]
    loss = next(o for o in out["v2"]["outputs"] if o["name"] == "loss")
    assert loss["data"] == [expected["loss"]]
    assert out["error"]["status"] == 422
    assert out["error"]["errors"][0]["loc"] == ["labels", 0]


TYPESCRIPT_CALLS = """
import { createClient } from './client/client';
import { crossEntropy, modelInfer } from './client/sdk.gen';

declare const process: { argv: string[] };

const client = createClient({ baseUrl: process.argv[2] });
const v1 = await crossEntropy({
  client,
  body: { logits: %(logits)s, labels: %(labels)s, outputs: ['per_sample', 'probs'] },
});
const v2 = await modelInfer({
  client,
  path: { name: 'cross-entropy' },
  body: {
    inputs: [
      { name: 'logits', shape: [2, 3], datatype: 'FP64', data: %(logits)s.flat() },
      { name: 'labels', shape: [2], datatype: 'INT64', data: %(labels)s },
    ],
    outputs: [{ name: 'loss' }, { name: 'per_sample' }],
  },
});
const failed = await crossEntropy({ client, body: { logits: [[1, 2, 3]], labels: [7] } });
console.log(JSON.stringify({
  v1: v1.data, v1Status: v1.response?.status,
  v2: v2.data, v2Status: v2.response?.status,
  error: failed.error, errorStatus: failed.response?.status,
}));
"""
TSCONFIG = {
    "compilerOptions": {
        "target": "ES2022",
        "module": "ESNext",
        "moduleResolution": "Bundler",
        "strict": True,
        "noEmit": True,
        "skipLibCheck": True,
        "lib": ["ES2022", "DOM", "DOM.Iterable"],
    },
    "include": ["src"],
}


def _node_tools() -> tuple[str, str]:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        reason = "Node.js and npm are needed for the generated TypeScript client"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason} (required with CI=true)")
        pytest.skip(f"{reason}; not found on PATH")
    return node, npm


def test_generated_typescript_client(server: LiveServer, tmp_path: Path) -> None:
    node, npm = _node_tools()
    (tmp_path / "package.json").write_text(
        '{"name": "scorer-ts", "private": true, "type": "module"}'
    )
    install = [npm, "install", "--no-audit", "--no-fund", "--prefer-offline", *NPM_PACKAGES]
    _run(install, cwd=tmp_path, timeout=300)
    bin_dir = tmp_path / "node_modules" / ".bin"
    _run([str(bin_dir / "openapi-ts"), "-i", str(SPEC_PATH), "-o", "src/client"], cwd=tmp_path)
    (tmp_path / "src" / "main.ts").write_text(
        TYPESCRIPT_CALLS % {"logits": json.dumps(LOGITS), "labels": json.dumps(LABELS)}
    )
    (tmp_path / "tsconfig.json").write_text(json.dumps(TSCONFIG))
    _run([str(bin_dir / "tsc"), "-p", "."], cwd=tmp_path)  # the calls type-check
    bundle = [str(bin_dir / "esbuild"), "src/main.ts", "--bundle", "--platform=node"]
    _run([*bundle, "--format=esm", "--outfile=main.mjs"], cwd=tmp_path)
    out = json.loads(_run([node, "main.mjs", server.url], cwd=tmp_path, timeout=60))
    expected = _v1_loss(server)
    assert out["v1Status"] == 200
    assert out["v1"]["loss"] == expected["loss"]
    assert out["v1"]["per_sample"] == expected["per_sample"]
    assert out["v2Status"] == 200
    loss = next(o for o in out["v2"]["outputs"] if o["name"] == "loss")
    assert loss["data"] == [expected["loss"]]
    assert out["errorStatus"] == 422
    assert out["error"]["errors"][0]["loc"] == ["labels", 0]
