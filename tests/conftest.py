"""Shared fixtures: the tiny reference checkpoint loaded once per session, its inferencer and a noise picture."""

from __future__ import annotations

import pytest
import torch

from tests.fixture_paths import TINY


@pytest.fixture(scope="session")
def tiny_bundle():
    from modeling.bagel.loader import load_bagel

    return load_bagel(TINY, torch.float32, "cpu")


@pytest.fixture(scope="session")
def inferencer(tiny_bundle):
    """Inference on the tiny checkpoint in fp32 (tests patch its methods with monkeypatch only, so it is shared)."""
    from inference.inferencer import BagelInferencer

    return BagelInferencer(tiny_bundle)


@pytest.fixture(scope="session")
def source():
    from PIL import Image

    return Image.effect_noise((64, 64), 60).convert("RGB")
