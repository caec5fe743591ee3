"""Tiny random-weight pipelines, built offline and saved the way `KILLA_MODEL_DIR` holds real ones.

Every builder writes a complete `save_pretrained` folder (model_index.json, configs, safetensors,
tokenizer files) so the engines load it through exactly the production code path. Nothing here
touches the hub: tokenizers are built from in-memory vocabularies (FACTS.md, "tiny pipelines").
Also used by `benchmarks/engines.py`.
"""

from __future__ import annotations

from itertools import product
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

if TYPE_CHECKING:
    from diffusers.pipelines.shap_e import ShapERenderer
    from transformers import CLIPTokenizer, T5Tokenizer

# The registry's folder names; the tests assert the registry agrees (test_registry.py).
IMAGE_FOLDER = "image"
VIDEO_FOLDER = "video"
SHAP_E_FOLDER = "shap-e"


def clip_tokenizer() -> CLIPTokenizer:
    """CLIP BPE over the 256 byte-level symbols: every word tokenizes, none is unknown."""
    from tokenizers.pre_tokenizers import ByteLevel
    from transformers import CLIPTokenizer

    symbols = sorted(ByteLevel.alphabet())
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for symbol in symbols:
        vocab[symbol] = len(vocab)
        vocab[symbol + "</w>"] = len(vocab)
    # Pairs, not "a t</w>" strings: the fast tokenizer's BPE takes tuples (the stub says str).
    merges = [("a", "t</w>"), ("i", "n</w>"), ("o", "n</w>")]
    for left, right in merges:
        vocab.setdefault(left + right, len(vocab))
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=77)  # type: ignore[arg-type]


def t5_tokenizer() -> T5Tokenizer:
    from transformers import T5Tokenizer

    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -2.0)]
    pieces += [(f"▁{c}", -3.0) for c in "abcdefghijklmnopqrstuvwxyz"]
    pieces += [(c, -4.0) for c in "abcdefghijklmnopqrstuvwxyz0123456789.,!?'-"]
    return T5Tokenizer(vocab=pieces, extra_ids=0, model_max_length=128)


