"""The registry: presence checks, refusals that name the folder, caching and LRU eviction."""

from __future__ import annotations

import gc
import json
import shutil
import weakref
from pathlib import Path

import pytest

from backend.engines.base import ModelUnavailable
from backend.engines.ffmpeg_video import VideoCombineEngine
from backend.engines.registry import TASKS, EngineRegistry
from backend.media.tasks import TASK_MODELS
from tests.engines.tiny_models import IMAGE_FOLDER, SHAP_E_FOLDER, VIDEO_FOLDER

VISUAL_TASKS = {
    "image.generate": ("diffusers-image", IMAGE_FOLDER),
    "image.edit": ("diffusers-image", IMAGE_FOLDER),
    "video.generate": ("ltx-video", VIDEO_FOLDER),
    "video.combine": ("ffmpeg", None),
    "video.resize": ("ffmpeg", None),
    "trellis.generate": ("shap-e", SHAP_E_FOLDER),
}


def test_every_spec_task_has_an_entry() -> None:
    assert set(TASKS) == set(TASK_MODELS)


def test_availability_with_the_tiny_models(visual_model_dir: Path) -> None:
    rows = {row.task: row for row in EngineRegistry(visual_model_dir, "cpu").availability()}

    assert set(rows) == set(TASK_MODELS)
    for task, (family, folder) in VISUAL_TASKS.items():
        row = rows[task]
        assert (row.family, row.folder, row.present, row.device, row.reason) == (
            family,
            folder,
            True,
            "cpu",
            None,
        ), task


def test_an_empty_model_dir_refuses_with_the_folder_to_fill(tmp_path: Path) -> None:
    registry = EngineRegistry(tmp_path, "cpu")
    rows = {row.task: row for row in registry.availability()}

    for task in ("image.generate", "video.generate", "trellis.generate"):
        assert not rows[task].present
        assert rows[task].device is None
    assert rows["video.combine"].present  # needs no weights

    with pytest.raises(ModelUnavailable) as refused:
        registry.get_engine("image.generate")
    assert str(tmp_path / "image") in str(refused.value)
    assert "model_index.json" in str(refused.value)

    with pytest.raises(ModelUnavailable) as refused:
        registry.get_engine("trellis.generate")
    # Either engine would do: the message names both folders.
    assert str(tmp_path / "trellis") in str(refused.value)
    assert str(tmp_path / "shap-e") in str(refused.value)


def test_a_missing_component_is_named(visual_model_dir: Path, tmp_path: Path) -> None:
    shutil.copytree(visual_model_dir / IMAGE_FOLDER, tmp_path / IMAGE_FOLDER)
    shutil.rmtree(tmp_path / IMAGE_FOLDER / "unet")

    (row,) = [r for r in EngineRegistry(tmp_path, "cpu").availability() if r.task == "image.edit"]

    assert not row.present
    assert row.reason is not None
    assert str(tmp_path / IMAGE_FOLDER / "unet") in row.reason


def test_corrupt_weights_are_model_unavailable_not_a_crash(
    visual_model_dir: Path, tmp_path: Path
) -> None:
    shutil.copytree(visual_model_dir / IMAGE_FOLDER, tmp_path / IMAGE_FOLDER)
    for weights in (tmp_path / IMAGE_FOLDER / "unet").glob("*.safetensors"):
        weights.write_bytes(b"\0" * 64)

    with pytest.raises(ModelUnavailable, match="could not be loaded"):
        EngineRegistry(tmp_path, "cpu").get_engine("image.generate")


def test_engines_are_reused_and_evicted_least_recently_used_first(
    visual_model_dir: Path,
) -> None:
    registry = EngineRegistry(visual_model_dir, "cpu", max_resident=1)

    image = registry.get_engine("image.generate")
    assert registry.get_engine("image.edit") is image
    image_ref = weakref.ref(image)
    del image

    video = registry.get_engine("video.generate")
    assert registry.resident() == [("ltx-video", VIDEO_FOLDER)]
    gc.collect()
    assert image_ref() is None  # evicted and freed, not just forgotten
    assert registry.get_engine("video.generate") is video


def test_lru_order_with_two_slots(visual_model_dir: Path) -> None:
    registry = EngineRegistry(visual_model_dir, "cpu", max_resident=2)
    registry.get_engine("image.generate")
    registry.get_engine("video.generate")
    registry.get_engine("image.edit")  # touches the image pipeline: video is now oldest

    registry.get_engine("trellis.generate")

    assert registry.resident() == [
        ("diffusers-image", IMAGE_FOLDER),
        ("shap-e", SHAP_E_FOLDER),
    ]


def test_weightless_engines_need_no_model_dir(tmp_path: Path) -> None:
    registry = EngineRegistry(tmp_path / "absent", "cpu")

    engine = registry.get_engine("video.combine")

    assert isinstance(engine, VideoCombineEngine)
    assert registry.get_engine("video.combine") is engine
    assert registry.resident() == []


def test_device_choice_is_checked(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="device"):
        EngineRegistry(tmp_path, "gpu")  # type: ignore[arg-type]


def test_cuda_required_without_a_gpu_is_reported(visual_model_dir: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    registry = EngineRegistry(visual_model_dir, "cuda")
    rows = {row.task: row for row in registry.availability()}

    assert not rows["image.generate"].present
    assert "CUDA" in (rows["image.generate"].reason or "")
    assert rows["video.resize"].present
    with pytest.raises(ModelUnavailable, match="CUDA"):
        registry.get_engine("image.generate")


def test_the_tiny_image_folder_is_a_complete_save_pretrained_layout(
    visual_model_dir: Path,
) -> None:
    index = json.loads((visual_model_dir / IMAGE_FOLDER / "model_index.json").read_text())
    assert index["_class_name"] == "StableDiffusionPipeline"


def test_presence_is_remembered_for_its_ttl(visual_model_dir: Path, tmp_path: Path) -> None:
    """The gateway asks on every submit; a model installed meanwhile counts once the TTL ends."""
    remembering = EngineRegistry(tmp_path, "cpu", presence_ttl_seconds=3600)
    assert not remembering.task_availability("image.generate").present
    shutil.copytree(visual_model_dir / IMAGE_FOLDER, tmp_path / IMAGE_FOLDER)

    assert not remembering.task_availability("image.generate").present
    assert EngineRegistry(tmp_path, "cpu").task_availability("image.generate").present
    expired = EngineRegistry(tmp_path / "empty", "cpu", presence_ttl_seconds=1e-9)
    assert not expired.task_availability("image.generate").present
    expired.model_dir = tmp_path
    assert expired.task_availability("image.generate").present
