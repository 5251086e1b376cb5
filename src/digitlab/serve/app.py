"""The web service: a page to draw a digit on, and the JSON API behind it.

``POST /api/predict`` takes a PNG/JPEG (multipart field ``image``, or the raw bytes
with an ``image/*`` content type) or JSON ``{"pixels": 28x28 numbers}`` and answers
with the digit, the ten probabilities, whether the model is unsure and the three digits
it considers, and the 28x28 image the network actually saw; with ``?saliency=true``
also where it looked (:mod:`digitlab.evaluation.saliency`).
Preprocessing is :func:`digitlab.data.images.to_mnist`, the same function
``digitlab predict`` uses, so the page and the CLI cannot disagree.

Bad input of any kind gets a 4xx JSON answer ``{"detail": "..."}``; nothing a
client sends can make the service fail or stop.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel

from digitlab.nn.model_file import Model, load_model
from digitlab.predict import BUNDLED_NAME, load_bundled_model
from digitlab.presets import preset_of
from digitlab.serve.answers import InProcesses, InThreads, Upload
from digitlab.serve.limits import BodySizeLimit, BodyStalled, BodyTooLarge

MAX_BODY_BYTES = 2_000_000
STATIC = resources.files("digitlab.serve") / "static"


def model_info(model: Model, name: str) -> dict[str, Any]:
    metrics = model.metrics
    calibration = model.calibration
    return {
        "name": name,
        "preset": preset_of(model.spec),
        "layers": model.spec.layers,
        "activation": model.spec.activation,
        "cost": model.spec.cost,
        "test_accuracy": metrics.test_accuracy,
        "validation_accuracy": metrics.validation_accuracy,
        "calibrated": calibration is not None,
        "unsure_below": None if calibration is None else calibration.unsure_below,
        "knows_digit_features": calibration is not None and calibration.digit_features is not None,
        "spec": model.spec.model_dump(),
        "started_from": model.started_from,
        "trained_on": model.trained_on,
    }


class Problem(BaseModel):
    """Every 4xx answer: one sentence saying what is wrong with the request."""

    detail: str


async def upload_from_request(request: Request) -> Upload:
    """The picture a request carries, whichever way it was sent, still undecoded."""
    content_type = request.headers.get("content-type", "").lower()
    if content_type.startswith("multipart/form-data"):
        try:
            form = await request.form()
        except (BodyTooLarge, BodyStalled):
            raise  # the size limit's own answers (413, 408)
        except Exception:  # the multipart parser's own errors: malformed upload
            raise HTTPException(400, "malformed multipart upload") from None
        upload = form.get("image")
        if upload is None or isinstance(upload, str):
            raise HTTPException(422, "attach the picture as a file in the form field 'image'")
        data = await upload.read()
    else:
        data = await request.body()
    if not data:
        raise HTTPException(400, "the request body is empty")
    if not content_type.startswith(("multipart/form-data", "image/", "application/json")):
        raise HTTPException(415, "send a PNG/JPEG image or JSON pixels")
    return Upload(data, content_type.startswith("application/json"))


def create_app(model_path: Path | None = None, processes: int = 0) -> FastAPI:
    """The service for the model at ``model_path`` (the bundled model by default).

    Pictures are answered in ``processes`` processes fed from one queue
    (:class:`~digitlab.serve.answers.InProcesses`; ``digitlab serve`` uses one per core),
    or with ``processes=0`` in worker threads of this process
    (:class:`~digitlab.serve.answers.InThreads`: nothing to start, for tests and
    notebooks).  Either way the event loop stays free, so ``/api/health`` answers at
    once while a burst of large pictures waits."""
    if model_path is None:
        model, name = load_bundled_model(), BUNDLED_NAME
    else:
        model, name = load_model(Path(model_path)), Path(model_path).name
    info = model_info(model, name)
    answers = InProcesses(model, processes) if processes else InThreads(model)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        answers.close()

    app = FastAPI(
        title="digitlab",
        description="Recognise a handwritten digit with a network trained by digitlab.",
        version="1",
        lifespan=lifespan,
    )

    @app.exception_handler(RequestValidationError)
    async def bad_parameter(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first.get("loc", ()))
        return JSONResponse({"detail": f"{where}: {first.get('msg')}"}, status_code=422)

    @app.get("/api/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/api/model")
    async def describe_model() -> dict[str, Any]:
        return info

    @app.post(
        "/api/predict",
        responses={
            400: {"model": Problem, "description": "An empty body or a malformed upload."},
            408: {"model": Problem, "description": "The body stopped arriving (10 s)."},
            413: {"model": Problem, "description": "Over 2 MB, or over 4 megapixels."},
            415: {"model": Problem, "description": "Neither an image nor JSON pixels."},
            503: {
                "model": Problem,
                "description": "Too many requests waiting, or an answering process stopped; "
                "try again.",
            },
            422: {
                "model": Problem,
                "description": "Not a readable image, no digit in it (blank), or pixels "
                "that are not a 28x28 array of finite numbers, or a bad query parameter.",
            },
        },
        openapi_extra={
            "requestBody": {
                "content": {
                    "multipart/form-data": {
                        "schema": {
                            "type": "object",
                            "properties": {"image": {"type": "string", "format": "binary"}},
                        }
                    },
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["pixels"],
                            "properties": {
                                "pixels": {
                                    "type": "array",
                                    "minItems": 28,
                                    "maxItems": 28,
                                    "items": {
                                        "type": "array",
                                        "minItems": 28,
                                        "maxItems": 28,
                                        "items": {"type": "number"},
                                    },
                                }
                            },
                        }
                    },
                    "image/png": {"schema": {"type": "string", "format": "binary"}},
                }
            }
        },
    )
    async def predict(request: Request, saliency: bool = False) -> Response:
        """Digit, ten probabilities, doubt (``unsure``: null when the model is not
        calibrated; ``unlike_digits``: whether that is because the image is unlike any
        digit, null when the model cannot tell; the three most probable digits) and the
        preprocessed 28x28 image; ``saliency=true`` adds a 28x28 map in [0, 1] of the
        ink the answer depended on most (occlusion: erasing it lowers the answer's
        probability most)."""
        reply = await answers.answer(await upload_from_request(request), saliency)
        return Response(reply.body, status_code=reply.status, media_type="application/json")

    with resources.as_file(STATIC) as static:
        app.mount("/static", StaticFiles(directory=static), name="static")
        page = static / "index.html"

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(page)

    app.add_middleware(BodySizeLimit, max_bytes=MAX_BODY_BYTES)
    return app
