"""image.generate / image.edit on a tiny random-weight SD pipeline loaded through the registry.

Native size of the tiny model: 64 px (UNet sample size 32, VAE factor 2); default steps: 50.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import torch
from PIL import Image

from backend.engines.base import JobCanceled
from backend.engines.diffusion_image import DiffusionImageEngine, size_for_aspect_ratio
from backend.engines.registry import EngineRegistry
from backend.media.tasks import ImageEditInput, ImageGenerateInput
from tests.engines.media import RecordingProgress, output_files, stage_file, write_image


@pytest.fixture
def image_engine(visual_registry: EngineRegistry) -> DiffusionImageEngine:
    engine = visual_registry.get_engine("image.generate")
    assert isinstance(engine, DiffusionImageEngine)
    return engine


def _generate(**fields: object) -> ImageGenerateInput:
    return ImageGenerateInput.model_validate({"prompt": "a red fox in the snow", **fields})


def _decoded(path: Path) -> Image.Image:
    image = Image.open(io.BytesIO(path.read_bytes()))
    image.load()
    return image


def test_generate_defaults_to_a_square_webp_at_the_native_size(
    image_engine: DiffusionImageEngine, work_dir: Path
) -> None:
    progress = RecordingProgress()

    result = image_engine.run(_generate(), work_dir, progress, seed=7)

    image = _decoded(result.files[0].path)
    assert (image.format, image.size) == ("WEBP", (64, 64))
    assert result.files[0].mime_type == "image/webp"
    assert result.result["seed"] == 7
    assert result.result["steps"] == 50
    percents = [percent for percent, _ in progress.reports]
    assert len(percents) == 51  # one report per step, then done
    assert percents == sorted(percents)
    assert percents[-1] == 100


@pytest.mark.parametrize(
    ("fields", "size", "pil_format"),
    [
        ({"aspect_ratio": "16:9", "output_format": "png"}, (96, 64), "PNG"),
        ({"aspect_ratio": "9:16", "output_format": ".jpg"}, (64, 96), "JPEG"),
        ({"width": 96, "height": 32, "output_format": "jpg"}, (96, 32), "JPEG"),
    ],
)
def test_generate_size_and_format(
    image_engine: DiffusionImageEngine,
    work_dir: Path,
    fields: dict[str, object],
    size: tuple[int, int],
    pil_format: str,
) -> None:
    result = image_engine.run(_generate(**fields), work_dir, RecordingProgress(), seed=1)

    image = _decoded(result.files[0].path)
    assert (image.format, image.size) == (pil_format, size)
    assert (result.files[0].properties["width"], result.files[0].properties["height"]) == size


def test_aspect_ratio_sizes_at_a_real_native_size() -> None:
    assert size_for_aspect_ratio("1:1", 1024) == (1024, 1024)
    assert size_for_aspect_ratio("16:9", 1024) == (1376, 768)
    assert size_for_aspect_ratio("9:7", 512) == (576, 448)


def test_high_detail_and_upscale(image_engine: DiffusionImageEngine, work_dir: Path) -> None:
    task = _generate(width=32, height=32, high_detail=True, upscale=True)

    result = image_engine.run(task, work_dir, RecordingProgress(), seed=3)

    assert result.result["steps"] == 75
    assert _decoded(result.files[0].path).size == (48, 48)


def test_same_seed_same_bytes_other_seed_other_bytes(
    image_engine: DiffusionImageEngine, tmp_path: Path
) -> None:
    outputs = []
    for number, seed in enumerate((11, 11, 12)):
        work = tmp_path / str(number)
        result = image_engine.run(
            _generate(output_format="png"), work, RecordingProgress(), seed=seed
        )
        outputs.append(result.files[0].path.read_bytes())

    assert outputs[0] == outputs[1]
    assert outputs[0] != outputs[2]


def test_unseeded_jobs_draw_and_report_a_seed(
    image_engine: DiffusionImageEngine, tmp_path: Path
) -> None:
    first = image_engine.run(_generate(), tmp_path / "a", RecordingProgress())
    again = image_engine.run(
        _generate(), tmp_path / "b", RecordingProgress(), seed=first.result["seed"]
    )

    assert first.files[0].path.read_bytes() == again.files[0].path.read_bytes()


def test_cancel_at_step_two_stops_with_no_output(
    image_engine: DiffusionImageEngine, work_dir: Path
) -> None:
    progress = RecordingProgress(cancel_at=2)

    with pytest.raises(JobCanceled):
        image_engine.run(_generate(), work_dir, progress, seed=1)

    assert len(progress.reports) == 2
    assert output_files(work_dir) == []


def test_edit_keeps_the_source_size_and_reports_unused_references(
    visual_registry: EngineRegistry, work_dir: Path, tmp_path: Path
) -> None:
    stage_file(work_dir, "sourceImage", write_image(tmp_path / "source.png", size=(70, 50)))
    task = ImageEditInput.model_validate(
        {
            "prompt": "make it blue",
            "source_image": {"url": "https://images.example/source.png"},
            "reference_image_urls": ["https://images.example/ref.png"],
            "output_format": "png",
        }
    )
    engine = visual_registry.get_engine("image.edit")
    assert engine is visual_registry.get_engine("image.generate")  # one pipeline serves both

    result = engine.run(task, work_dir, RecordingProgress())

    image = _decoded(result.files[0].path)
    assert (image.format, image.size) == ("PNG", (70, 50))
    assert [(a.field, a.requested, a.effective) for a in result.adjustments] == [
        ("referenceImageUrls", 1, 0)
    ]


def test_edit_reads_inline_source_images(
    image_engine: DiffusionImageEngine, work_dir: Path, tmp_path: Path
) -> None:
    import base64

    data = base64.b64encode(write_image(tmp_path / "s.png", size=(40, 24)).read_bytes()).decode()
    task = ImageEditInput.model_validate(
        {"prompt": "sharper", "source_image": {"data_base64": data, "mime_type": "image/png"}}
    )

    result = image_engine.run(task, work_dir, RecordingProgress(), seed=2)

    assert _decoded(result.files[0].path).size == (40, 24)


def test_half_precision_weights_stay_half_precision_and_shared(visual_model_dir: Path) -> None:
    # from_pipe casts to float32 unless given the dtype: that would double a GPU model's memory.
    engine = DiffusionImageEngine(visual_model_dir / "image", device="cpu", dtype=torch.bfloat16)

    assert engine._text2image.unet is engine._image2image.unet
    assert engine._image2image.unet.dtype == torch.bfloat16
