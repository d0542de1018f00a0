#!/usr/bin/env bash
# Regenerate the Python code of app/api/grpc/protos/*.proto (messages and their type stubs)
# with the locked grpcio-tools; tests/grpc/test_protos.py fails when it is out of date.
#
#   bash scripts/protos.sh
#
# The messages go into a descriptor pool of their own, not protobuf's default one: the
# protocol's package is "inference" in every copy of it (tritonclient's, KServe's), and
# two copies in one default pool are duplicate symbols, an import error.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-.}"
"${PYTHON:-.venv/bin/python}" -m grpc_tools.protoc -I. --python_out="$out" --pyi_out="$out" \
    app/api/grpc/protos/grpc_predict_v2.proto
generated="$out/app/api/grpc/protos/grpc_predict_v2_pb2.py"
sed -i \
    -e "/^from google.protobuf import symbol_database/d" \
    -e 's/^_sym_db = _symbol_database.Default()$/_pool = _descriptor_pool.DescriptorPool()/' \
    -e 's/_descriptor_pool.Default().AddSerializedFile/_pool.AddSerializedFile/' \
    "$generated"
