"""trellis.generate: one image -> one GLB mesh.

Two engines, the registry picks the first whose weights are present:

    TrellisEngine  <model_dir>/trellis/   Microsoft TRELLIS (the `trellis` package, imported
                                          lazily; not installable with this project's torch)
    ShapEEngine    <model_dir>/shap-e/    OpenAI Shap-E image-to-3D through diffusers

The spec's fields were written for TRELLIS. Shap-E uses `seed`, `shapeSteps` (its denoising
steps), `qualityPreset` (steps when shapeSteps is absent), `meshResolution` (its marching-cubes
grid, at most 256^3) and `padding` (a white margin around the object); every other field it was
given is reported as an input adjustment. Shap-E's meshes carry vertex colours, not textures.
"""

from __future__ import annotations

import secrets
import threading
from pathlib import Path
from typing import Any

import numpy as np
import torch
import trimesh
from diffusers import ShapEImg2ImgPipeline
from PIL import Image, ImageOps

from backend.engines.base import (
    EngineError,
    EngineResult,
    InputAdjustment,
    OutputFile,
    Progress,
    outputs_dir,
    staged_input,
)
from backend.engines.diffusion_image import open_rgb
from backend.media.tasks import MAX_SEED, TrellisGenerateInput

GLB_MIME = "model/gltf-binary"
# Shap-E steps per quality preset (the Shap-E paper samples with 64 Karras steps).
SHAP_E_STEPS = {"performance": 16, "balanced": 32, "fidelity": 64}
# The guidance scale of Shap-E's own image-to-3D examples.
SHAP_E_GUIDANCE = 3.0
# Shap-E's default grid is 128^3; 512^3 would need tens of GB for the decoder's index tensors.
MAX_SHAP_E_GRID = 256
# Points per query of the shape MLP: large batches cut Python overhead (2x faster at 128^3 on
# CPU than diffusers' 4096) and stay a few hundred MB on the largest real model.
QUERY_BATCH = 32_768
# Fields Shap-E has no counterpart for, with what each one controls in TRELLIS.
_TRELLIS_ONLY = {
    "target_face_count": "mesh simplification",
    "texture_size": "texture baking",
    "texture_resolution": "texture baking",
    "max_views": "texture baking",
    "sparse_structure_steps": "TRELLIS's sparse-structure stage",
    "texture_steps": "texture baking",
    "remove_background": "background removal (no background-removal model on this worker)",
    "refiner_resolution": "the low-poly refiner",
    "refiner_downsampling": "the low-poly refiner",
    "remesh_fill_holes": "remeshing",
    "remesh_fill_holes_max_perimeter": "remeshing",
    "remesh_remove_floaters": "remeshing",
    "remesh_remove_inner_faces": "remeshing",
    "mesh_cluster_cone_half_angle_rad": "mesh clustering",
    "postprocess_position_epsilon": "the low-poly post-process",
    "postprocess_normal_crease_deg": "the low-poly post-process",
}
# glTF is y-up; Shap-E (and TRELLIS) meshes are z-up.
Z_UP_TO_Y_UP = trimesh.transformations.rotation_matrix(-np.pi / 2, [1, 0, 0])


def _source_image(task: TrellisGenerateInput, work_dir: Path) -> Image.Image:
    field = "sourceImage" if task.source_image is not None else "sourceImageUrl"
    value = task.source_image if task.source_image is not None else task.source_image_url
    assert value is not None  # the task model requires one of the two
    return open_rgb(staged_input(work_dir, field, value), field)


def _write_glb(mesh: trimesh.Trimesh, work_dir: Path) -> OutputFile:
    path = outputs_dir(work_dir) / "model.glb"
    mesh.export(path, file_type="glb")
    # Read back: the properties describe the file that was written, not the mesh in memory.
    loaded = trimesh.load(path, file_type="glb", force="mesh")
    if not isinstance(loaded, trimesh.Trimesh):
        raise EngineError("the written GLB does not read back as a mesh")
    properties = {
        "vertices": len(loaded.vertices),
        "faces": len(loaded.faces),
        "watertight": bool(loaded.is_watertight),
        "bounds": np.asarray(loaded.bounds).round(4).tolist(),
    }
    return OutputFile(path, GLB_MIME, properties)


