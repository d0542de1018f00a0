"""Open Inference Protocol (KServe V2) REST routes, with Triton's binary tensor extension."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.responses import Response

import app as package
from app.api.scoring import Lane
from app.api.v2 import docs, schemas
from app.api.v2.infer import InferApp, infer
from app.api.v2.models import MODELS, VERSION, find_model

__all__ = ["infer_lane", "router"]

router = APIRouter(prefix="/v2", tags=["open inference protocol"])


def _ready(request: Request) -> bool:
    return request.app.state.capacity.not_ready() is None


@router.get("", operation_id="serverMetadata", summary="Server metadata")
async def server_metadata() -> schemas.ServerMetadata:
    """The server's name, version and protocol extensions."""
    return schemas.ServerMetadata(
        name="scorer",
        version=package.__version__,
        extensions=["binary_tensor_data", "model_configuration"],
    )


@router.get("/health/live", operation_id="serverLive", summary="Server liveness")
async def server_live() -> schemas.ServerLive:
    """200 while the process serves requests."""
    return schemas.ServerLive(live=True)


@router.get(
    "/health/ready",
    operation_id="serverReady",
    response_model=schemas.ServerReady,
    summary="Server readiness",
    responses=docs.NOT_READY,
)
async def server_ready(request: Request) -> Response:
    """200 when this worker takes inference requests; 503 while starting or draining."""
    ready = _ready(request)
    return JSONResponse({"ready": ready}, status_code=200 if ready else 503)


@router.get(
    "/models/{name}",
    operation_id="modelMetadata",
    response_model=schemas.ModelMetadata,
    summary="Model metadata",
    responses=docs.NOT_FOUND,
)
async def model_metadata(name: str) -> Response:
    """Inputs and outputs of a model: cross-entropy, binary-cross-entropy or softmax."""
    model = find_model(name)
    body = schemas.ModelMetadata(
        name=model.name,
        versions=[VERSION],
        platform="scorer",
        inputs=[schemas.TensorMetadata(**spec.metadata()) for spec in model.inputs],
        outputs=[schemas.TensorMetadata(**spec.metadata()) for spec in model.outputs],
    )
    return JSONResponse(body.model_dump())


@router.get(
    "/models/{name}/ready",
    operation_id="modelReady",
    response_model=schemas.ModelReady,
    summary="Model readiness",
    responses={**docs.NOT_FOUND, **docs.NOT_READY},
)
async def model_ready(request: Request, name: str) -> Response:
    """200 when the model takes inference requests (always, once the server is ready)."""
    model = find_model(name)
    ready = _ready(request)
    return JSONResponse({"name": model.name, "ready": ready}, status_code=200 if ready else 503)


@router.get(
    "/models/{name}/config",
    operation_id="modelConfig",
    response_model=schemas.ModelConfig,
    summary="Model configuration (Triton)",
    responses=docs.NOT_FOUND,
)
async def model_config(name: str) -> Response:
    """Triton-style configuration: tensors as data_type and dims, no batching dimension."""
    model = find_model(name)
    body = schemas.ModelConfig(
        name=model.name,
        platform="scorer",
        backend="numpy",
        max_batch_size=0,
        input=[schemas.ConfigTensor(**spec.config()) for spec in model.inputs],
        output=[schemas.ConfigTensor(**spec.config()) for spec in model.outputs],
    )
    return JSONResponse(body.model_dump())


@router.post(
    "/models/{name}/infer",
    operation_id="modelInfer",
    summary="Inference: score a batch",
    response_class=Response,
    openapi_extra=docs.INFER,
)
async def model_infer(request: Request, name: str) -> Response:
    """Score the inputs with the named model; JSON tensors or Triton's binary extension."""
    model = find_model(name)
    return await infer(request.scope, request.receive, model)


@router.post(
    "/models/{name}/versions/{version}/infer",
    operation_id="modelVersionInfer",
    summary="Inference on a model version",
    response_class=Response,
    openapi_extra=docs.INFER,
)
async def model_version_infer(request: Request, name: str, version: str) -> Response:
    """As modelInfer; every model has the single version 1."""
    model = find_model(name, version)
    return await infer(request.scope, request.receive, model)


def infer_lane() -> Lane:
    """The inference paths of the known models, for the scoring lane (as /v1 has).

    FastAPI's route matching and dependency solving cost a small request more than the
    request's own work (bench/README.md, design decisions), so the lane serves
    ``/v2/models/{name}/infer`` and ``/v2/models/{name}/versions/1/infer`` directly, and
    records the route above as the router would. Unknown models and versions go on to the
    router, whose routes answer 404.
    """
    named = {route.name: route for route in router.routes if isinstance(route, APIRoute)}
    plain, versioned = named["model_infer"], named["model_version_infer"]
    apps = {name: InferApp(model) for name, model in MODELS.items()}
    prefix, suffix = "/v2/models/", "/infer"

    def lane(path: str) -> tuple[APIRoute, InferApp] | None:
        if not (path.startswith(prefix) and path.endswith(suffix)):
            return None
        name, *rest = path[len(prefix) : -len(suffix)].split("/")
        if not rest:
            route = plain
        elif rest == ["versions", VERSION]:
            route = versioned
        else:
            return None
        app = apps.get(name)
        return None if app is None else (route, app)

    return lane
