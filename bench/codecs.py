"""Codec benchmark: decode and encode of each encoding at [64, 10] and [4096, 1000].

    /work/bench-venv/bin/python -m bench.codecs

Decode: a /v1/cross-entropy body (logits + labels, nested lists or typed tensors) through
``app.codecs.JSON`` / ``MSGPACK``, beside the one-call anchor (``orjson.loads`` or
``msgspec.msgpack.decode`` then ``np.asarray``, no validation). Encode: a response with
loss, per-sample losses, probabilities and diagnostics, beside ``orjson.dumps`` /
``msgspec`` on the same tree. Writes ``bench/results/codecs.json``.
"""

from __future__ import annotations

import argparse
import base64
import sys
from collections.abc import Callable
from typing import Any

import msgspec
import numpy as np
import orjson

from bench._timing import fmt_time, machine, table, timeit, wait_for_quiet, write_results
from bench.payloads import arrays, body

SHAPES = [(64, 10), (4096, 1000)]
FIELDS = frozenset({"logits", "labels", "log_probs", "probs", "class_weights", "sample_weights"})


def _anchor_decode(payload: bytes, encoding: str, tensor: bool) -> Callable[[], Any]:
    def run() -> Any:
        fields = msgspec.msgpack.decode(payload) if encoding == "msgpack" else orjson.loads(payload)
        out = {}
        for name in ("logits", "labels"):
            value = fields[name]
            if tensor:
                data = value["data"] if encoding == "msgpack" else base64.b64decode(value["data"])
                out[name] = np.frombuffer(data, value["dtype"]).reshape(value["shape"])
            else:
                out[name] = np.asarray(value)
        return out

    return run


def _response(shape: tuple[int, int], tensor: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    """(tree for app.codecs with Tensor markers, the same tree for the anchor)."""
    from app.codecs import Tensor

    logits, labels = arrays(shape)
    x = logits if tensor else logits.astype(np.float64)
    probs = np.exp(x - x.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    per_sample = -np.log(probs[np.arange(shape[0]), labels])
    diagnostics = {
        "count": shape[0],
        "accuracy": 0.1,
        "mean_confidence": 0.5,
        "mean_entropy": 1.0,
        "mean_true_class_prob": 0.2,
        "numerical": {"max_abs_logit": 9.0, "overflow_rows": 0, "underflow_rows": 0},
    }
    head = {"loss": float(per_sample.mean()), "reduction": "mean", "precision": x.dtype.name}

    def wrap(a: np.ndarray[Any, Any]) -> Any:
        return Tensor(a) if tensor else a

    ours = {
        **head,
        "per_sample": wrap(per_sample),
        "probs": wrap(probs),
        "diagnostics": diagnostics,
    }
    anchor = {**head, "per_sample": per_sample, "probs": probs, "diagnostics": diagnostics}
    return ours, anchor


def _anchor_encode(tree: dict[str, Any], encoding: str, tensor: bool) -> Callable[[], bytes]:
    if encoding == "json" and not tensor:
        return lambda: orjson.dumps(tree, option=orjson.OPT_SERIALIZE_NUMPY)
    if encoding == "msgpack" and not tensor:
        return lambda: msgspec.msgpack.encode(
            {k: v.tolist() if isinstance(v, np.ndarray) else v for k, v in tree.items()}
        )

    def run() -> bytes:
        out = dict(tree)
        for name in ("per_sample", "probs"):
            data = tree[name].tobytes()
            out[name] = {
                "dtype": tree[name].dtype.name,
                "shape": list(tree[name].shape),
                "data": data if encoding == "msgpack" else base64.b64encode(data).decode(),
            }
        if encoding == "msgpack":
            return msgspec.msgpack.encode(out)
        return orjson.dumps(out)

    return run


def bench_case(
    shape: tuple[int, int], encoding: str, tensor: bool, budget: float
) -> dict[str, Any]:
    """Decode and encode times of app.codecs and the anchor for one case."""
    from app.codecs import JSON, MSGPACK

    codec = MSGPACK if encoding == "msgpack" else JSON
    payload = body(shape, encoding, tensor)
    ours_tree, anchor_tree = _response(shape, tensor)
    encoded = codec.encode(ours_tree)
    methods: dict[str, Callable[[], Any]] = {
        "decode": lambda: codec.decode(payload, FIELDS),
        "decode anchor": _anchor_decode(payload, encoding, tensor),
        "encode": lambda: codec.encode(ours_tree),
        "encode anchor": _anchor_encode(anchor_tree, encoding, tensor),
    }
    background = wait_for_quiet(patience=10)
    return {
        "background_cores": background,
        "shape": list(shape),
        "encoding": encoding,
        "form": "tensor" if tensor else "lists",
        "request_bytes": len(payload),
        "response_bytes": len(encoded),
        "methods": {name: timeit(fn, budget) for name, fn in methods.items()},
    }


def report(cases: list[dict[str, Any]]) -> str:
    """Markdown table: best times, MB/s of the body, ratio to the anchor (medians in the JSON)."""
    rows = []
    for case in cases:
        m = case["methods"]
        label = f"{'x'.join(map(str, case['shape']))} {case['encoding']} {case['form']}"
        for op, size in (("decode", case["request_bytes"]), ("encode", case["response_bytes"])):
            ours, anchor = m[op]["min"], m[f"{op} anchor"]["min"]
            rows.append(
                [
                    label,
                    op,
                    f"{size / 1e6:.3f}",
                    fmt_time(ours),
                    f"{size / ours / 1e6:.0f}",
                    fmt_time(anchor),
                    f"{ours / anchor:.2f}",
                ]
            )
    headers = ["case", "op", "body MB", "app.codecs", "MB/s", "anchor", "ratio"]
    return table(headers, rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=0.5, help="seconds per method")
    parser.add_argument("--name", default="codecs", help="results file name")
    args = parser.parse_args(argv)
    cases = []
    for shape in SHAPES:
        for encoding in ("json", "msgpack"):
            for tensor in (False, True):
                print(f"{shape} {encoding} tensor={tensor} ...", file=sys.stderr, flush=True)
                cases.append(bench_case(shape, encoding, tensor, args.budget))
    print(report(cases))
    path = write_results(args.name, {"machine": machine(), "cases": cases})
    print(f"\nwritten: {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
