"""The Open Inference Protocol (KServe V2) front door over the same core as /v1."""

from app.api.v2.routes import infer_lane, router

__all__ = ["infer_lane", "router"]
