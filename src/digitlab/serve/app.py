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

import json
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from anyio import CapacityLimiter, to_thread
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel
from threadpoolctl import threadpool_limits

from digitlab.data.images import load_image
from digitlab.errors import DigitlabError, ImageTooLargeError
from digitlab.evaluation.saliency import occlusion_map
from digitlab.nn.model_file import Model, load_model
from digitlab.predict import BUNDLED_NAME, Prediction, load_bundled_model, predict_grayscale
from digitlab.presets import preset_of
from digitlab.serve.limits import BodySizeLimit, BodyStalled, BodyTooLarge
from digitlab.spec import IMAGE_SHAPE

MAX_BODY_BYTES = 2_000_000
MAX_IMAGE_PIXELS = 4_000_000
#: Threads that decode and predict at once: one per core.
PREDICT_WORKERS = os.cpu_count() or 1
#: Requests allowed to wait for a worker; past that the service answers 503 at once
#: rather than queue without bound (each waiting request holds its body in memory).
MAX_WAITING = 64
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
    }


def prediction_json(prediction: Prediction, saliency: np.ndarray | None = None) -> dict[str, Any]:
    answer = {
        "digit": prediction.digit,
        "probabilities": [round(p, 6) for p in prediction.probabilities],
        "unsure": prediction.unsure,
        "unlike_digits": prediction.unlike_digits,
        "contenders": [
            {"digit": c.digit, "probability": round(c.probability, 6)}
            for c in prediction.contenders
        ],
        "pixels": np.round(prediction.pixels, 3).tolist(),
    }
    if saliency is not None:
        answer["saliency"] = np.round(saliency, 3).tolist()
    return answer


def pixels_from_json(body: bytes) -> np.ndarray:
    """A 28x28 array of finite numbers from ``{"pixels": [[...], ...]}``."""
    expected = 'expected JSON {"pixels": a 28x28 array of numbers}'
    try:
        rows = json.loads(body)["pixels"]
        if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
            raise TypeError
        if any(isinstance(v, bool) or not isinstance(v, int | float) for r in rows for v in r):
            raise TypeError  # true/false and strings are not grey levels
        pixels = np.asarray(rows, dtype=np.float64)
    except (ValueError, TypeError, KeyError, OverflowError, RecursionError):
        raise HTTPException(422, expected) from None
    if pixels.shape != IMAGE_SHAPE:
        raise HTTPException(422, f"pixels must be a 28x28 array, got shape {list(pixels.shape)}")
    if not np.isfinite(pixels).all():
        raise HTTPException(422, "pixels contain NaN or infinite values")
    return pixels


class Problem(BaseModel):
    """Every 4xx answer: one sentence saying what is wrong with the request."""

    detail: str


@dataclass(frozen=True)
class Upload:
    """A request's picture, as sent: the bytes of an image file, or of JSON pixels."""

    data: bytes
    is_json: bool

    def image(self) -> np.ndarray:
        """The grayscale image (decoding is CPU work: done in a worker, not the loop)."""
        if self.is_json:
            return pixels_from_json(self.data)
        return load_image(self.data, max_pixels=MAX_IMAGE_PIXELS)


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


#: How ``digitlab serve --workers N`` tells its worker processes which model to serve
#: (empty: the bundled model): each process builds its own app from it.
MODEL_ENV = "DIGITLAB_SERVE_MODEL"


def app_from_environment() -> FastAPI:
    """The app for one of several worker processes: the model named by :data:`MODEL_ENV`,
    with one BLAS thread (see :func:`create_app`)."""
    threadpool_limits(1, "blas")
    return create_app(Path(os.environ[MODEL_ENV]) if os.environ.get(MODEL_ENV) else None)


def create_app(model_path: Path | None = None) -> FastAPI:
    """The service for the model at ``model_path`` (the bundled model by default).

    A process serving it does best with one BLAS thread (``digitlab serve`` sets that):
    the cores already answer requests side by side, and one picture's products are too
    small to split."""
    if model_path is None:
        model, name = load_bundled_model(), BUNDLED_NAME
    else:
        model, name = load_model(Path(model_path)), Path(model_path).name
    info = model_info(model, name)

    app = FastAPI(
        title="digitlab",
        description="Recognise a handwritten digit with a network trained by digitlab.",
        version="1",
    )

    @app.exception_handler(RequestValidationError)
    async def bad_parameter(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first.get("loc", ()))
        return JSONResponse({"detail": f"{where}: {first.get('msg')}"}, status_code=422)

    @app.exception_handler(DigitlabError)
    async def user_error(request: Request, exc: DigitlabError) -> JSONResponse:
        too_large = isinstance(exc, ImageTooLargeError)
        return JSONResponse({"detail": str(exc)}, status_code=413 if too_large else 422)

    # Decoding and predicting run in a pool of PREDICT_WORKERS threads, so a burst of
    # large pictures queues there while the event loop stays free for /api/health.
    workers = CapacityLimiter(PREDICT_WORKERS)

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
            503: {"model": Problem, "description": "Too many requests waiting; try again."},
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
    async def predict(request: Request, saliency: bool = False) -> JSONResponse:
        """Digit, ten probabilities, doubt (``unsure``: null when the model is not
        calibrated; ``unlike_digits``: whether that is because the image is unlike any
        digit, null when the model cannot tell; the three most probable digits) and the
        preprocessed 28x28 image; ``saliency=true`` adds a 28x28 map in [0, 1] of the
        ink the answer depended on most (occlusion: erasing it lowers the answer's
        probability most)."""
        upload = await upload_from_request(request)
        if workers.statistics().tasks_waiting >= MAX_WAITING:
            raise HTTPException(503, "the service is busy; try again in a moment")
        return await to_thread.run_sync(answer, upload, saliency, limiter=workers)

    def answer(upload: Upload, saliency: bool) -> JSONResponse:
        # The response is encoded here, in the worker, and returned as it is: FastAPI's
        # own encoding of a returned dict walks every number in Python, on the event loop.
        [prediction] = predict_grayscale(model, [upload.image()])
        where = occlusion_map(model, prediction.pixels, prediction.digit) if saliency else None
        return JSONResponse(prediction_json(prediction, where))

    with resources.as_file(STATIC) as static:
        app.mount("/static", StaticFiles(directory=static), name="static")
        page = static / "index.html"

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(page)

    app.add_middleware(BodySizeLimit, max_bytes=MAX_BODY_BYTES)
    return app
