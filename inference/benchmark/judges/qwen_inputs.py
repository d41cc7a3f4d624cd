"""Input preparation for a local Qwen2.5-VL judge: image resizing and the chat text with image placeholders.

Images are prepared as ``qwen_vl_utils.process_vision_info`` does when that package imports (it needs
torchvision); otherwise by the equivalent steps below, which follow its ``fetch_image`` for PIL inputs: RGBA is
composited on white, then the image is resized (bicubic) to ``smart_resize``'s size: each side a multiple of 28
(patch 14 x merge 2), the pixel count within [min_pixels, max_pixels], the aspect ratio kept as closely as possible.

The text is Qwen2.5-VL's chat format (what its chat template renders for one user turn, with the default system
prompt), each image becoming ``<|vision_start|><|image_pad|><|vision_end|>``; ``expand_image_pads`` then repeats
each ``<|image_pad|>`` once per merged patch, which is what ``Qwen2_5_VLProcessor`` does before tokenising.
"""

from __future__ import annotations

import math
from typing import Sequence

from PIL import Image

IMAGE_FACTOR = 28
MIN_PIXELS = 4 * IMAGE_FACTOR * IMAGE_FACTOR
MAX_PIXELS = 16384 * IMAGE_FACTOR * IMAGE_FACTOR
MAX_ASPECT_RATIO = 200
DEFAULT_SYSTEM = "You are a helpful assistant."
IMAGE_PAD = "<|image_pad|>"
IMAGE_PLACEHOLDER = "<|vision_start|>" + IMAGE_PAD + "<|vision_end|>"


def smart_resize(height: int, width: int, factor: int = IMAGE_FACTOR, min_pixels: int = MIN_PIXELS,
                 max_pixels: int = MAX_PIXELS) -> tuple[int, int]:
    if max(height, width) / min(height, width) > MAX_ASPECT_RATIO:
        raise ValueError(f"aspect ratio of {width}x{height} exceeds {MAX_ASPECT_RATIO}; crop the image first")
    h_bar = max(factor, round(height / factor) * factor)
    w_bar = max(factor, round(width / factor) * factor)
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt(height * width / max_pixels)
        h_bar = math.floor(height / beta / factor) * factor
        w_bar = math.floor(width / beta / factor) * factor
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode == "RGBA":
        canvas = Image.new("RGB", image.size, (255, 255, 255))
        canvas.paste(image, mask=image.split()[3])
        return canvas
    return image.convert("RGB")


def _process_vision_info():
    """qwen_vl_utils' entry point, or None where it cannot be imported (it imports torchvision, which a CPU-only
    install lacks or, built for another torch, fails to load with a RuntimeError)."""
    try:
        from qwen_vl_utils import process_vision_info
    except (ImportError, RuntimeError):
        return None
    return process_vision_info


def resize_like_qwen_vl_utils(images: Sequence[Image.Image], min_pixels: int = MIN_PIXELS,
                              max_pixels: int = MAX_PIXELS) -> list[Image.Image]:
    """The documented equivalent of ``process_vision_info`` for PIL images (the device test checks equal pixels)."""
    out = []
    for image in images:
        rgb = _to_rgb(image)
        height, width = smart_resize(rgb.height, rgb.width, min_pixels=min_pixels, max_pixels=max_pixels)
        out.append(rgb.resize((width, height), Image.Resampling.BICUBIC))
    return out


def prepare_images(images: Sequence[Image.Image], min_pixels: int = MIN_PIXELS,
                   max_pixels: int = MAX_PIXELS) -> list[Image.Image]:
    """Images as Qwen2.5-VL's processor expects them: through qwen_vl_utils when it imports, else the equivalent."""
    process_vision_info = _process_vision_info()
    if process_vision_info is None:
        return resize_like_qwen_vl_utils(images, min_pixels, max_pixels)
    content = [{"type": "image", "image": im, "min_pixels": min_pixels, "max_pixels": max_pixels} for im in images]
    prepared, _ = process_vision_info([{"role": "user", "content": content}])
    return list(prepared or [])


def chat_text(parts: Sequence[str | Image.Image], system: str | None = None, images_first: bool = True) -> str:
    """Qwen2.5-VL chat text of one user turn plus the assistant prefix; images optionally moved first."""
    if images_first:
        parts = [p for p in parts if not isinstance(p, str)] + [p for p in parts if isinstance(p, str)]
    body = "".join(p if isinstance(p, str) else IMAGE_PLACEHOLDER for p in parts)
    return (f"<|im_start|>system\n{system or DEFAULT_SYSTEM}<|im_end|>\n"
            f"<|im_start|>user\n{body}<|im_end|>\n<|im_start|>assistant\n")


def expand_image_pads(text: str, tokens_per_image: Sequence[int]) -> str:
    pieces = text.split(IMAGE_PAD)
    if len(pieces) - 1 != len(tokens_per_image):
        raise ValueError(f"text has {len(pieces) - 1} image placeholders but {len(tokens_per_image)} images")
    out = [pieces[0]]
    for count, piece in zip(tokens_per_image, pieces[1:]):
        out.append(IMAGE_PAD * count + piece)
    return "".join(out)
