"""The explorer's routes: the page (HTML, CSS, JS shipped in the package), what the models are,
their images as PNG and Q's codes for an uploaded image. Every error is a JSON message."""

from __future__ import annotations

import sys
from importlib import resources
from urllib.parse import unquote

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from infogan.core.latent import MAX_STEPS
from infogan.errors import InfoGANError
from infogan.explore.runs import (
    MAX_CODE,
    MAX_SEED,
    MAX_UPLOAD_BYTES,
    ExploredRun,
    code_layout,
    encode_upload,
    image_png,
    parse_codes,
    parse_seed,
    parse_sweep,
    pick_run,
    traversal_png,
)

STATIC = {"index.html": "text/html", "explore.js": "text/javascript", "explore.css": "text/css"}
# Nothing from elsewhere: scripts, styles and images come from this server only.
POLICY = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; connect-src 'self'"
NO_STORE = {"Cache-Control": "no-store"}


def create_app(
    runs: list[ExploredRun], value_range: tuple[float, float] = (-2.0, 2.0), hosts: list[str] | None = None
) -> Starlette:
    """The explorer for `runs` (see `load_runs`); sliders start over `value_range`. Requests
    whose Host is not in `hosts` are refused (default: the loopback names; ["*"] for any)."""
    files = {name: (resources.files(__package__) / "static" / name).read_bytes() for name in STATIC}
    loaded = next(run.model for run in runs if run.model is not None)

    def page(request: Request) -> Response:
        name = request.path_params.get("name", "index.html")
        if name not in files:
            raise HTTPException(404, f"no file {name!r} here")
        headers = {"Content-Security-Policy": POLICY, "Cache-Control": "no-cache"}
        return Response(files[name], media_type=STATIC[name], headers=headers)

    def info(request: Request) -> Response:
        return JSONResponse(
            {
                "runs": [run.describe() for run in runs],
                "controls": code_layout(loaded),
                "range": list(value_range),
                "limits": {"code": MAX_CODE, "seed": MAX_SEED, "steps": MAX_STEPS, "upload_bytes": MAX_UPLOAD_BYTES},
            },
            headers=NO_STORE,
        )

    def image(request: Request) -> Response:
        query = request.query_params
        model = pick_run(runs, query.get("run"))
        png = image_png(model, parse_codes(query, model), parse_seed(query.get("seed")))
        return Response(png, media_type="image/png", headers=NO_STORE)

    def traverse(request: Request) -> Response:
        query = request.query_params
        model = pick_run(runs, query.get("run"))
        name, values = parse_sweep(query, model)
        codes = parse_codes(query, model)
        png = traversal_png(model, codes, parse_seed(query.get("seed")), name, values)
        return Response(png, media_type="image/png", headers=NO_STORE)

    async def encode(request: Request) -> Response:
        payload = await _read_upload(request)
        filename = unquote(request.headers.get("x-filename", ""))
        return JSONResponse(await run_in_threadpool(encode_upload, runs, payload, filename), headers=NO_STORE)

    routes = [
        Route("/", page),
        Route("/static/{name}", page),
        Route("/api/info", info),
        Route("/api/image", image),
        Route("/api/traverse", traverse),
        Route("/api/encode", encode, methods=["POST"]),
    ]
    middleware = [Middleware(TrustedHostMiddleware, allowed_hosts=hosts or ["127.0.0.1", "localhost"])]
    handlers = {InfoGANError: _bad_input, HTTPException: _http_error, Exception: _internal_error}
    return Starlette(routes=routes, middleware=middleware, exception_handlers=handlers)


async def _read_upload(request: Request) -> bytes:
    """The request body, refused (413) as soon as it is known to be over MAX_UPLOAD_BYTES."""
    too_large = HTTPException(413, f"the file is over {MAX_UPLOAD_BYTES // 2**20} MB: give a smaller image")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_UPLOAD_BYTES:
        raise too_large
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_UPLOAD_BYTES:
                raise too_large
            chunks.append(chunk)
    except ClientDisconnect:  # the tab was closed or the connection dropped mid-upload
        raise HTTPException(400, "the upload was cut off before its end; try again") from None
    return b"".join(chunks)


async def _bad_input(request: Request, exc: InfoGANError) -> Response:
    return JSONResponse({"error": str(exc)}, status_code=400, headers=NO_STORE)


async def _http_error(request: Request, exc: HTTPException) -> Response:
    return JSONResponse({"error": exc.detail}, status_code=exc.status_code, headers=NO_STORE)


async def _internal_error(request: Request, exc: Exception) -> Response:
    print(f"explore: {request.url.path} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
    message = f"the server failed on this request ({type(exc).__name__}: {exc}); its terminal may say more"
    return JSONResponse({"error": message}, status_code=500, headers=NO_STORE)