class ShapEEngine:
    def __init__(self, folder: Path, *, device: str, dtype: torch.dtype) -> None:
        self._pipe = ShapEImg2ImgPipeline.from_pretrained(
            folder, dtype=dtype, local_files_only=True
        ).to(device)
        self._pipe.set_progress_bar_config(disable=True)
        self._device = device
        # Decoding a mesh writes the latent into the renderer's MLP weights: one job at a time.
        self._lock = threading.Lock()

    def run(self, task: TrellisGenerateInput, work_dir: Path, progress: Progress) -> EngineResult:
        adjustments = [
            InputAdjustment(
                field=task.wire_name(name),
                requested=getattr(task, name),
                effective=None,
                reason=f"{task.wire_name(name)} controls {what} in TRELLIS; this worker runs "
                "Shap-E, which has no such stage",
            )
            for name, what in _TRELLIS_ONLY.items()
            # A switch left off asks for nothing this engine fails to do.
            if getattr(task, name) not in (None, False)
        ]
        steps = task.shape_steps or SHAP_E_STEPS[task.quality_preset]
        grid: int = task.mesh_resolution or 128
        if grid > MAX_SHAP_E_GRID:
            adjustments.append(
                InputAdjustment(
                    field="meshResolution",
                    requested=grid,
                    effective=MAX_SHAP_E_GRID,
                    reason=f"Shap-E's mesh decoder is limited to {MAX_SHAP_E_GRID}^3 here "
                    "(memory grows with the cube of the resolution)",
                )
            )
            grid = MAX_SHAP_E_GRID
        seed = task.seed or secrets.randbelow(MAX_SEED) + 1

        image = _source_image(task, work_dir)
        if task.padding:
            image = ImageOps.expand(image, border=task.padding, fill="white")
        progress.report(5, "sampling the shape latent")
        with self._lock, torch.no_grad():
            latents = self._pipe(
                image,
                num_inference_steps=steps,
                guidance_scale=SHAP_E_GUIDANCE,
                generator=torch.Generator("cpu").manual_seed(seed),
                output_type="latent",
            ).images
            progress.report(50, "extracting the mesh")
            try:
                decoded = self._pipe.shap_e_renderer.decode_to_mesh(
                    latents[0][None], self._device, grid_size=grid, query_batch_size=QUERY_BATCH
                )
            except (RuntimeError, ValueError) as exc:
                # An empty surface (the latent decodes to nothing inside the volume) fails in
                # diffusers with torch.cat() of an empty list.
                if "non-empty" not in str(exc):
                    raise
                raise EngineError(
                    "Shap-E found no surface for this image; try another seed or an image of a "
                    "single object on a plain background"
                ) from exc
        progress.report(90, "writing the GLB")
        colors = torch.stack([decoded.vertex_channels[c] for c in "RGB"], dim=1)
        mesh = trimesh.Trimesh(
            vertices=decoded.verts.float().cpu().numpy(),
            faces=decoded.faces.cpu().numpy(),
            vertex_colors=(colors.float().clamp(0, 1).cpu().numpy() * 255).round().astype(np.uint8),
            process=False,
        )
        mesh.apply_transform(Z_UP_TO_Y_UP)
        output = _write_glb(mesh, work_dir)
        progress.report(100, "done")
        return EngineResult(
            files=[output],
            result={"engine": "shap-e", "seed": seed, "steps": steps, "meshResolution": grid},
            adjustments=adjustments,
        )


class TrellisEngine:
    """Microsoft TRELLIS (image-large) through its own package, offline.

    TRELLIS loads its DINOv2 image encoder with `torch.hub` and removes backgrounds with rembg,
    both of which download on first use. Offline, the DINOv2 hub cache must sit in
    `<trellis>/torch-hub/` (the registry requires it), and backgrounds are never removed:
    images with an alpha channel are cropped by it, others are used as they are.

    Not exercised by the test suite: TRELLIS needs CUDA, spconv and kaolin builds that do not
    install next to this project's torch.
    """

    def __init__(self, folder: Path, *, device: str) -> None:
        import torch.hub
        from trellis.pipelines import TrellisImageTo3DPipeline

        if device != "cuda":
            raise EngineError("TRELLIS runs on CUDA only")
        torch.hub.set_dir(str(folder / "torch-hub"))
        self._pipe = TrellisImageTo3DPipeline.from_pretrained(str(folder))
        self._pipe.cuda()
        self._lock = threading.Lock()

    def run(self, task: TrellisGenerateInput, work_dir: Path, progress: Progress) -> EngineResult:
        from trellis.utils import postprocessing_utils

        field = "sourceImage" if task.source_image is not None else "sourceImageUrl"
        value = task.source_image if task.source_image is not None else task.source_image_url
        assert value is not None
        with Image.open(staged_input(work_dir, field, value)) as opened:
            image = opened.convert("RGBA") if "A" in opened.getbands() else opened.convert("RGB")
        adjustments = []
        has_alpha = image.mode == "RGBA"
        if task.remove_background and not has_alpha:
            adjustments.append(
                InputAdjustment(
                    field="removeBackground",
                    requested=True,
                    effective=False,
                    reason="no background-removal model is available offline on this worker; "
                    "send an image with a transparent background instead",
                )
            )
        seed = task.seed or secrets.randbelow(MAX_SEED) + 1
        sampler: dict[str, Any] = {}
        if task.sparse_structure_steps:
            sampler["sparse_structure_sampler_params"] = {"steps": task.sparse_structure_steps}
        if task.shape_steps:
            sampler["slat_sampler_params"] = {"steps": task.shape_steps}
        progress.report(5, "sampling")
        with self._lock:
            outputs = self._pipe.run(
                image if has_alpha else image.resize((518, 518), Image.Resampling.LANCZOS),
                seed=seed,
                formats=["gaussian", "mesh"],
                preprocess_image=has_alpha,
                **sampler,
            )
        progress.report(70, "baking the GLB")
        faces = task.target_face_count
        glb = postprocessing_utils.to_glb(
            outputs["gaussian"][0],
            outputs["mesh"][0],
            # to_glb takes the fraction of faces to remove.
            simplify=0.95 if faces is None else max(0.0, 1 - faces / len(outputs["mesh"][0].faces)),
            texture_size=task.texture_size or 1024,
        )
        output = _write_glb(glb, work_dir)
        progress.report(100, "done")
        return EngineResult(
            files=[output], result={"engine": "trellis", "seed": seed}, adjustments=adjustments
        )
