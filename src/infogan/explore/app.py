"""The explorer's routes: the page (HTML, CSS, JS shipped in the package), what the models are,
their images as PNG and Q's codes for an uploaded image. Every error is a JSON message.

Who may ask: requests whose Host is not one of the explorer's names are refused (400: DNS
rebinding), and so are requests to anything but the page's own files that another web site's
page makes (403: its `Origin` is not this explorer, or `Sec-Fetch-Site` says cross-site or
same-site); requests without those headers (curl, scripts) are served. Uploads are encoded
MAX_ENCODES at a time; others wait up to ENCODE_WAIT_S, then get 503."""

from __future__ import annotations

import sys
from importlib import resources
from urllib.parse import unquote, urlsplit

import anyio
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

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
# Nothing from elsewhere: scripts, styles and images come from this server only; no other site's page
# may show this one in a frame (where it could be clicked through).
POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; connect-src 'self'; "
    "frame-ancestors 'none'"
)
NO_STORE = {"Cache-Control": "no-store"}
MAX_ENCODES = 2  # uploads decoded and encoded at once (each up to pixel_limit pixels)
ENCODE_WAIT_S = 5.0  # how long another upload waits for its turn before a 503


def create_app(
    runs: list[ExploredRun], value_range: tuple[float, float] = (-2.0, 2.0), hosts: list[str] | None = None
) -> Starlette:
    """The explorer for `runs` (see `load_runs`); sliders start over `value_range`. Requests
    whose Host is not in `hosts` are refused (default: the loopback names; ["*"] for any), and
    so are requests from other web sites' pages (see the module's notes)."""
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

    slots = anyio.Semaphore(MAX_ENCODES)

    async def encode(request: Request) -> Response:
        payload = await _read_upload(request)  # before taking a slot: a slow upload holds none
        filename = unquote(request.headers.get("x-filename", ""))
        await _wait_turn(slots)
        try:
            result = await run_in_threadpool(encode_upload, runs, payload, filename)
        finally:
            slots.release()
        return JSONResponse(result, headers=NO_STORE)

    routes = [
        Route("/", page),
        Route("/static/{name}", page),
        Route("/api/info", info),
        Route("/api/image", image),
        Route("/api/traverse", traverse),
        Route("/api/encode", encode, methods=["POST"]),
    ]
    middleware = [
        Middleware(TrustedHostMiddleware, allowed_hosts=hosts or ["127.0.0.1", "localhost", "[::1]"]),
        Middleware(SameOriginOnly),
    ]
    handlers = {InfoGANError: _bad_input, HTTPException: _http_error, Exception: _internal_error}
    return Starlette(routes=routes, middleware=middleware, exception_handlers=handlers)


class SameOriginOnly:
    """Refuses (403), before any work, a request to anything but the page's own files that
    another web site's page made: its `Origin` is not this explorer's (scheme http or https and
    the Host the request was sent to), or its `Sec-Fetch-Site` is cross-site or same-site (a
    page on another port of the same host is same-site). Requests with neither header (curl,
    scripts) and the browser's own navigation (`Sec-Fetch-Site: none`) are served."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not _static(scope["path"]):
            headers = Headers(scope=scope)
            elsewhere = _from_elsewhere(headers)
            if elsewhere:
                host = headers.get("host", "")
                message = (
                    f"refused: this request comes from a page of another web site ({elsewhere}), and the explorer "
                    f"answers only its own page: open http://{host}/ and use it there"
                )
                await JSONResponse({"error": message}, status_code=403, headers=NO_STORE)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _static(path: str) -> bool:
    """The page and its files: the same for everyone, so any site may link to them."""
    return path == "/" or path.startswith("/static/")


def _from_elsewhere(headers: Headers) -> str | None:
    """What says a request came from another site's page (a header, as sent), or None."""
    site = headers.get("sec-fetch-site", "").lower()
    if site in ("cross-site", "same-site"):
        return f"Sec-Fetch-Site: {site}"
    origin = headers.get("origin")
    if origin is None:
        return None
    parts = urlsplit(origin)
    same = parts.scheme in ("http", "https") and parts.netloc.lower() == headers.get("host", "").lower()
    return None if same else f"Origin: {origin}"


async def _wait_turn(slots: anyio.Semaphore) -> None:
    """Take one of the encode slots, waiting up to ENCODE_WAIT_S; else refuse (503)."""
    with anyio.move_on_after(ENCODE_WAIT_S):
        await slots.acquire()
        return
    raise HTTPException(503, f"the explorer is busy encoding {MAX_ENCODES} other images; try again in a moment")


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