def build_image_pipeline(folder: Path) -> Path:
    """Stable Diffusion family at toy size (~320 KB). Native size 64 px (sample_size 32, VAE 2x)."""
    from diffusers import (
        AutoencoderKL,
        DDIMScheduler,
        StableDiffusionPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        block_out_channels=(4, 8),
        layers_per_block=1,
        sample_size=32,
        in_channels=4,
        out_channels=4,
        # Attention only at the coarser level: at full latent resolution it dominates CPU time.
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=2,
        norm_num_groups=2,
    )
    vae = AutoencoderKL(
        block_out_channels=[4, 8],
        in_channels=3,
        out_channels=3,
        down_block_types=["DownEncoderBlock2D", "DownEncoderBlock2D"],
        up_block_types=["UpDecoderBlock2D", "UpDecoderBlock2D"],
        latent_channels=4,
        norm_num_groups=2,
    )
    tokenizer = clip_tokenizer()
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            hidden_size=32,
            intermediate_size=37,
            num_attention_heads=4,
            num_hidden_layers=2,
            vocab_size=len(tokenizer),
            max_position_embeddings=77,
            bos_token_id=0,
            eos_token_id=1,
            pad_token_id=1,
        )
    )
    scheduler = DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
    )
    pipe: Any = StableDiffusionPipeline(
        unet=unet,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(folder)
    return folder


def build_video_pipeline(folder: Path) -> Path:
    """LTX-Video at toy size (~690 KB) with the real 32x spatial / 8x temporal VAE compression,
    so the 8n+1 frame rule and the multiple-of-32 sizes hold as they do for the real model."""
    from diffusers import (
        AutoencoderKLLTXVideo,
        FlowMatchEulerDiscreteScheduler,
        LTXPipeline,
        LTXVideoTransformer3DModel,
    )
    from transformers import T5Config, T5EncoderModel

    torch.manual_seed(0)
    transformer = LTXVideoTransformer3DModel(
        in_channels=8,
        out_channels=8,
        patch_size=1,
        patch_size_t=1,
        num_attention_heads=4,
        attention_head_dim=8,
        cross_attention_dim=32,
        num_layers=1,
        caption_channels=32,
    )
    vae = AutoencoderKLLTXVideo(
        in_channels=3,
        out_channels=3,
        latent_channels=8,
        block_out_channels=(8, 8, 8, 8),
        decoder_block_out_channels=(8, 8, 8, 8),
        layers_per_block=(1, 1, 1, 1, 1),
        decoder_layers_per_block=(1, 1, 1, 1, 1),
        spatio_temporal_scaling=(True, True, True, False),
        decoder_spatio_temporal_scaling=(True, True, True, False),
        decoder_inject_noise=(False, False, False, False, False),
        upsample_residual=(False, False, False, False),
        upsample_factor=(1, 1, 1, 1),
        timestep_conditioning=False,
        patch_size=4,
        patch_size_t=1,
        encoder_causal=True,
        decoder_causal=False,
    )
    tokenizer = t5_tokenizer()
    text_encoder = T5EncoderModel(
        T5Config(
            vocab_size=len(tokenizer),
            d_model=32,
            d_kv=8,
            d_ff=37,
            num_layers=1,
            num_heads=4,
            relative_attention_num_buckets=8,
            pad_token_id=0,
            eos_token_id=1,
        )
    )
    pipe: Any = LTXPipeline(
        transformer=transformer,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        scheduler=FlowMatchEulerDiscreteScheduler(),
    )
    pipe.save_pretrained(folder)
    return folder


def marching_cubes_tables() -> tuple[torch.Tensor, torch.Tensor]:
    """The 256-case lookup tables Shap-E's MeshDecoder expects (real checkpoints ship them; a
    renderer built from its config has zeros, which makes every mesh empty).

    Derived by running scikit-image's marching cubes on each 2x2x2 corner pattern. MeshDecoder's
    conventions: corner bit x + 2y + 4z (set = inside, field > 0); edge ids x-edges 0 + y + 2z,
    y-edges 4 + x + 2z, z-edges 8 + x + 2y.
    """
    from skimage.measure import marching_cubes

    cases = torch.zeros(256, 5, 3, dtype=torch.long)
    masks = torch.zeros(256, 5, dtype=torch.bool)
    for case in range(1, 255):
        volume = np.empty((2, 2, 2), dtype=np.float32)
        for x, y, z in product((0, 1), repeat=3):
            volume[x, y, z] = 1.0 if case >> (x + 2 * y + 4 * z) & 1 else -1.0
        verts, faces, _, _ = marching_cubes(volume, level=0.0, method="lorensen")
        edge_ids = []
        for vx, vy, vz in np.rint(verts * 2).astype(int):  # coordinates in half-steps
            if vx == 1:
                edge_ids.append(0 + vy // 2 + 2 * (vz // 2))
            elif vy == 1:
                edge_ids.append(4 + vx // 2 + 2 * (vz // 2))
            else:
                edge_ids.append(8 + vx // 2 + 2 * (vy // 2))
        for i, (a, b, c) in enumerate(faces):
            # scikit-image winds toward the low values; ours are "outside", so reverse.
            cases[case, i] = torch.tensor([edge_ids[c], edge_ids[b], edge_ids[a]])
            masks[case, i] = True
    return cases, masks


@torch.no_grad()
def _carve_ball(renderer: ShapERenderer) -> None:
    """Make the signed-distance channel a smooth ball instead of random-weight noise.

    A random renderer's SDF changes sign almost everywhere: at Shap-E's fixed 128^3 grid that is
    ~2M vertices, 7 s and 2 GB per mesh. Hidden unit 0 is wired to carry
    cos x + cos y + cos z - 2.7 (> 0 inside a ball of radius ~0.77) through every layer to the
    SDF output; SiLU and tanh keep its sign, which is all marching cubes needs. The other units
    (the colours) stay random and still depend on the latent, so the prior still matters.
    """
    # Unit 0's weights in the latent-projected layers: no latent part, a fixed bias row instead.
    for name, projection in renderer.params_proj.projections.items():
        layer = int(name.split("__")[2])  # "nerstf__mlp__0__weight"
        vectors, channels = projection.vectors, projection.channels
        weight = projection.proj.weight.view(vectors, channels, -1)
        bias = projection.proj.bias.view(vectors, channels)
        weight[0] = 0.0
        projection.norm.bias.zero_()
        bias[0] = 0.0
        if layer == 0:
            bias[0, 48:51] = 1.0  # the cos(x), cos(y), cos(z) features of the position encoding
        else:
            bias[0, 0] = 1.0
    for layer, linear in enumerate(renderer.mlp.mlp):
        if layer >= len(renderer.params_proj.projections):
            linear.weight[0] = 0.0
            linear.weight[0, 0] = 1.0
        linear.bias[0] = -2.7 if layer == 0 else 0.0


def build_shap_e_pipeline(folder: Path, *, marching_cubes: bool = True) -> Path:
    """Shap-E image-to-3D at toy size (~350 KB). `marching_cubes=False` leaves the lookup tables
    zero, as a renderer built from its config has them: every mesh then comes out empty."""
    from diffusers import HeunDiscreteScheduler, PriorTransformer, ShapEImg2ImgPipeline
    from diffusers.pipelines.shap_e import ShapERenderer
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModel

    torch.manual_seed(0)
    image_encoder = CLIPVisionModel(
        CLIPVisionConfig(
            hidden_size=32,
            image_size=32,
            projection_dim=32,
            intermediate_size=37,
            num_attention_heads=4,
            num_channels=3,
            num_hidden_layers=2,
            patch_size=4,
        )
    )
    image_processor = CLIPImageProcessor(
        crop_size=32,
        do_center_crop=True,
        do_normalize=True,
        do_resize=True,
        image_mean=[0.48145466, 0.4578275, 0.40821073],
        image_std=[0.26862954, 0.26130258, 0.27577711],
        resample=3,
        size=32,
    )
    prior = PriorTransformer(
        num_attention_heads=2,
        attention_head_dim=16,
        embedding_dim=32,
        num_embeddings=32,
        embedding_proj_dim=32,
        time_embed_dim=128,
        num_layers=1,
        clip_embed_dim=64,
        additional_embeddings=0,
        time_embed_act_fn="gelu",
        norm_in_type="layer",
        embedding_proj_norm_type="layer",
        encoder_hid_proj_type=None,
        added_emb_type=None,
    )
    renderer = ShapERenderer(
        param_shapes=((8, 93), (8, 8), (8, 8), (8, 8)),
        d_latent=32,
        d_hidden=8,
        n_output=12,
        background=(0.1, 0.1, 0.1),
    )
    if marching_cubes:
        cases, masks = marching_cubes_tables()
        renderer.mesh_decoder.cases.copy_(cases)
        renderer.mesh_decoder.masks.copy_(masks)
    _carve_ball(renderer)
    scheduler = HeunDiscreteScheduler(
        beta_schedule="exp",
        num_train_timesteps=1024,
        prediction_type="sample",
        use_karras_sigmas=True,
        clip_sample=True,
        clip_sample_range=1.0,
    )
    pipe: Any = ShapEImg2ImgPipeline(
        prior=prior,
        image_encoder=image_encoder,
        image_processor=image_processor,
        shap_e_renderer=renderer,
        scheduler=scheduler,
    )
    pipe.save_pretrained(folder)
    return folder


def build_model_dir(model_dir: Path) -> Path:
    """Every tiny pipeline, laid out as the registry expects under `KILLA_MODEL_DIR`."""
    build_image_pipeline(model_dir / IMAGE_FOLDER)
    build_video_pipeline(model_dir / VIDEO_FOLDER)
    build_shap_e_pipeline(model_dir / SHAP_E_FOLDER)
    return model_dir
