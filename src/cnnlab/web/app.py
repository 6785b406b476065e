"""The FastAPI app: the page, and an HTTP API whose every endpoint is a few lines over the library.

The routes live in routers (``runs.py``, ``arithmetic.py``) that reach the served runs and the upload
limits through dependencies (``requests.py``); every rule they apply is the library's.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.middleware.trustedhost import TrustedHostMiddleware
from swagger_ui_bundle import swagger_ui_path

from cnnlab.data.images import MAX_UPLOAD_PIXELS
from cnnlab.errors import CnnlabError, DataError, InputError, RunError
from cnnlab.run.files import OutsideRoot
from cnnlab.web import arithmetic, runs
from cnnlab.web.requests import BodyLimit, Limits, NotJson, TooLarge
from cnnlab.web.store import RunStore, UnknownRun

STATIC = Path(__file__).parent / "static"
# The page runs its own module script and nothing else: no inline script, no other origin. Inline style
# attributes stay allowed (bar widths, kernel cell colours).
PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)

# Most specific first: what each kind of error says over HTTP
HTTP_STATUS = (
    (UnknownRun, 404),  # no such run in the served folder
    (OutsideRoot, 403),  # a run file or dataset linked out of the served folder
    (TooLarge, 413),
    (NotJson, 415),
    (InputError, 400),  # the request was wrong
    (DataError, 404),  # the data asked for is not there (a sample index outside the split, a dataset missing)
    (RunError, 409),  # the run exists, but its files cannot be used as they are (missing weights, corrupt)
    (CnnlabError, 422),
)


async def _error(request, error: CnnlabError):
    status = next(code for kind, code in HTTP_STATUS if isinstance(error, kind))
    return JSONResponse({"error": request.app.state.store.public(str(error))}, status_code=status)


def _docs():
    """The API's interactive docs, with Swagger UI's files from the installed package, not a CDN."""
    return get_swagger_ui_html(
        openapi_url="/openapi.json",
        title="cnnlab API",
        swagger_js_url="/docs-assets/swagger-ui-bundle.js",
        swagger_css_url="/docs-assets/swagger-ui.css",
        swagger_favicon_url="/docs-assets/favicon-32x32.png",
    )


LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1", "[::1]")


def create_app(
    root,
    max_upload_bytes: int = 5 * 1024 * 1024,
    max_pixels: int = MAX_UPLOAD_PIXELS,
    hosts=LOOPBACK_NAMES,
    allow_nonfinite: bool = False,
) -> FastAPI:
    """The app over the runs found in ``root``, with the upload limits given. Requests must name one of
    ``hosts`` in their Host header (a web page that rebinds its own domain to 127.0.0.1 cannot use the API);
    ``hosts=("*",)`` accepts any, for a server bound to a non-loopback address."""
    app = FastAPI(
        title="cnnlab",
        description="Predict, look inside and explain any run trained with cnnlab.",
        docs_url=None,  # FastAPI's own /docs loads Swagger UI from a CDN: blank without internet
        redoc_url=None,
    )
    app.state.store = RunStore(root, allow_nonfinite=allow_nonfinite)
    app.state.limits = Limits(max_upload_bytes, max_pixels)
    app.add_exception_handler(CnnlabError, _error)
    app.add_middleware(BodyLimit, limit=max_upload_bytes)
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(hosts))
    page = lambda: FileResponse(STATIC / "index.html", headers={"Content-Security-Policy": PAGE_CSP})  # noqa: E731
    app.add_api_route("/", page, include_in_schema=False)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.mount("/docs-assets", StaticFiles(directory=swagger_ui_path), name="docs-assets")
    app.add_api_route("/docs", _docs, include_in_schema=False)
    app.include_router(runs.compare)
    app.include_router(runs.router)
    app.include_router(arithmetic.router)
    return app
