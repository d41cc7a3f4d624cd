"""Shared fixtures: the tiny reference checkpoint loaded once per session."""

from __future__ import annotations

import pytest
import torch

from tests.fixture_paths import TINY


@pytest.fixture(scope="session")
def tiny_bundle():
    from modeling.bagel.loader import load_bagel

    return load_bagel(TINY, torch.float32, "cpu")
