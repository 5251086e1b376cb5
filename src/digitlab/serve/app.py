"""The web service: a page to draw a digit on, and the JSON API behind it.

``POST /api/predict`` takes a PNG/JPEG (multipart field ``image``, or the raw bytes
with an ``image/*`` content type) or JSON ``{"pixels": 28x28 numbers}`` and answers
with the digit, the ten probabilities and the 28x28 image the network actually saw.
Preprocessing is :func:`digitlab.data.images.to_mnist`, the same function
``digitlab predict`` uses, so the page and the CLI cannot disagree.

Bad input of any kind gets a 4xx JSON answer ``{"detail": "..."}``; nothing a
client sends can make the service fail or stop.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from digitlab.data.images import load_image
from digitlab.errors import DigitlabError
from digitlab.nn.model_file import Model, load_model
from digitlab.predict import Prediction, predict_grayscale
from digitlab.serve.limits import BodySizeLimit

MAX_BODY_BYTES = 2_000_000
MAX_IMAGE_PIXELS = 4_000_000
STATIC = resources.files("digitlab.serve") / "static"
DEFAULT_MODEL = resources.files("digitlab.serve") / "default-model.npz"


def model_info(model: Model, name: str) -> dict[str, Any]:
    metrics = model.metrics
    return {
        "name": name,
        "layers": model.spec.layers,
        "activation": model.spec.activation,
        "cost": model.spec.cost,
        "test_accuracy": metrics.get("test_accuracy"),
        "validation_accuracy": metrics.get("validation_accuracy"),
        "spec": model.spec.model_dump(),
    }


def prediction_json(prediction: Prediction) -> dict[str, Any]:
    return {
        "digit": prediction.digit,
        "probabilities": [round(p, 6) for p in prediction.probabilities],
        "pixels": np.round(prediction.pixels, 3).tolist(),
    }


def pixels_from_json(body: bytes) -> np.ndarray:
    """A 28x28 array of finite numbers from ``{"pixels": [[...], ...]}``."""
    try:
        payload = json.loads(body)
        pixels = np.asarray(payload["pixels"], dtype=np.float64)
    except (ValueError, TypeError, KeyError):
        raise HTTPException(422, 'expected JSON {"pixels": a 28x28 array of numbers}') from None
    if pixels.shape != (28, 28):
        raise HTTPException(422, f"pixels must be a 28x28 array, got shape {list(pixels.shape)}")
    if not np.isfinite(pixels).all():
        raise HTTPException(422, "pixels contain NaN or infinite values")
    return pixels


async def image_from_request(request: Request) -> np.ndarray:
    """The grayscale image a request carries, whichever way it was sent."""
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        try:
            form = await request.form()
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
    if content_type.startswith("application/json"):
        return pixels_from_json(data)
    if not content_type.startswith(("multipart/form-data", "image/")):
        raise HTTPException(415, "send a PNG/JPEG image or JSON pixels")
    return load_image(data, max_pixels=MAX_IMAGE_PIXELS)


def create_app(model_path: Path | None = None) -> FastAPI:
    """The service for the model at ``model_path`` (the bundled model by default)."""
    with resources.as_file(DEFAULT_MODEL) as default:
        path = Path(model_path) if model_path else default
        model = load_model(path)
    info = model_info(model, path.name)

    app = FastAPI(
        title="digitlab",
        description="Recognise a handwritten digit with a network trained by digitlab.",
        version="1",
    )

    @app.exception_handler(DigitlabError)
    async def user_error(request: Request, exc: DigitlabError) -> JSONResponse:
        too_large = "too large" in str(exc)
        return JSONResponse({"detail": str(exc)}, status_code=413 if too_large else 422)

    @app.get("/api/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/api/model")
    def describe_model() -> dict[str, Any]:
        return info

    @app.post(
        "/api/predict",
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
                            "properties": {"pixels": {"type": "array", "items": {"type": "array"}}},
                        }
                    },
                    "image/png": {"schema": {"type": "string", "format": "binary"}},
                }
            }
        },
    )
    async def predict(request: Request) -> dict[str, Any]:
        """Digit, ten probabilities and the preprocessed 28x28 image."""
        image = await image_from_request(request)
        [prediction] = await run_in_threadpool(predict_grayscale, model, [image])
        return prediction_json(prediction)

    with resources.as_file(STATIC) as static:
        app.mount("/static", StaticFiles(directory=static), name="static")
        page = static / "index.html"

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(page)

    app.add_middleware(BodySizeLimit, max_bytes=MAX_BODY_BYTES)
    return app
