"""Content-hashed static URLs, so browsers and CDNs may keep static files for a year.

Every `url_for('static', filename=...)` gets `?v=<hash of the file's bytes>` from a manifest
computed once at start-up; templates keep calling url_for as usual. A changed file gets a new
URL, so the old one can be cached as immutable: a request whose `v` matches the file served
says `max-age=31536000, immutable`, any other (no `v`, or a stale one after a deploy) says
`no-cache`, so a new file is never pinned under an old URL.

A query string rather than a renamed file keeps Flask's own static view, its ETags and
its path checks; the caches that matter (browsers, CDNs, nginx) key on the whole URL.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
from pathlib import Path
from typing import Any
from urllib.parse import quote

import brotli
from flask import Flask, Response, current_app, request

IMMUTABLE = "public, max-age=31536000, immutable"
PRECOMPRESSED = ("br", "gzip")  # the server's preference when a client takes both
VERSION_ARG = "v"


def static_manifest(folder: str | Path) -> dict[str, str]:
    """Hash every file under the static folder: {"css/site.css": "1a2b3c4d5e6f", ...}."""
    root = Path(folder)
    manifest = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
        manifest[path.relative_to(root).as_posix()] = digest
    return manifest


def init_app(app: Flask) -> None:
    """Hash the static files once and version every static URL with its file's hash."""
    manifest = static_manifest(app.static_folder) if app.static_folder else {}
    app.extensions["static_manifest"] = manifest

    @app.url_defaults
    def version_static_urls(endpoint: str, values: dict[str, Any]) -> None:
        """Add the file's hash to a static URL, so a new version is a new URL."""
        if endpoint == "static" and VERSION_ARG not in values:
            digest = manifest.get(values.get("filename", ""))
            if digest:
                values[VERSION_ARG] = digest

    app.after_request(cache_static_files)
    inline = functools.cache(lambda filename: data_uri(app, filename))
    app.add_template_global(inline, "inline_static")


def data_uri(app: Flask, filename: str) -> str:
    """Spell a small static SVG as a data: URI, to save a first visit one request (the icon)."""
    svg = Path(app.static_folder or "", filename).read_text().strip().replace('"', "'")
    return "data:image/svg+xml," + quote(svg, safe="=:/',.-()")  # single quotes stay short


def cache_static_files(response: Response) -> Response:
    """Let caches keep a static file for a year when its URL names this very version."""
    if request.endpoint != "static" or response.status_code not in (200, 304):
        return response
    manifest = current_app.extensions["static_manifest"]
    filename = (request.view_args or {}).get("filename", "")
    wanted = manifest.get(filename)
    if wanted and request.args.get(VERSION_ARG) == wanted:
        response.headers["Cache-Control"] = IMMUTABLE
        if response.status_code == 200:
            send_compressed(response, filename, wanted)
    else:
        response.headers["Cache-Control"] = "no-cache"
    return response


def send_compressed(response: Response, filename: str, digest: str) -> None:
    """Answer with the file compressed once at the highest quality, if the client takes it.

    A file of this release is compressed once per process and then sent to every first
    visitor, so it is worth brotli's slowest setting (htmx: 14.2 kB at the pages' zstd level,
    12.0 kB here). Other files, and clients that take neither, go on to Flask-Compress.
    """
    if response.mimetype not in current_app.config["COMPRESS_MIMETYPES"]:
        return
    encoding = request.accept_encodings.best_match(PRECOMPRESSED)
    if encoding is None:
        return
    path = Path(current_app.static_folder or "", filename)
    body = compressed_file(str(path), digest, encoding)
    response.close()  # the open file Flask's static view was about to stream
    response.direct_passthrough = False
    response.set_data(body)
    response.headers["Content-Encoding"] = encoding
    response.vary.add("Accept-Encoding")
    etag, weak = response.get_etag()
    if etag:
        response.set_etag(f"{etag}:{encoding}", weak=weak)
        response.make_conditional(request)  # a browser revalidating this encoding gets a 304


@functools.cache
def compressed_file(path: str, digest: str, encoding: str) -> bytes:
    """Compress one version of a static file (the digest names it, so an edit is a new entry)."""
    data = Path(path).read_bytes()
    if encoding == "br":
        return brotli.compress(data, quality=11)
    return gzip.compress(data, compresslevel=9, mtime=0)
