"""Render one record (the columns of ``data/sample_schema.py``) into the segment plan the packer consumes.

Plans per kind (clean VAE / ViT conditions and the instruction are droppable for CFG, as in the original recipe):

* ``edit``:   [system prompt if thinking] VAE(source) ViT(source) text(instruction) [text(thinking), CE]
              VAE(target, MSE)
* ``edit_cot``: the same with the Meta-CoT rendered inside ``<think> ... </think>`` as the thinking, CE on it only
* ``t2i``:    text(caption) VAE(target, MSE)
* ``understanding``: ViT(image) then the turns; CE on assistant turns
* ``text``:   the turns; CE on assistant turns
* ``reflection``: [system prompt if a cot] VAE(source) ViT(source) text(instruction) [text(cot)] VAE(result)
              ViT(result) text(reflection prompt) text(verdict, CE) [VAE(target, MSE) for a refine verdict with a
              target image]: one reflection round as the inferencer builds it (``inference/reflection.py``); nothing
              is droppable, because the verdict depends on every part of the context

The thinking system prompt is the one BAGEL's inference adds in thinking mode, so training and inference contexts
agree. Any problem with a record raises ``SampleError`` with a short reason code; the loader counts and skips it.
"""

from __future__ import annotations

import json
from typing import Any

from PIL import Image

from data.image_io import ImageLoadError, load_image
from data.metacot import THINK_CLOSE, THINK_OPEN, MetaCoT, MetaCoTParseError, parse_metacot
from data.prompts import THINK_GENERATION_SYSTEM_PROMPT
from data.reflection import REFLECTION_PROMPT, Reflection, ReflectionParseError, parse_reflection
from data.sample_schema import SAMPLE_KINDS
from data.segments import PackableSample, Segment, TextSegment, VaeImageSegment, VitImageSegment
from data.transforms import ImageTransform


