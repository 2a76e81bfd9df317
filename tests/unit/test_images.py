"""federation.images: what an upload becomes, and what is refused."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image

from federation.images import AVATAR, MEDIA, ImageRejected, ImageRules, process_image
from federation.mediafiles import MediaFiles


def _jpeg_with_exif(size: tuple[int, int], orientation: int = 1) -> bytes:
    image = Image.new("RGB", size, (200, 40, 40))
    for x in range(size[0] // 2):  # a left half of another colour, to see rotation
        for y in range(0, size[1], 4):
            image.putpixel((x, y), (10, 10, 200))
    exif = Image.Exif()
    exif[0x0112] = orientation  # Orientation
    exif[0x8825] = {2: (48.0, 51.0, 0.0)}  # GPS latitude
    exif[0x010F] = "PhoneMaker"  # Make
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif, comment=b"secret comment", icc_profile=b"\0" * 64)
    return out.getvalue()


def test_metadata_is_dropped_and_orientation_applied() -> None:
    raw = _jpeg_with_exif((120, 60), orientation=6)  # "rotate 90° clockwise to view"
    assert b"PhoneMaker" in raw and b"secret comment" in raw
    done = process_image(raw, MEDIA)
    assert done.original_type == "image/jpeg"
    assert done.image.media_type == "image/jpeg"
    assert (done.image.width, done.image.height) == (60, 120)  # upright
    assert b"PhoneMaker" not in done.image.data
    assert b"secret comment" not in done.image.data
    with Image.open(io.BytesIO(done.image.data)) as stored:
        assert not stored.getexif()
        assert "icc_profile" not in stored.info
        assert stored.size == (60, 120)
    assert done.preview is None  # small enough already
    assert len(done.blurhash) >= 20


def test_large_image_is_reduced_with_preview() -> None:
    image = Image.new("RGB", (3000, 2000), (0, 128, 0))
    out = io.BytesIO()
    image.save(out, "PNG")
    rules = ImageRules(
        max_bytes=10**8, max_input_pixels=10**8, max_pixels=1_000_000, preview_side=300
    )
    done = process_image(out.getvalue(), rules)
    assert done.image.width * done.image.height <= 1_000_000
    assert abs(done.image.width / done.image.height - 1.5) < 0.01
    assert done.preview is not None and max(done.preview.width, done.preview.height) == 300


def test_transparency_is_kept_as_png_and_avatar_cropped_square() -> None:
    image = Image.new("RGBA", (900, 500), (0, 0, 0, 0))
    out = io.BytesIO()
    image.save(out, "WEBP")
    done = process_image(out.getvalue(), AVATAR)
    assert done.original_type == "image/webp"
    assert done.image.media_type == "image/png"
    assert (done.image.width, done.image.height) == (400, 400)


def test_animated_gif_keeps_its_first_frame() -> None:
    frames = [Image.new("P", (20, 10), colour) for colour in (1, 2, 3)]
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:])
    done = process_image(out.getvalue(), MEDIA)
    assert done.original_type == "image/gif"
    assert (done.image.width, done.image.height) == (20, 10)


def _png_header_claiming(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + body))
        return struct.pack(">I", len(body)) + kind + body + crc

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunks = chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + chunks


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "empty"),
        (b"GIF89a not really", "not_an_image"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'></svg>", "not_an_image"),
        (_png_header_claiming(100_000, 100_000), "too_many_pixels"),
    ],
)
def test_refused(raw: bytes, reason: str) -> None:
    with pytest.raises(ImageRejected) as caught:
        process_image(raw, MEDIA)
    assert caught.value.reason == reason


def test_too_many_bytes_and_unsupported_format() -> None:
    rules = ImageRules(max_bytes=100, max_input_pixels=10**6, max_pixels=10**6)
    with pytest.raises(ImageRejected) as caught:
        process_image(b"\0" * 101, rules)
    assert caught.value.reason == "too_large"
    out = io.BytesIO()
    Image.new("RGB", (4, 4)).save(out, "BMP")
    with pytest.raises(ImageRejected) as caught:
        process_image(out.getvalue(), MEDIA)
    assert caught.value.reason == "unsupported_type"


def test_media_files_are_content_addressed(tmp_path: Path) -> None:
    done = process_image(_jpeg_with_exif((30, 30)), MEDIA)
    files = MediaFiles(tmp_path / "media")
    name = files.save(done.image)
    assert files.save(done.image) == name
    path = files.path_of(name)
    assert path is not None and path.read_bytes() == done.image.data
    assert files.media_type(name) == "image/jpeg"
    assert list((tmp_path / "media").iterdir()) == [path]  # no temporary left behind
    for bad in ("../node.json", name.upper(), name + "/x", "x" * 64 + ".svg"):
        assert files.path_of(bad) is None
