from __future__ import annotations

import pytest

from claudeapp.attachments import inspect
from tests.fixtures import files


@pytest.mark.parametrize(
    ("data", "media_type", "size"),
    [
        (files.png(40, 30), "image/png", (40, 30)),
        (files.gif(7, 5), "image/gif", (7, 5)),
        (files.jpeg_header(64, 48), "image/jpeg", (64, 48)),
        (files.webp_lossless(9, 3), "image/webp", (9, 3)),
    ],
)
def test_images_are_known_by_their_bytes_with_their_size(data, media_type, size):
    found = inspect.inspect(data, "renamed.txt")  # the name does not decide
    assert (found.kind, found.media_type, (found.width, found.height)) == ("image", media_type, size)


@pytest.mark.parametrize("compressed", [False, True])
def test_pdf_pages_are_counted_in_the_file_and_in_compressed_object_streams(compressed):
    found = inspect.inspect(files.pdf(7, compressed=compressed), "report.pdf")
    assert (found.kind, found.media_type, found.pages) == ("document", "application/pdf", 7)


def test_text_files_by_extension_and_utf8():
    found = inspect.inspect("naïve,csv\n1,2\n".encode(), "data.csv")
    assert (found.kind, found.media_type, found.text) == ("text", "text/csv", "naïve,csv\n1,2\n")
    assert inspect.inspect(b"print('hi')\n", "script.py").media_type == "text/plain"
    assert inspect.inspect(b"all:\n\techo\n", "Makefile").kind == "text"


@pytest.mark.parametrize(
    ("data", "name"),
    [(b"\x00\x01binary", "blob.txt"), (b"\xff\xfe\xfa not utf-8", "notes.txt"), (b"MZ\x90\x00", "tool.exe"),
     (b"plain words", "archive.zip")],
)  # fmt: skip
def test_anything_else_is_not_supported(data, name):
    with pytest.raises(inspect.NotSupported):
        inspect.inspect(data, name)
