"""Deterministic demo records of every sample kind (random-texture images), for tests, benchmarks and examples."""

from __future__ import annotations

import io
import json

import numpy as np
from PIL import Image

from data.metacot import MetaCoT, TargetStep
from data.reflection import Reflection
from data.sample_schema import SAMPLE_KINDS

COLORS = ("red", "blue", "green", "yellow", "purple")
OBJECTS = ("cube", "ball", "cone", "ring", "star")


def random_image_bytes(rng: np.random.Generator, width: int, height: int, image_format: str = "PNG") -> bytes:
    """A smooth random texture (coarse noise upsampled), so encoded sizes resemble photos more than white noise."""
    coarse = rng.integers(0, 256, size=(max(2, height // 16), max(2, width // 16), 3), dtype=np.uint8)
    img = Image.fromarray(coarse).resize((width, height), Image.Resampling.BILINEAR)
    buf = io.BytesIO()
    img.save(buf, format=image_format, **({"quality": 90} if image_format == "JPEG" else {}))
    return buf.getvalue()


def demo_metacot(i: int) -> MetaCoT:
    color, obj = COLORS[i % len(COLORS)], OBJECTS[i % len(OBJECTS)]
    new_color = COLORS[(i + 1) % len(COLORS)]
    return MetaCoT(
        task=f"recolor the {obj}", target=f"the {color} {obj}", ability="color and object recognition",
        meta_tasks=["Replacement"], summary=f"Replace the color of the {obj}.",
        task_thinking=f"Find the {color} {obj} and paint it {new_color}, keeping everything else.",
        traversal=[TargetStep(f"{color} {obj}", "Replacement", f"make it {new_color}", (100, 120, 400, 460))],
    )


def demo_record(i: int, kind: str, rng: np.random.Generator, size_range: tuple[int, int],
                image_format: str = "PNG") -> dict:
    if kind not in SAMPLE_KINDS:
        raise ValueError(f"kind {kind!r} must be one of {SAMPLE_KINDS}")
    width, height = (int(v) for v in rng.integers(size_range[0], size_range[1] + 1, size=2))

    def image() -> bytes:
        return random_image_bytes(rng, width, height, image_format)

    color, obj = COLORS[i % len(COLORS)], OBJECTS[i % len(OBJECTS)]
    record: dict = {"id": f"{kind}-{i:06d}", "kind": kind}
    if kind in ("edit", "edit_cot"):
        record.update(source_image=image(), target_image=image(),
                      instruction=f"Make the {color} {obj} {COLORS[(i + 1) % len(COLORS)]}.")
        if kind == "edit_cot":
            record["cot"] = json.dumps(demo_metacot(i).to_dict())
    elif kind == "reflection":
        new_color = COLORS[(i + 1) % len(COLORS)]
        verdict = Reflection("refine", f"the {color} {obj} is still {color}",
                             f"Make the {color} {obj} {new_color}.") if i % 2 else Reflection("success", "done")
        record.update(source_image=image(), result_image=image(), target_image=image() if i % 2 else None,
                      instruction=f"Make the {color} {obj} {new_color}.", cot=json.dumps(demo_metacot(i).to_dict()),
                      verdict=json.dumps(verdict.to_dict()))
    elif kind == "t2i":
        record.update(target_image=image(), instruction=f"A {color} {obj} on a table.")
    else:
        turns = [{"role": "user", "text": f"What color is the {obj}?"},
                 {"role": "assistant", "text": f"It is {color}."}]
        record["conversation"] = json.dumps(turns)
        if kind == "understanding":
            record["source_image"] = image()
    return record


def demo_records(n: int, kinds: tuple[str, ...] = SAMPLE_KINDS, size_range: tuple[int, int] = (40, 72),
                 seed: int = 0, image_format: str = "PNG") -> list[dict]:
    rng = np.random.default_rng(seed)
    return [demo_record(i, kinds[i % len(kinds)], rng, size_range, image_format) for i in range(n)]


class ByteTokenizer:
    """A dependency-free stand-in tokenizer for demos and tests: one id per UTF-8 byte (ids 0..255)."""

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        return list(text.encode("utf-8"))

    def decode(self, ids: list[int]) -> str:
        return bytes(i for i in ids if i < 256).decode("utf-8", errors="replace")


BYTE_SPECIAL_TOKENS = {"bos_token_id": 256, "eos_token_id": 257, "start_of_image": 258, "end_of_image": 259}
