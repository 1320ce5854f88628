"""The HTTP service: `POST /v1/summarize`, health, the model's description and the review page.

The contract (fields, limits, status codes) is docs/serve.md. What this module guarantees besides:
- a response never carries a stack trace, and bad input never gets a 500;
- the log has one line per request (method, path, status, latency, report count) and never report
  or impression text: report text is patient data;
- the model loads once, on a thread, so that `/healthz` answers while it loads and `/readyz` after.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import re
import threading
import time
from collections.abc import Callable
from contextlib import asynccontextmanager
from dataclasses import asdict
from importlib import resources
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from petsum.serve.batcher import Batcher, Closed, QueueFull
from petsum.serve.settings import MAX_CONSENSUS, ServeSettings
from shared.textio import InputError

if TYPE_CHECKING:
    from petsum.summarize.summarizer import Summarizer

log = logging.getLogger("petsum.serve")
RETRY_AFTER_S = 1  # a full queue drains in about a batch's time
STATIC = resources.files("petsum.serve") / "static"


class ReportIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=256)
    text: str

    @field_validator("id")
    @classmethod
    def _encodable(cls, value: str) -> str:
        """An id goes back in the answer: it must be text UTF-8 can encode (no lone surrogate)."""
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("must be valid Unicode text") from None
        return value


class SummarizeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reports: list[ReportIn] = Field(min_length=1)
    consensus: int | None = Field(None, ge=0, le=MAX_CONSENSUS, strict=True, description="draws per finding; 0: greedy")


class ServiceError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


def schema_message(errors: list[dict[str, Any]]) -> str:
    """Pydantic's errors as `field: problem` pairs, without the input values (report text)."""
    parts = []
    for err in errors[:5]:
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    return "; ".join(parts) + ("; …" if len(errors) > 5 else "")


class Service:
    """The app's state: the settings, the summarizer once loaded, and its batcher."""

    def __init__(self, settings: ServeSettings, load: Callable[[ServeSettings], "Summarizer"]):
        self.settings = settings
        self.load = load
        self.summarizer: Summarizer | None = None
        self.batcher: Batcher | None = None
        self.load_error: str | None = None
        self.decoding: dict = {}
        self.on_load_error: Callable[[], None] | None = None  # the CLI stops the server

    def start(self) -> None:
        threading.Thread(target=self._load, name="petsum-load", daemon=True).start()

    def _load(self) -> None:
        try:
            summarizer = self.load(self.settings)
        except Exception as e:  # noqa: BLE001 - reported as one line, the process then exits
            self.load_error = str(e).splitlines()[0] if str(e) else type(e).__name__
            log.error("model failed to load: %s", self.load_error)
            if self.on_load_error:
                self.on_load_error()
            return
        s = self.settings
        self.decoding = summarizer.models.generate.model_dump()  # the batcher swaps it per request's consensus
        self.batcher = Batcher(summarizer, s.max_batch, s.max_wait_ms, s.max_queue)
        self.summarizer = summarizer
        log.info("model loaded: %s", summarizer.path.name)

    def stop(self) -> None:
        if self.batcher:
            self.batcher.close(timeout=self.settings.timeout_s)

    def describe(self) -> dict:
        from petsum.summarize.folder import headline_metrics

        assert self.summarizer is not None
        models = self.summarizer.models
        return {
            "name": self.summarizer.path.name,
            "method": models.method,
            "backend": models.backend,
            "providers": models.providers,
            "decoding": self.decoding,
            "metrics": headline_metrics(self.summarizer.path),
            "batching": asdict(self.batcher.stats) if self.batcher else None,
            "limits": {
                "max_reports": self.settings.max_reports,
                "max_report_chars": self.settings.max_report_chars,
                "max_body_bytes": self.settings.max_body_bytes,
                "max_consensus": MAX_CONSENSUS,
            },
        }


