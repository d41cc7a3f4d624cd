"""Judge backend running Qwen2.5-VL in-process with transformers (greedy decoding, like VIEScore's Qwen backend).

Loads ``Qwen2_5_VLForConditionalGeneration``, the tokenizer and the image processor from one folder. Inputs are
assembled by ``qwen_inputs`` (see there for the preparation), so no torchvision-only class is needed. One model
serves one request at a time (a lock), whatever the number of scoring threads.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch
from PIL import Image

from inference.benchmark.judges.base import ChatJudge, Completion, Part
from inference.benchmark.judges.cache import ReplyCache
from inference.benchmark.judges.qwen_inputs import (MAX_PIXELS, MIN_PIXELS, chat_text, expand_image_pads,
                                                     prepare_images)

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass(frozen=True)
class QwenLocalConfig:
    model_path: str
    device: str = "cuda"
    dtype: str = "bfloat16"
    max_new_tokens: int = 512
    min_pixels: int = MIN_PIXELS
    max_pixels: int = MAX_PIXELS
    images_first: bool = True  # VIEScore's Qwen backend puts the images before the text

    def __post_init__(self) -> None:
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype {self.dtype!r} must be one of {', '.join(DTYPES)}")


class QwenLocalJudge(ChatJudge):
    def __init__(self, model: Any, tokenizer: Any, image_processor: Any, config: QwenLocalConfig,
                 cache: ReplyCache | None = None, parse_retries: int = 2,
                 generate_kwargs: dict[str, Any] | None = None):
        super().__init__(cache, parse_retries)
        self.model, self.tokenizer, self.image_processor = model, tokenizer, image_processor
        self.config = config
        self.generate_kwargs = dict(generate_kwargs or {})
        self._lock = threading.Lock()

    @classmethod
    def from_pretrained(cls, config: QwenLocalConfig, cache: ReplyCache | None = None,
                        parse_retries: int = 2) -> "QwenLocalJudge":
        from transformers import AutoImageProcessor, AutoTokenizer, Qwen2_5_VLForConditionalGeneration

        if not Path(config.model_path).is_dir():
            raise FileNotFoundError(f"judge model folder {config.model_path} not found; download Qwen2.5-VL first")
        model = Qwen2_5_VLForConditionalGeneration.from_pretrained(config.model_path, dtype=DTYPES[config.dtype])
        model.to(config.device).eval()
        tokenizer = AutoTokenizer.from_pretrained(config.model_path)
        image_processor = AutoImageProcessor.from_pretrained(config.model_path)
        return cls(model, tokenizer, image_processor, config, cache, parse_retries)

    @property
    def model_id(self) -> str:
        return Path(self.config.model_path).name

    def fingerprint(self) -> dict:
        c = self.config
        return {"backend": "qwen_local", "model": str(Path(c.model_path).resolve()), "max_new_tokens": c.max_new_tokens,
                "min_pixels": c.min_pixels, "max_pixels": c.max_pixels, "images_first": c.images_first}

    def build_inputs(self, system: str | None, parts: Sequence[Part]) -> dict[str, torch.Tensor]:
        images = prepare_images([p for p in parts if isinstance(p, Image.Image)], self.config.min_pixels,
                                self.config.max_pixels)
        text = chat_text(parts, system, self.config.images_first)
        inputs: dict[str, torch.Tensor] = {}
        tokens_per_image: list[int] = []
        if images:
            vision = self.image_processor(images=images, return_tensors="pt")
            merge = self.image_processor.merge_size ** 2
            tokens_per_image = [int(g.prod()) // merge for g in vision["image_grid_thw"]]
            inputs.update(pixel_values=vision["pixel_values"], image_grid_thw=vision["image_grid_thw"])
        encoded = self.tokenizer([expand_image_pads(text, tokens_per_image)], return_tensors="pt")
        inputs.update(input_ids=encoded["input_ids"], attention_mask=encoded["attention_mask"])
        return inputs

    @torch.inference_mode()
    def _complete(self, system: str | None, parts: Sequence[Part]) -> Completion:
        inputs = self.build_inputs(system, parts)
        with self._lock:
            device, dtype = self.model.device, self.model.dtype
            moved = {k: v.to(device, dtype=dtype) if k == "pixel_values" else v.to(device) for k, v in inputs.items()}
            output = self.model.generate(**moved, max_new_tokens=self.config.max_new_tokens, do_sample=False,
                                         **self.generate_kwargs)
        new_tokens = output[0, moved["input_ids"].shape[1]:]
        return Completion(self.tokenizer.decode(new_tokens, skip_special_tokens=True))
