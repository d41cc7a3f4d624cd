"""The one way images enter the project: decode, turn upright (EXIF orientation), normalise to 8-bit RGB.

Used by the edit CLI, dataset rendering, benchmark converters and loaders, and validation prompts, so a phone photo
is edited upright and a 16-bit scan is not silently edited as an all-white image. Mode rules (``to_rgb``):

* RGB passes through untouched (every reference fixture and ShapesEdit render is read bit-exactly).
* Alpha (RGBA, LA, PA, premultiplied RGBa) and palette or RGB images with a ``transparency`` key are composited on
  white, as the original BAGEL loader does.
* High bit depth grayscale is scaled, not clipped: I;16 family by 255/65535 (x / 257); I (32-bit int) and F (float)
  have no white point in the file, so the smallest usual range holding the data is taken: [0, 1] (F only),
  [0, 255], [0, 65535], else [0, max]; negative values become black.
* Everything else (L, 1, P, CMYK, YCbCr, LAB, HSV, RGBX) through PIL's own conversion.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa")
SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N")
USUAL_WHITE_POINTS = (255.0, 65535.0)


class ImageLoadError(ValueError):
    """An image that cannot be read; ``reason`` is a short code ('missing', 'empty', 'not_image', 'corrupt',
    'too_large', 'unsupported_mode') that callers turn into their own fix hint or skip counter."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def _composite_on_white(img: Image.Image) -> Image.Image:
    rgba = img.convert("RGBA")
    white = Image.new("RGB", rgba.size, (255, 255, 255))
    white.paste(rgba, mask=rgba.getchannel("A"))
    return white


def _white_point(values: np.ndarray, allow_unit_range: bool) -> float:
    top = float(values.max()) if values.size else 0.0
    if allow_unit_range and top <= 1.0:
        return 1.0
    return next((w for w in USUAL_WHITE_POINTS if top <= w), top)


def high_depth_to_l(img: Image.Image) -> Image.Image:
    """A grayscale image of mode I;16*, I or F as 8-bit L, scaled by its bit depth or value range (see module doc)."""
    if img.mode in SIXTEEN_BIT_MODES:
        values, white = np.asarray(img.convert("I"), dtype=np.float64), 65535.0
    else:
        values = np.asarray(img, dtype=np.float64)
        white = _white_point(values, allow_unit_range=img.mode == "F")
    scaled = np.clip(values, 0.0, white) * (255.0 / white) if white > 0 else np.zeros_like(values)
    return Image.fromarray(np.rint(scaled).astype(np.uint8), mode="L")


def to_rgb(img: Image.Image) -> Image.Image:
    """8-bit RGB view of any PIL image by the module's mode rules (the input itself is never changed)."""
    if img.mode == "RGB":
        return img
    if img.mode in SIXTEEN_BIT_MODES or img.mode in ("I", "F"):
        return high_depth_to_l(img).convert("RGB")
    if img.mode in ALPHA_MODES or "transparency" in img.info:
        return _composite_on_white(img)
    return img.convert("RGB")


def _open(source: str | os.PathLike | bytes, name: str) -> Image.Image:
    if isinstance(source, (bytes, bytearray)):
        if not source:
            raise ImageLoadError("empty", f"{name} is empty (0 bytes)")
        stream = io.BytesIO(source)
    else:
        path = Path(source)
        if not path.is_file():
            raise ImageLoadError("missing", f"{name} does not exist")
        if path.stat().st_size == 0:
            raise ImageLoadError("empty", f"{name} is empty (0 bytes)")
        stream = path
    try:
        img = Image.open(stream)
    except UnidentifiedImageError:
        raise ImageLoadError("not_image", f"{name} is not an image file PIL can read") from None
    except Image.DecompressionBombError as e:
        raise ImageLoadError("too_large", f"{name} is too large to decode safely ({e})") from None
    except Exception as e:  # PIL raises many types on a damaged header (OSError, SyntaxError, struct.error, ...)
        raise ImageLoadError("corrupt", f"{name} is truncated or corrupt ({type(e).__name__}: {e})") from None
    try:
        img.load()  # decode now, so a truncated file fails here and not inside a transform
    except Exception as e:
        img.close()
        raise ImageLoadError("corrupt", f"{name} is truncated or corrupt ({type(e).__name__}: {e})") from None
    return img


def load_image(source: str | os.PathLike | bytes | Image.Image, name: str | None = None) -> Image.Image:
    """A path, encoded bytes or PIL image -> upright 8-bit RGB PIL image, or ``ImageLoadError`` naming the problem.

    ``name`` labels the image in error messages (default: the path, or 'image'). The EXIF orientation is applied
    (and dropped from the result), as cameras store a rotated photo unrotated with a tag saying how to show it.
    """
    label = name or (str(source) if isinstance(source, (str, os.PathLike)) else "image")
    img = source if isinstance(source, Image.Image) else _open(source, label)
    try:
        upright = ImageOps.exif_transpose(img)  # always a new image, so the caller's image is never changed
    except Exception as e:  # a damaged EXIF block
        raise ImageLoadError("corrupt", f"{label} has unreadable EXIF data ({type(e).__name__}: {e})") from None
    finally:
        if img is not source:
            img.close()
    try:
        return to_rgb(upright)
    except ValueError as e:  # a mode PIL cannot convert (e.g. a multi-band float TIFF)
        raise ImageLoadError("unsupported_mode", f"{label} has image mode {upright.mode} that cannot become RGB "
                                                 f"({e})") from None