def create_app(settings: ServeSettings, load: Callable[[ServeSettings], "Summarizer"]) -> FastAPI:
    """The service over the model `load(settings)` returns (loaded once, on a thread)."""
    service = Service(settings, load)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        service.start()
        yield
        await asyncio.to_thread(service.stop)  # requests in flight were answered: uvicorn drains them first

    app = FastAPI(
        title="petsum",
        summary="Draft impressions for the findings of Chinese PET/CT reports",
        version="1",
        lifespan=lifespan,
        docs_url=None,  # Swagger UI loads from a CDN: hospital networks are offline
        redoc_url=None,
    )
    app.state.service = service
    app.add_middleware(AccessLog, settings=settings)

    @app.exception_handler(ServiceError)
    async def service_error(_request: Request, e: ServiceError) -> JSONResponse:
        return error_response(e.status, e.code, e.message, e.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, e: RequestValidationError) -> JSONResponse:
        return error_response(422, "invalid_request", schema_message(list(e.errors())))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, e: StarletteHTTPException) -> JSONResponse:
        return error_response(e.status_code, "http_error", str(e.detail), getattr(e, "headers", None))

    @app.get("/healthz", summary="Answers while the process is alive")
    async def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/readyz", summary="Answers 200 once the model is loaded, 503 before")
    async def readyz() -> JSONResponse:
        if service.summarizer is not None:
            return JSONResponse({"status": "ready"})
        return JSONResponse({"status": "failed" if service.load_error else "loading"}, status_code=503)

    @app.get("/v1/model", summary="The model: name, method, decoding settings, headline metrics, limits")
    async def model() -> dict:
        _ready(service)
        return service.describe()

    @app.post(
        "/v1/summarize",
        summary="Draft impressions for a list of reports, in request order",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": SummarizeRequest.model_json_schema()}},
            }
        },
    )
    async def summarize(request: Request) -> JSONResponse:
        try:
            async with asyncio.timeout(settings.body_timeout_s):
                body = await _body(request, settings.max_body_bytes)
        except TimeoutError:
            raise ServiceError(
                408, "body_timeout", f"the body did not arrive within {settings.body_timeout_s:g} s"
            ) from None
        req = _parsed(body)
        request.state.reports = len(req.reports)
        _check_limits(req, settings)
        batcher = _ready(service)
        assert service.summarizer is not None
        if req.consensus and service.summarizer.models.method != "direct":
            raise ServiceError(422, "invalid_request", "consensus: consensus decoding is for direct models")
        try:
            future = batcher.submit([r.text for r in req.reports], req.consensus)
        except QueueFull:
            raise ServiceError(503, "busy", "too many reports waiting", {"Retry-After": str(RETRY_AFTER_S)}) from None
        except Closed:
            raise ServiceError(503, "shutting_down", "the service is shutting down") from None
        results = await _answer(request, asyncio.wrap_future(future), settings.timeout_s)
        if results is None:  # the client went away: nobody reads this
            return error_response(499, "client_closed", "client closed the request")
        name = service.summarizer.path.name
        return JSONResponse({"model": name, "results": [_result(r.id, res) for r, res in zip(req.reports, results)]})

    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(str(STATIC / "index.html"), media_type="text/html; charset=utf-8")

    return app


_LOGGED_PATHS = {"/", "/healthz", "/readyz", "/v1/model", "/v1/summarize", "/openapi.json"}
_STATIC_FILE = re.compile(r"/static/[A-Za-z0-9_.-]{1,64}")
_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}


def logged_path(path: str) -> str:
    """The path as the log may say it: one of ours, else `(other)`, since a client may put any text in a path."""
    return path if path in _LOGGED_PATHS or _STATIC_FILE.fullmatch(path) else "(other)"


def logged_method(method: str | None) -> str:
    """The method as the log may say it: a standard one, else `(other)` (a client chooses it too)."""
    return method if method in _METHODS else "(other)"


