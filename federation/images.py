"""Uploaded images: checked, re-encoded without metadata, resized, previewed, blurhashed.

Pure: bytes in, bytes out.  Pillow decodes the upload once; everything it
carried besides pixels (EXIF with its GPS position, ICC profile, text
chunks, comments) is dropped by copying the pixels into a new image.  The
EXIF orientation is applied first, so a phone photo stays upright.  An
animated GIF keeps its first frame.

Rules differ by use (``MEDIA``, ``AVATAR``, ``HEADER``): Mastodon's limits
are the model (16 MB uploads, images reduced to 3840×2160 worth of
pixels, avatars 400×400, headers 1500×500).
"""

from __future__ import annotations

import io
import math
import warnings
from dataclasses import dataclass

import blurhash
from PIL import Image, ImageOps

# What we accept, by Pillow's format name, and what we write back.
ACCEPTED = {"JPEG": "image/jpeg", "PNG": "image/png", "GIF": "image/gif", "WEBP": "image/webp"}
EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp"}


class ImageRejected(ValueError):
    """The upload is not an image we take; ``reason`` is a stable code for the API."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ImageRules:
    max_bytes: int
    # Decoded pixels an upload may have (width × height) before any resizing:
    # a decompression bomb is refused before its pixels are read.
    max_input_pixels: int
    # The stored image is reduced to at most this many pixels...
    max_pixels: int
    # ...or cropped to exactly this size (avatars and headers).
    crop: tuple[int, int] | None = None
    preview_side: int = 0


MEDIA = ImageRules(
    max_bytes=16 * 1024 * 1024,
    max_input_pixels=40_000_000,
    max_pixels=3840 * 2160,
    preview_side=640,
)
AVATAR = ImageRules(
    max_bytes=8 * 1024 * 1024, max_input_pixels=40_000_000, max_pixels=400 * 400, crop=(400, 400)
)
HEADER = ImageRules(
    max_bytes=8 * 1024 * 1024, max_input_pixels=40_000_000, max_pixels=1500 * 500, crop=(1500, 500)
)


@dataclass(frozen=True, slots=True)
class Picture:
    data: bytes
    media_type: str
    width: int
    height: int

    @property
    def extension(self) -> str:
        return EXTENSIONS[self.media_type]


@dataclass(frozen=True, slots=True)
class ProcessedImage:
    image: Picture
    preview: Picture | None
    blurhash: str
    # The media type the upload declared by its content (before re-encoding).
    original_type: str


def _open(raw: bytes, rules: ImageRules) -> tuple[Image.Image, str]:
    if not raw:
        raise ImageRejected("empty", "the file is empty")
    if len(raw) > rules.max_bytes:
        megabytes = rules.max_bytes // (1024 * 1024)
        raise ImageRejected("too_large", f"images may be at most {megabytes} MB")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(raw))
            fmt = image.format or ""
            if fmt not in ACCEPTED:
                raise ImageRejected(
                    "unsupported_type", "only JPEG, PNG, GIF and WebP images are accepted"
                )
            width, height = image.size
            if width < 1 or height < 1 or width * height > rules.max_input_pixels:
                raise ImageRejected(
                    "too_many_pixels", f"images may have at most {rules.max_input_pixels:,} pixels"
                )
            image.seek(0)
            image.load()
    except ImageRejected:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageRejected("too_many_pixels", "the image has too many pixels") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        kind = exc.__class__.__name__
        raise ImageRejected("not_an_image", f"the file is not a readable image ({kind})") from None
    return image, ACCEPTED[fmt]


def _pixels_only(image: Image.Image) -> Image.Image:
    """A new image with the pixels upright and nothing else of the upload."""
    upright = ImageOps.exif_transpose(image) or image
    has_alpha = upright.mode in ("RGBA", "LA", "PA") or (
        upright.mode == "P" and "transparency" in upright.info
    )
    mode = "RGBA" if has_alpha else "RGB"
    converted = upright.convert(mode)
    clean = Image.new(mode, converted.size)
    clean.paste(converted)
    return clean


def _fit(image: Image.Image, max_pixels: int) -> Image.Image:
    width, height = image.size
    if width * height <= max_pixels:
        return image
    scale = math.sqrt(max_pixels / (width * height))
    size = (max(1, int(width * scale)), max(1, int(height * scale)))
    return image.resize(size, Image.Resampling.LANCZOS)


def _encode(image: Image.Image) -> Picture:
    out = io.BytesIO()
    if image.mode == "RGBA":
        image.save(out, "PNG", optimize=True)
        media_type = "image/png"
    else:
        image.save(out, "JPEG", quality=85, optimize=True, progressive=True)
        media_type = "image/jpeg"
    return Picture(out.getvalue(), media_type, image.width, image.height)


def _blurhash(image: Image.Image) -> str:
    small = image.convert("RGB")
    small.thumbnail((32, 32))
    width, height = small.size
    data = small.tobytes()
    rows = [
        [list(data[(y * width + x) * 3 : (y * width + x) * 3 + 3]) for x in range(width)]
        for y in range(height)
    ]
    x_components = 4 if width >= height else 3
    y_components = 3 if width >= height else 4
    return str(blurhash.encode(rows, x_components, y_components))


def process_image(raw: bytes, rules: ImageRules = MEDIA) -> ProcessedImage:
    """Check ``raw`` against ``rules`` and return it re-encoded; ImageRejected if not."""
    opened, original_type = _open(raw, rules)
    with opened:
        clean = _pixels_only(opened)
    if rules.crop is not None:
        clean = ImageOps.fit(clean, rules.crop, Image.Resampling.LANCZOS)
    else:
        clean = _fit(clean, rules.max_pixels)
    preview = None
    if rules.preview_side and max(clean.size) > rules.preview_side:
        small = clean.copy()
        small.thumbnail((rules.preview_side, rules.preview_side), Image.Resampling.LANCZOS)
        preview = _encode(small)
    return ProcessedImage(_encode(clean), preview, _blurhash(clean), original_type)
