"""Session fixtures for the visual engines: a model dir of tiny pipelines and a registry on it.

The model dir is built offline once per session (tiny_models.py) and laid out exactly as the
registry expects, and every engine test loads its pipeline through that registry: the production
loader, not a test shortcut.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from backend.engines.registry import EngineRegistry
from tests.engines.tiny_models import build_model_dir

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


# Third-party deprecations raised while diffusers imports and builds pipelines; the suite turns
# warnings into errors, so these are let through by name. (Candidates for pyproject's list.)
@pytest.fixture(scope="session")
def visual_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_model_dir(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="session")
def visual_registry(visual_model_dir: Path) -> Iterator[EngineRegistry]:
    # Toy-sized tensors gain nothing from intra-op threads, and on a busy 2-core machine torch's
    # spinning threads made a 50-step tiny image 6x slower than one thread does.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    # Room for all three pipelines, so each loads once for the whole session.
    yield EngineRegistry(visual_model_dir, "cpu", max_resident=3)
    torch.set_num_threads(threads)


@pytest.fixture
def work_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "work"
    folder.mkdir()
    return folder
