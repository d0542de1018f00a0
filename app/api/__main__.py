"""``python -m app.api``: write the OpenAPI document to ``openapi/openapi.json``."""

from __future__ import annotations

import sys

from app.api.openapi import SPEC_PATH, render
from app.main import app

SPEC_PATH.write_text(render(app), encoding="utf-8")
sys.stdout.write(f"wrote {SPEC_PATH}\n")
