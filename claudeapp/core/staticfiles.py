"""Static files, served by servestatic (whitenoise's ASGI-native fork) in front of Django; see asgi.py.

- DEBUG: straight from the app directories (the staticfiles finders), re-read on every request
  (autorefresh), so an edited chat.js shows on reload and no collectstatic is ever needed.
- Production with a collected STATIC_ROOT: the files found there at startup, with the gzip/brotli
  variants collectstatic wrote (STORAGES' CompressedStaticFilesStorage) and cache headers.
- Production with an empty or missing STATIC_ROOT: the app directories' files, listed once at startup,
  and a warning in the log saying so. Pages keep their CSS and JS; only the compressed copies are missing.

A path that names no file is a plain 404 (never a 500, never handed to Django).
"""

from __future__ import annotations

import logging
from pathlib import Path

from django.conf import settings
from django.contrib.staticfiles import finders
from servestatic.asgi import ServeStaticASGI
from servestatic.utils import ensure_leading_trailing_slash, stat_files

logger = logging.getLogger(__name__)

MAX_AGE_SECONDS = 60  # names carry no content hash, so browsers re-check after this long


def prefix() -> str:
    return ensure_leading_trailing_slash(settings.STATIC_URL)


def server() -> ServeStaticASGI:
    if settings.DEBUG:
        return _from_app_directories_live()
    root = Path(settings.STATIC_ROOT)
    if _has_files(root):
        static = ServeStaticASGI(None, max_age=MAX_AGE_SECONDS)
        static.add_files(root, prefix())
        logger.info("static files: %d collected files from %s", len(static.files), root)
        return static
    logger.warning(
        "static files: STATIC_ROOT (%s) is empty or missing, serving them from the app directories; "
        "run `manage.py collectstatic` to serve compressed copies",
        root,
    )
    return _from_app_directories_listed()


def _has_files(root: Path) -> bool:
    return root.is_dir() and any(path.is_file() for path in root.rglob("*"))


def _locations() -> list[tuple[str, str]]:
    """(directory, URL prefix) of every finder location, in the finders' own precedence order."""
    found = []
    for finder in finders.get_finders():
        for storage in getattr(finder, "storages", {}).values():
            sub = (getattr(storage, "prefix", None) or "").strip("/")
            found.append((storage.location, prefix() + (f"{sub}/" if sub else "")))
    return found


def _from_app_directories_live() -> ServeStaticASGI:
    static = ServeStaticASGI(None, autorefresh=True, max_age=0)
    for directory, url_prefix in reversed(_locations()):  # insert_directory puts each one first
        static.insert_directory(directory, url_prefix)
    return static


def _from_app_directories_listed() -> ServeStaticASGI:
    static = ServeStaticASGI(None, max_age=MAX_AGE_SECONDS)
    files: dict[str, tuple[str, str]] = {}
    for finder in finders.get_finders():
        for path, storage in finder.list(["CVS", ".*", "*~"]):  # what collectstatic skips
            sub = (getattr(storage, "prefix", None) or "").strip("/")
            url = prefix() + (f"{sub}/" if sub else "") + path.replace("\\", "/")
            files.setdefault(url, (storage.path(path), storage.location))  # the first finder's copy wins
    stat_cache = stat_files([path for path, _ in files.values()])
    for url, (path, root) in files.items():
        static.add_file_to_dictionary(url, path, root=root, stat_cache=stat_cache)
    logger.info("static files: %d files from the app directories", len(static.files))
    return static
