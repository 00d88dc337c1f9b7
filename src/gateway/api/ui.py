"""The built-in web dashboard: static pages shipped in the package (``gateway/web``), and the
charting library (plotly.js) served from its own installed package — nothing from the internet.

A page is its ``<main>`` element in ``gateway/web/NAME.html``, laid out in the one shared
``_layout.html`` with its title and scripts from :data:`PAGES`. Pages ask the API for everything
they show; they get their token from the login box (kept in the
browser's local storage), or run without one where ``api.anonymous_read`` is on.
"""

from __future__ import annotations

import gzip
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata, resources
from string import Template

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from core.errors import NotFoundError
from core.threads import in_own_thread
from gateway.api.views import views_of

router = APIRouter(include_in_schema=False)

MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}
FILE_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*\.(html|js|css)$")
SECURITY_HEADERS = {
    # Everything comes from the gateway itself; plotly sets inline styles and draws with data: URIs.
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob:; "
    "style-src 'self' 'unsafe-inline'; connect-src 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


@dataclass(frozen=True)
class Page:
    """What a page's head holds besides the shared layout."""

    title: str
    script: str
    plotly: bool = False
    """Whether it draws charts (plotly.js loads before the page's script)."""


PAGES = {
    "index.html": Page("etalon", "overview.js"),
    "channel.html": Page("etalon — channel", "channel.js", plotly=True),
    "standard.html": Page("etalon — standards", "standard.js", plotly=True),
    "calibrations.html": Page("etalon — calibrations", "calibrations.js", plotly=True),
    "alerts.html": Page("etalon — alerts", "alerts.js"),
    "audit.html": Page("etalon — audit log", "audit.js"),
}
"""The dashboard's pages; ``_layout.html`` (not served: no file name starts with ``_``) holds
their common head and body."""


@dataclass(frozen=True)
class Asset:
    """A file served as is, with its ETag and, when worth it, a gzip copy."""

    body: bytes
    media_type: str
    etag: str
    gzipped: bytes | None = None


_assets: dict[str, Asset] = {}
"""Files loaded so far (shared by every app in the process; two first requests racing for one
file both load it, harmlessly)."""


def _asset(body: bytes, media_type: str, compress: bool) -> Asset:
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    packed = gzip.compress(body, 6) if compress and len(body) > 4096 else None
    return Asset(body, media_type, etag, packed)


def _page_file(name: str) -> Asset | None:
    web = resources.files("gateway.web")
    resource = web.joinpath(name)
    if not resource.is_file():
        return None
    suffix = name[name.rfind(".") :]
    body = resource.read_bytes()
    page = PAGES.get(name)
    if page is not None:
        scripts = '  <script src="vendor/plotly.min.js"></script>\n' if page.plotly else ""
        scripts += f'  <script type="module" src="{page.script}"></script>\n'
        layout = Template(web.joinpath("_layout.html").read_text(encoding="utf-8"))
        main = body.decode("utf-8")
        body = layout.substitute(title=page.title, scripts=scripts, main=main).encode("utf-8")
    return _asset(body, MEDIA_TYPES[suffix], compress=True)


def _plotly() -> Asset:
    resource = resources.files("plotly").joinpath("package_data", "plotly.min.js")
    return _asset(resource.read_bytes(), MEDIA_TYPES[".js"], compress=True)


async def _load(key: str, loader: Callable[[], Asset | None]) -> Asset | None:
    found = _assets.get(key)
    if found is None:
        found = await in_own_thread(loader, name="ui-asset")
        if found is not None:
            _assets[key] = found
    return found


def _respond(request: Request, asset: Asset, cache: str) -> Response:
    headers = {"ETag": asset.etag, "Cache-Control": cache, "Vary": "Accept-Encoding"}
    headers |= SECURITY_HEADERS
    if request.headers.get("if-none-match") == asset.etag:
        return Response(status_code=304, headers=headers)
    if asset.gzipped is not None and "gzip" in request.headers.get("accept-encoding", ""):
        headers["Content-Encoding"] = "gzip"
        return Response(asset.gzipped, media_type=asset.media_type, headers=headers)
    return Response(asset.body, media_type=asset.media_type, headers=headers)


def _enabled(request: Request) -> None:
    if not views_of(request).config.ui:
        raise NotFoundError("the dashboard is off (dashboard.ui: false)")


@router.get("/")
@router.get("/ui")
async def root(request: Request) -> RedirectResponse:
    """The dashboard's overview."""
    _enabled(request)
    return RedirectResponse("/ui/", status_code=307)


@router.get("/ui/vendor/plotly.min.js")
async def plotly_js(request: Request) -> Response:
    """plotly.js from the installed ``plotly`` package (cached by browsers for a day)."""
    _enabled(request)
    asset = await _load("vendor/plotly", _plotly)
    assert asset is not None
    version = metadata.version("plotly")
    response = _respond(request, asset, "public, max-age=86400")
    response.headers["X-Plotly-Package"] = version
    return response


@router.get("/ui/")
@router.get("/ui/{name}")
async def page(request: Request, name: str = "index.html") -> Response:
    """A page, script or style sheet of the dashboard."""
    _enabled(request)
    if not FILE_NAME.match(name):
        raise NotFoundError("no such file")
    asset = await _load(name, lambda: _page_file(name))
    if asset is None:
        raise NotFoundError("no such file")
    return _respond(request, asset, "no-cache")