class AccessLog:
    """Plain ASGI middleware (not `BaseHTTPMiddleware`, whose receive wrapper hides a client's
    disconnect from the endpoint): the `/v1` key check, one log line per request with counts
    only, and a JSON 500 without a stack trace for anything unexpected, logged by type only."""

    def __init__(self, app, settings: ServeSettings):
        self.app, self.settings = app, settings

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        state = scope.setdefault("state", {})
        state["reports"] = 0
        status = {"code": 0, "started": False}

        async def sending(message) -> None:
            if message["type"] == "http.response.start":
                status["code"], status["started"] = message["status"], True
            await send(message)

        path = scope.get("path", "")
        try:
            if path.startswith("/v1/") and self.settings.api_key is not None and not _authorized(scope, self.settings):
                response = error_response(401, "unauthorized", "a valid API key is required (Authorization: Bearer …)")
                response.headers["WWW-Authenticate"] = "Bearer"
                await response(scope, receive, sending)
            else:
                await self.app(scope, receive, sending)
        except Exception as e:  # noqa: BLE001 - never a stack trace in a response or the log
            log.error(
                "internal error on %s %s: %s", logged_method(scope.get("method")), logged_path(path), type(e).__name__
            )
            if not status["started"]:
                await error_response(500, "internal", "internal error")(scope, receive, sending)
        log.info(
            "%s %s %d %.1fms reports=%d",
            logged_method(scope.get("method")),
            logged_path(path),
            status["code"],
            (time.perf_counter() - start) * 1000,
            state.get("reports", 0),
        )


def _authorized(scope, settings: ServeSettings) -> bool:
    given = next((v.decode("latin-1") for k, v in scope.get("headers", []) if k == b"authorization"), "")
    scheme, _, key = given.partition(" ")
    expected = (settings.api_key or "").encode()
    # compare_digest on bytes of any length: constant time in the key's content
    return scheme.lower() == "bearer" and hmac.compare_digest(key.strip().encode(), expected)


def _ready(service: Service) -> Batcher:
    if service.batcher is None:
        raise ServiceError(503, "loading", "the model is loading", {"Retry-After": "5"})
    return service.batcher


async def _body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ServiceError(413, "too_large", f"the request body is over {limit} bytes")
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise ServiceError(413, "too_large", f"the request body is over {limit} bytes")
            chunks.append(chunk)
    except ClientDisconnect:
        raise ServiceError(499, "client_closed", "client closed the request") from None
    return b"".join(chunks)


def _parsed(body: bytes) -> SummarizeRequest:
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):  # RecursionError: nesting no request has
        raise ServiceError(400, "bad_json", "the body is not JSON in UTF-8") from None
    try:
        req = SummarizeRequest.model_validate(data)
    except ValidationError as e:
        raise ServiceError(422, "invalid_request", schema_message(list(e.errors()))) from None
    ids = [r.id for r in req.reports]
    if len(set(ids)) != len(ids):
        raise ServiceError(422, "invalid_request", "reports: every id must be unique within a request")
    return req


def _check_limits(req: SummarizeRequest, settings: ServeSettings) -> None:
    if len(req.reports) > settings.max_reports:
        raise ServiceError(
            413, "too_large", f"{len(req.reports)} reports in one request (at most {settings.max_reports})"
        )
    for k, r in enumerate(req.reports):
        if len(r.text) > settings.max_report_chars:
            raise ServiceError(
                413, "too_large", f"reports[{k}]: {len(r.text)} characters (at most {settings.max_report_chars})"
            )


async def _answer(request: Request, future: asyncio.Future, timeout: float) -> list | None:
    """The batch's results for this request; None when the client disconnected first (the request
    is then cancelled: the batcher skips it unless it is decoding). 504 past the request timeout."""
    deadline = time.monotonic() + timeout
    while True:
        done, _ = await asyncio.wait({future}, timeout=min(0.25, max(0.0, deadline - time.monotonic())))
        if done:
            return future.result()
        if await request.is_disconnected():
            future.cancel()
            return None
        if time.monotonic() >= deadline:
            future.cancel()
            raise ServiceError(504, "timeout", f"no answer within {timeout:g} s")


def _result(report_id: str, res: Any) -> dict:
    if isinstance(res, InputError):
        return {"id": report_id, "error": str(res)}
    if isinstance(res, Exception):
        return {"id": report_id, "error": f"this report could not be summarized ({type(res).__name__})"}
    return {"id": report_id, "impression": res.impression, **res.structured(), "warnings": res.warnings}
