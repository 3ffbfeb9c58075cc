"""The only way a rendered invoice can load anything: files under ``static/``.

An invoice is a legal document rendered on a worker from a frozen snapshot. It must look the same tomorrow as
today and must never reach the network or read files it has no business reading (a snapshot field ending up
in an ``<img src>`` must not become a way to read ``/etc/passwd`` or to call an internal URL). So the fetcher
WeasyPrint uses accepts ``file:`` URLs that resolve (symlinks and ``..`` included) to a regular file below
``static/``, and refuses everything else — http(s), data:, ftp:, files elsewhere — with
:class:`ResourceRefusedError`. Rendering is set to fail on a refused resource instead of silently leaving it out.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path
from urllib.parse import unquote, urlsplit

from weasyprint.urls import URLFetcher, URLFetcherResponse

from app.config import PROJECT_ROOT

STATIC_ROOT = (PROJECT_ROOT / "static").resolve()

# mimetypes knows these on most systems, but not all (minimal containers lack /etc/mime.types).
_MEDIA_TYPES = {
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".css": "text/css",
    ".ttf": "font/ttf",
    ".otf": "font/otf",
    ".woff": "font/woff",
    ".woff2": "font/woff2",
}


class ResourceRefusedError(ValueError):
    """A resource outside ``static/`` (or not a local file) was requested while rendering a document."""


def static_base_url(root: Path = STATIC_ROOT) -> str:
    """The base URL relative references in the invoice templates and CSS resolve against."""
    return root.as_uri() + "/"


def resolve_static(url: str, root: Path = STATIC_ROOT) -> Path:
    """The file under ``root`` that ``url`` names, or :class:`ResourceRefusedError`."""
    parts = urlsplit(url)
    if parts.scheme.lower() != "file":
        raise ResourceRefusedError(f"only files under static/ may be loaded, not {url!r}")
    if parts.netloc not in ("", "localhost"):
        raise ResourceRefusedError(f"remote file URL refused: {url!r}")
    path = Path(unquote(parts.path)).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        raise ResourceRefusedError(f"not a file under static/: {url!r}")
    return path


class StaticOnlyFetcher(URLFetcher):  # type: ignore[misc]  # weasyprint is untyped: URLFetcher is Any to mypy
    """A WeasyPrint URL fetcher that serves files under ``static/`` and nothing else."""

    def __init__(self, root: Path = STATIC_ROOT) -> None:
        # fail_on_errors: a refused or missing resource stops the rendering; an invoice missing its font or
        # logo is a bug to fix, not a document to send.
        super().__init__(allowed_protocols=("file",), allow_redirects=False, fail_on_errors=True)
        self.root = root.resolve()

    def fetch(self, url: str, headers: dict[str, str] | None = None) -> URLFetcherResponse:
        path = resolve_static(url, self.root)
        media_type = _MEDIA_TYPES.get(path.suffix.lower()) or mimetypes.guess_type(path.name)[0]
        return URLFetcherResponse(
            path.as_uri(), body=path.read_bytes(), headers={"Content-Type": media_type or "application/octet-stream"}
        )
