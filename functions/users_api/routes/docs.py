"""/docs (Swagger UI) and /redoc with their scripts served by the app itself, not a CDN.

The files come from the pinned fastapi-offline package (requirements/function.txt), so the
pages render offline and behind a proxy, on every serving (uvicorn, the Lambda handler).
FastAPI's own page builders are used; only the asset URLs differ.
"""

from __future__ import annotations

from functools import cache
from importlib.util import find_spec
from pathlib import Path
from typing import TypedDict

from fastapi import APIRouter, HTTPException, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import FileResponse, HTMLResponse

ASSETS_PATH = "/docs/assets"
ASSETS = frozenset({"swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js", "favicon.png"})
# The files change only with the pinned package version: let browsers keep them a day.
ASSET_CACHE_CONTROL = "public, max-age=86400"

router = APIRouter(include_in_schema=False)


@cache
def assets_dir() -> Path:
    # Located without importing fastapi_offline (its module builds a whole app factory).
    spec = find_spec("fastapi_offline")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("fastapi-offline is not installed (requirements/function.txt)")
    return Path(next(iter(spec.submodule_search_locations))) / "static"


def _base(request: Request) -> str:
    # Behind a stage prefix the middleware sets root_path (/prod): links must carry it.
    return str(request.scope.get("root_path", "")).rstrip("/")


def _asset(request: Request, name: str) -> str:
    return f"{_base(request)}{ASSETS_PATH}/{name}"


class _Page(TypedDict):
    openapi_url: str
    title: str


def _page(request: Request, viewer: str) -> _Page:
    """What every documentation page names: the OpenAPI document and its title."""
    return {
        "openapi_url": f"{_base(request)}{request.app.openapi_url}",
        "title": f"{request.app.title} - {viewer}",
    }


@router.get("/docs")
async def swagger_ui(request: Request) -> HTMLResponse:
    return get_swagger_ui_html(
        **_page(request, "Swagger UI"),
        oauth2_redirect_url=f"{_base(request)}/docs/oauth2-redirect",
        swagger_js_url=_asset(request, "swagger-ui-bundle.js"),
        swagger_css_url=_asset(request, "swagger-ui.css"),
        swagger_favicon_url=_asset(request, "favicon.png"),
    )


@router.get("/docs/oauth2-redirect")
async def swagger_ui_oauth2_redirect() -> HTMLResponse:
    return get_swagger_ui_oauth2_redirect_html()


@router.get("/redoc")
async def redoc(request: Request) -> HTMLResponse:
    return get_redoc_html(
        **_page(request, "ReDoc"),
        redoc_js_url=_asset(request, "redoc.standalone.js"),
        redoc_favicon_url=_asset(request, "favicon.png"),
        with_google_fonts=False,
    )


@router.get(ASSETS_PATH + "/{name}")
async def asset(name: str) -> FileResponse:
    if name not in ASSETS:  # only these names ever reach the file system
        raise HTTPException(404, "Not Found")
    return FileResponse(assets_dir() / name, headers={"cache-control": ASSET_CACHE_CONTROL})
