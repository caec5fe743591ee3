"""trellis.generate served by Shap-E (no TRELLIS here), loaded through the registry.

Shap-E's mesh grid is at least 128^3 (the spec's smallest meshResolution), which dominates the
cost, so there are just two runs: one real mesh, one empty shape.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import trimesh

from backend.engines.base import EngineError
from backend.engines.registry import EngineRegistry
from backend.engines.shap_e import ShapEEngine
from backend.media.tasks import TrellisGenerateInput
from tests.engines.media import RecordingProgress, output_files, stage_file, write_image
from tests.engines.tiny_models import SHAP_E_FOLDER, build_shap_e_pipeline


def _task(**fields: object) -> TrellisGenerateInput:
    return TrellisGenerateInput.model_validate(
        {"source_image_url": "https://images.example/chair.png", **fields}
    )


def test_shap_e_writes_a_valid_glb(
    visual_registry: EngineRegistry, work_dir: Path, tmp_path: Path
) -> None:
    stage_file(work_dir, "sourceImageUrl", write_image(tmp_path / "chair.png", size=(64, 64)))
    engine = visual_registry.get_engine("trellis.generate")
    assert isinstance(engine, ShapEEngine)
    progress = RecordingProgress()

    result = engine.run(
        _task(seed=4, quality_preset="performance", texture_size=1024, padding=8),
        work_dir,
        progress,
    )

    (output,) = result.files
    assert output.mime_type == "model/gltf-binary"
    assert output.path.read_bytes()[:4] == b"glTF"
    mesh = trimesh.load(output.path, file_type="glb", force="mesh")
    assert isinstance(mesh, trimesh.Trimesh)
    assert len(mesh.vertices) > 0
    assert len(mesh.faces) > 0
    assert mesh.visual is not None
    assert mesh.visual.kind == "vertex"  # Shap-E colours vertices
    assert output.properties["faces"] == len(mesh.faces)
    assert result.result == {"engine": "shap-e", "seed": 4, "steps": 16, "meshResolution": 128}
    assert [(a.field, a.requested, a.effective) for a in result.adjustments] == [
        ("textureSize", 1024, None)
    ]
    assert [percent for percent, _ in progress.reports] == [5, 50, 90, 100]


def test_an_empty_shape_is_a_clear_engine_error(tmp_path: Path) -> None:
    # A renderer without marching-cubes tables finds no surface, as a real model can for some
    # latents: diffusers then crashes in torch.cat, which the engine must turn into an EngineError.
    model_dir = tmp_path / "models"
    build_shap_e_pipeline(model_dir / SHAP_E_FOLDER, marching_cubes=False)
    work_dir = tmp_path / "work"
    stage_file(work_dir, "sourceImageUrl", write_image(tmp_path / "chair.png"))
    engine = EngineRegistry(model_dir, "cpu").get_engine("trellis.generate")

    with pytest.raises(EngineError, match="no surface"):
        engine.run(_task(seed=1, shape_steps=8), work_dir, RecordingProgress())
    assert output_files(work_dir) == []
