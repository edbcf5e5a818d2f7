"""What a file is, read from its bytes (never from the name or the browser's type alone): an image's
format and size, a PDF's page count, a text file's UTF-8 text. Standard library only."""

from __future__ import annotations

import re
import struct
import zlib
from dataclasses import dataclass

IMAGE_TYPES = {"image/png", "image/jpeg", "image/gif", "image/webp"}
PDF_TYPE = "application/pdf"
# Text files the composer offers (by extension, and UTF-8 text); files with no extension (Makefile) too.
TEXT_EXTENSIONS = frozenset(
    [
        "txt",
        "md",
        "markdown",
        "csv",
        "tsv",
        "json",
        "jsonl",
        "yaml",
        "yml",
        "toml",
        "ini",
        "cfg",
        "conf",
        "log",
        "xml",
        "html",
        "htm",
        "css",
        "scss",
        "js",
        "mjs",
        "ts",
        "tsx",
        "jsx",
        "py",
        "rb",
        "go",
        "rs",
        "java",
        "kt",
        "swift",
        "c",
        "h",
        "cc",
        "cpp",
        "hpp",
        "cs",
        "php",
        "pl",
        "sh",
        "bash",
        "zsh",
        "sql",
        "r",
        "lua",
        "scala",
        "ex",
        "exs",
        "erl",
        "hs",
        "ml",
        "dart",
        "vue",
        "svelte",
        "tex",
        "rst",
        "diff",
        "patch",
        "env",
        "gitignore",
        "dockerfile",
        "makefile",
    ]
)
TEXT_MEDIA_TYPES = {"csv": "text/csv", "json": "application/json", "md": "text/markdown", "markdown": "text/markdown"}


@dataclass(frozen=True)
class Inspected:
    kind: str  # "image", "document" or "text" (Attachment.Kind values)
    media_type: str
    width: int | None = None
    height: int | None = None
    pages: int | None = None
    text: str | None = None


class NotSupported(ValueError):
    pass


def inspect(data: bytes, filename: str) -> Inspected:
    """Raises NotSupported when the bytes are none of the accepted kinds."""
    image = image_type(data)
    if image is not None:
        width, height = image_size(data, image)
        return Inspected("image", image, width=width, height=height)
    if data.startswith(b"%PDF-"):
        return Inspected("document", PDF_TYPE, pages=pdf_pages(data))
    extension = extension_of(filename)
    if extension in TEXT_EXTENSIONS or "." not in filename:
        text = _utf8_text(data)
        if text is not None:
            return Inspected("text", TEXT_MEDIA_TYPES.get(extension, "text/plain"), text=text)
    raise NotSupported("Attach images (PNG, JPEG, GIF, WebP), PDFs or text files (txt, md, csv, json, source code).")


def extension_of(filename: str) -> str:
    name = filename.rsplit("/", 1)[-1].lower()
    return name.rsplit(".", 1)[-1] if "." in name else name


def _utf8_text(data: bytes) -> str | None:
    if b"\x00" in data:
        return None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None


def image_type(data: bytes) -> str | None:
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def image_size(data: bytes, media_type: str) -> tuple[int | None, int | None]:
    try:
        if media_type == "image/png" and data[12:16] == b"IHDR":
            return struct.unpack(">II", data[16:24])
        if media_type == "image/gif":
            return struct.unpack("<HH", data[6:10])
        if media_type == "image/webp":
            return _webp_size(data)
        if media_type == "image/jpeg":
            return _jpeg_size(data)
    except struct.error:
        pass
    return None, None


def _webp_size(data: bytes) -> tuple[int | None, int | None]:
    chunk = data[12:16]
    if chunk == b"VP8X":
        return 1 + int.from_bytes(data[24:27], "little"), 1 + int.from_bytes(data[27:30], "little")
    if chunk == b"VP8L":
        bits = int.from_bytes(data[21:25], "little")
        return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
    if chunk == b"VP8 ":
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    return None, None


def _jpeg_size(data: bytes) -> tuple[int | None, int | None]:
    at = 2
    while at + 9 < len(data):
        if data[at] != 0xFF:
            at += 1
            continue
        marker = data[at + 1]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # a start-of-frame segment
            height, width = struct.unpack(">HH", data[at + 5 : at + 9])
            return width, height
        at += 2 + struct.unpack(">H", data[at + 2 : at + 4])[0]
    return None, None


PAGE_OBJECT = re.compile(rb"/Type\s*/Page(?![a-zA-Z])")
FLATE_STREAM = re.compile(rb"/FlateDecode.*?>>\s*stream\r?\n", re.S)
MAX_INFLATED = 50 * 1024 * 1024  # a zip bomb stops here


def pdf_pages(data: bytes) -> int:
    """Page objects, in the file and inside compressed object streams (PDF 1.5+ keeps them there).

    Counting objects rather than trusting /Count: a file can declare any /Count it likes, but each
    page upstream renders is a page object.
    """
    pages = len(PAGE_OBJECT.findall(data))
    inflated = 0
    for match in FLATE_STREAM.finditer(data):
        end = data.find(b"endstream", match.end())
        if end < 0:
            break
        decompressor = zlib.decompressobj()
        try:
            chunk = decompressor.decompress(data[match.end() : end], MAX_INFLATED - inflated)
        except zlib.error:
            continue
        inflated += len(chunk)
        if b"/Type" in chunk:
            pages += len(PAGE_OBJECT.findall(chunk))
        if inflated >= MAX_INFLATED:
            break
    return pages
