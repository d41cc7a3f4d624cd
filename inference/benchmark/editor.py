"""The editor contract the generation stage codes against, and how the real one is built.

Any object with ``edit(image, instruction, *, think=False, seed=0, **hyper)`` returning something with ``.image``
(PIL), ``.think_text`` (str | None) and ``.timings`` (dict) can be evaluated. The default factory builds
``inference.inferencer.BagelInferencer``; ``--editor-factory module:function`` plugs in any other model.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable, Protocol

from PIL import Image

DEFAULT_FACTORY = "inference.inferencer:BagelInferencer.from_pretrained"


class EditResult(Protocol):
    image: Image.Image
    think_text: str | None
    timings: dict


class Editor(Protocol):
    def edit(self, image: Image.Image, instruction: str, *, think: bool = False, seed: int = 0,
             **hyper: Any) -> EditResult: ...


def resolve_factory(spec: str) -> Callable[..., Editor]:
    """``"package.module:attr.path"`` -> the callable it names (imported only when needed)."""
    module_name, sep, attr_path = spec.partition(":")
    if not sep or not attr_path:
        raise ValueError(f"editor factory {spec!r} must look like 'package.module:function'")
    target: Any = importlib.import_module(module_name)
    for part in attr_path.split("."):
        target = getattr(target, part)
    if not callable(target):
        raise ValueError(f"editor factory {spec!r} is not callable")
    return target


def build_editor(model_path: str, device: str, dtype: str, factory: str = DEFAULT_FACTORY) -> Editor:
    return resolve_factory(factory)(model_path, device=device, dtype=dtype)