class SampleError(Exception):
    """A record the loader must skip; ``reason`` is the counter key (e.g. 'corrupt_image', 'bad_cot')."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


def decode_image(data: Any, column: str) -> Image.Image:
    """The encoded image of a record column as upright 8-bit RGB (``data.image_io.load_image``)."""
    if isinstance(data, dict):  # a Hugging Face `datasets` Image struct {'bytes', 'path'}
        data = data.get("bytes")
    if data is None or (isinstance(data, (bytes, bytearray)) and len(data) == 0):
        raise SampleError("missing_field", f"no {column}")
    if not isinstance(data, (bytes, bytearray)):
        raise SampleError("missing_field", f"{column} is {type(data).__name__}, expected encoded image bytes")
    try:
        return load_image(data, name=column)
    except ImageLoadError as e:
        raise SampleError("corrupt_image", str(e)) from e


def cot_text(cot: Any) -> str:
    """The Meta-CoT of a record (JSON of ``MetaCoT.to_dict`` or rendered text) as the tagged training text."""
    if isinstance(cot, dict):
        record = cot
    elif isinstance(cot, str) and cot.strip().startswith("{"):
        try:
            record = json.loads(cot)
        except json.JSONDecodeError as e:
            raise SampleError("bad_cot", f"cot is not valid JSON: {e}") from e
    elif isinstance(cot, str) and cot.strip():
        try:
            return parse_metacot(cot).render(with_think_tags=True)
        except MetaCoTParseError as e:
            raise SampleError("bad_cot", str(e)) from e
    else:
        raise SampleError("missing_field", "edit_cot record has no cot")
    try:
        return MetaCoT.from_dict(record).render(with_think_tags=True)
    except MetaCoTParseError as e:
        raise SampleError("bad_cot", str(e)) from e


def verdict_record(verdict: Any) -> Reflection:
    """The reflection verdict of a record (JSON of ``Reflection.to_dict`` or rendered text)."""
    if not isinstance(verdict, (str, dict)) or (isinstance(verdict, str) and not verdict.strip()):
        raise SampleError("missing_field", "reflection record has no verdict")
    try:
        if isinstance(verdict, dict) or verdict.strip().startswith("{"):
            return Reflection.from_dict(verdict if isinstance(verdict, dict) else json.loads(verdict))
        return parse_reflection(verdict)
    except (ReflectionParseError, json.JSONDecodeError) as e:
        raise SampleError("bad_verdict", str(e)) from e


def free_thinking_text(cot: str) -> str:
    text = cot.strip()
    return text if text.startswith(THINK_OPEN) else f"{THINK_OPEN}\n{text}\n{THINK_CLOSE}"


def parse_conversation(value: Any) -> list[tuple[str, str]]:
    try:
        turns = json.loads(value) if isinstance(value, str) else value
        pairs = [(t["role"], t["text"]) for t in turns]
    except (TypeError, KeyError, json.JSONDecodeError) as e:
        raise SampleError("bad_conversation", f"expected a JSON list of {{'role', 'text'}}: {e}") from e
    if not pairs:
        raise SampleError("missing_field", "empty conversation")
    for role, text in pairs:
        if role not in ("user", "assistant") or not isinstance(text, str):
            raise SampleError("bad_conversation", f"turn role {role!r} must be 'user'|'assistant' with string text")
    if not any(role == "assistant" for role, _ in pairs):
        raise SampleError("bad_conversation", "no assistant turn, so nothing to train on")
    return pairs


class SampleRenderer:
    def __init__(self, tokenizer: Any, vae_transform: ImageTransform, vit_transform: ImageTransform,
                 think_system_prompt: bool = True) -> None:
        self.tokenizer = tokenizer
        self.vae_transform = vae_transform
        self.vit_transform = vit_transform
        self.think_system_prompt = think_system_prompt

    def encode(self, text: str) -> list[int]:
        return list(self.tokenizer.encode(text, add_special_tokens=False))

    def _required_text(self, row: dict, column: str) -> str:
        value = row.get(column)
        if not isinstance(value, str) or not value.strip():
            raise SampleError("missing_field", f"no {column}")
        return value

    def _edit(self, row: dict, thinking: str | None) -> list[Segment]:
        source = decode_image(row.get("source_image"), "source_image")
        target = decode_image(row.get("target_image"), "target_image")
        instruction = self._required_text(row, "instruction")
        plan: list[Segment] = []
        if thinking is not None and self.think_system_prompt:
            plan.append(TextSegment(self.encode(THINK_GENERATION_SYSTEM_PROMPT)))
        # Both transforms see the decoded original, as the original edit datasets do.
        plan += [
            VaeImageSegment(self.vae_transform(source), noised=False, droppable=True),
            VitImageSegment(self.vit_transform(source), droppable=True),
            TextSegment(self.encode(instruction), droppable=True),
        ]
        if thinking is not None:
            plan.append(TextSegment(self.encode(thinking), loss=True))
        plan.append(VaeImageSegment(self.vae_transform(target), noised=True))
        return plan

    def _reflection(self, row: dict) -> list[Segment]:
        verdict = verdict_record(row.get("verdict"))
        source = decode_image(row.get("source_image"), "source_image")
        result = decode_image(row.get("result_image"), "result_image")
        instruction = self._required_text(row, "instruction")
        cot = row.get("cot")
        thinking = cot_text(cot) if cot is not None and cot != "" else None
        plan: list[Segment] = []
        if thinking is not None and self.think_system_prompt:
            plan.append(TextSegment(self.encode(THINK_GENERATION_SYSTEM_PROMPT)))
        plan += [VaeImageSegment(self.vae_transform(source)), VitImageSegment(self.vit_transform(source)),
                 TextSegment(self.encode(instruction))]
        if thinking is not None:  # the plan is context here; edit_cot rows train it
            plan.append(TextSegment(self.encode(thinking)))
        plan += [VaeImageSegment(self.vae_transform(result)), VitImageSegment(self.vit_transform(result)),
                 TextSegment(self.encode(REFLECTION_PROMPT)), TextSegment(self.encode(verdict.render()), loss=True)]
        if verdict.verdict == "refine" and row.get("target_image") is not None:
            plan.append(VaeImageSegment(self.vae_transform(decode_image(row["target_image"], "target_image")),
                                        noised=True))
        return plan

    def _turns(self, row: dict) -> list[Segment]:
        return [TextSegment(self.encode(text), loss=role == "assistant")
                for role, text in parse_conversation(row.get("conversation"))]

    def plan(self, row: dict) -> list[Segment]:
        kind = row.get("kind")
        if kind == "edit":
            cot = row.get("cot")
            return self._edit(row, free_thinking_text(cot) if isinstance(cot, str) and cot.strip() else None)
        if kind == "edit_cot":
            return self._edit(row, cot_text(row.get("cot")))
        if kind == "t2i":
            caption = self._required_text(row, "instruction")
            target = decode_image(row.get("target_image"), "target_image")
            return [TextSegment(self.encode(caption), droppable=True),
                    VaeImageSegment(self.vae_transform(target), noised=True)]
        if kind == "understanding":
            image = decode_image(row.get("source_image"), "source_image")
            return [VitImageSegment(self.vit_transform(image))] + self._turns(row)
        if kind == "text":
            return self._turns(row)
        if kind == "reflection":
            return self._reflection(row)
        raise SampleError("bad_kind", f"kind {kind!r} is not one of {SAMPLE_KINDS}")

    def render(self, row: dict, dataset_name: str) -> PackableSample:
        return PackableSample(self.plan(row), dataset_name=dataset_name, sample_id=str(row.get("id", "")))
