"""Tiny random-weight audio models, built offline and saved as `KILLA_MODEL_DIR` holds real ones.

The diffusers pipelines are written with `save_pretrained`, the pocket-tts model as a YAML config
plus safetensors and a SentencePiece tokenizer, so the engines load them through exactly their
production code paths. Tokenizers are trained on a few sentences in memory; nothing touches the
hub. Shapes keep the real models' time structure (Oobleck hop 2048 at 44.1 kHz for Stable Audio,
1920 at 48 kHz for ACE-Step, Mimi at 12.5 frames/s for pocket-tts), so durations behave as in
production.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import yaml

SOUND_EFFECTS_FOLDER = "sound-effects"
MUSIC_FOLDER = "music"
POCKET_FOLDER = Path("speech") / "pocket-tts"
# Stable Audio's window is sample_size * hop / rate: 64 * 2048 / 44100 = 2.97 s.
STABLE_AUDIO_SAMPLE_SIZE = 64

_SENTENCES = [
    "A hammer hitting a wooden surface.",
    "Rain falling on a tin roof while thunder rolls over the hills.",
    "The quick brown fox jumps over the lazy dog.",
    "We walk to the market every morning and sing a happy song.",
    "Upbeat pop with piano, drums and a warm female voice.",
    "[verse] Hello world, we sing about the sunny day.",
]


def _t5_tokenizer():  # type: ignore[no-untyped-def]
    """A T5 unigram tokenizer trained in memory (pad, eos, unk at ids 0, 1, 2 as T5 expects)."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from tokenizers.trainers import UnigramTrainer
    from transformers import T5TokenizerFast

    tokenizer = Tokenizer(models.Unigram())
    tokenizer.normalizer = normalizers.NFKC()
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    tokenizer.decoder = decoders.Metaspace()
    trainer = UnigramTrainer(
        vocab_size=120, special_tokens=["<pad>", "</s>", "<unk>"], unk_token="<unk>"
    )
    tokenizer.train_from_iterator(_SENTENCES * 10, trainer)
    tokenizer.post_processor = processors.TemplateProcessing(
        single="$A </s>", special_tokens=[("</s>", tokenizer.token_to_id("</s>"))]
    )
    return T5TokenizerFast(
        tokenizer_object=tokenizer,
        model_max_length=64,
        extra_ids=0,
        pad_token="<pad>",
        eos_token="</s>",
        unk_token="<unk>",
    )


def _qwen_tokenizer():  # type: ignore[no-untyped-def]
    """Byte-level BPE with `<|endoftext|>`, which ACE-Step's prompt template relies on."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from tokenizers.trainers import BpeTrainer
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = BpeTrainer(
        vocab_size=320,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tokenizer.train_from_iterator(_SENTENCES * 10, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        eos_token="<|endoftext|>",
        pad_token="<|endoftext|>",
        model_max_length=4096,
    )


def _oobleck(ratios: list[int], latent_channels: int, rate: int):  # type: ignore[no-untyped-def]
    from diffusers import AutoencoderOobleck

    return AutoencoderOobleck(
        encoder_hidden_size=4,
        downsampling_ratios=ratios,
        channel_multiples=[1] * len(ratios),
        decoder_channels=4,
        decoder_input_channels=latent_channels,
        audio_channels=2,
        sampling_rate=rate,
    )


def build_stable_audio_pipeline(model_dir: Path) -> Path:
    """Stable Audio Open at toy size (~200 KB): 44.1 kHz stereo, a 2.97 s window."""
    from diffusers import (
        CosineDPMSolverMultistepScheduler,
        StableAudioDiTModel,
        StableAudioPipeline,
        StableAudioProjectionModel,
    )
    from transformers import T5Config, T5EncoderModel

    torch.manual_seed(0)
    tokenizer = _t5_tokenizer()
    text_encoder = T5EncoderModel(
        T5Config(
            vocab_size=len(tokenizer),
            d_model=16,
            d_kv=4,
            d_ff=32,
            num_layers=1,
            num_heads=2,
            pad_token_id=0,
            eos_token_id=1,
        )
    )
    transformer = StableAudioDiTModel(
        sample_size=STABLE_AUDIO_SAMPLE_SIZE,
        in_channels=4,
        num_layers=1,
        attention_head_dim=8,
        num_attention_heads=2,
        num_key_value_attention_heads=1,
        out_channels=4,
        cross_attention_dim=16,
        time_proj_dim=8,
        global_states_input_dim=32,
        cross_attention_input_dim=16,
    )
    pipe = StableAudioPipeline(
        vae=_oobleck([2, 4, 4, 8, 8], latent_channels=4, rate=44_100),
        text_encoder=text_encoder,
        # The real checkpoint's duration conditioner knows 0..512 s.
        projection_model=StableAudioProjectionModel(
            text_encoder_dim=16, conditioning_dim=16, min_value=0, max_value=512
        ),
        tokenizer=tokenizer,
        transformer=transformer,
        scheduler=CosineDPMSolverMultistepScheduler(
            solver_order=2,
            prediction_type="v_prediction",
            sigma_data=1.0,
            sigma_schedule="exponential",
        ),
    )
    folder = model_dir / SOUND_EFFECTS_FOLDER
    pipe.save_pretrained(folder)
    return folder


def build_ace_step_pipeline(model_dir: Path, *, turbo: bool = False) -> Path:
    """ACE-Step 1.5 at toy size (~1 MB): 48 kHz stereo, 25 latents a second."""
    from diffusers import AceStepPipeline, FlowMatchEulerDiscreteScheduler
    from diffusers.models.transformers.ace_step_transformer import AceStepTransformer1DModel
    from diffusers.pipelines.ace_step import AceStepConditionEncoder
    from transformers import Qwen3Config, Qwen3Model

    torch.manual_seed(0)
    tokenizer = _qwen_tokenizer()
    heads: dict[str, Any] = {"num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 8}
    transformer = AceStepTransformer1DModel(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        in_channels=24,
        audio_acoustic_hidden_dim=8,
        patch_size=2,
        rope_theta=10000.0,
        sliding_window=16,
        is_turbo=turbo,
        **heads,
    )
    text_encoder = Qwen3Model(
        Qwen3Config(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=1,
            vocab_size=len(tokenizer),
            max_position_embeddings=4096,
            **heads,
        )
    )
    condition_encoder = AceStepConditionEncoder(
        hidden_size=32,
        intermediate_size=64,
        text_hidden_dim=32,
        timbre_hidden_dim=8,
        num_lyric_encoder_hidden_layers=1,
        num_timbre_encoder_hidden_layers=1,
        rope_theta=10000.0,
        sliding_window=16,
        **heads,
    )
    pipe = AceStepPipeline(
        vae=_oobleck([2, 4, 4, 6, 10], latent_channels=8, rate=48_000),
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        transformer=transformer,
        condition_encoder=condition_encoder,
        # ACE-Step feeds its own sigmas; the scheduler must take them verbatim.
        scheduler=FlowMatchEulerDiscreteScheduler(num_train_timesteps=1, shift=1.0),
    )
    folder = model_dir / MUSIC_FOLDER
    pipe.save_pretrained(folder)
    return folder


def build_pocket_tts_model(model_dir: Path) -> Path:
    """A pocket-tts model at toy size (~470 KB) whose config names its files by relative paths,
    as an operator would write it (the engine must resolve them against the YAML's folder)."""
    import safetensors.torch
    import sentencepiece

    folder = model_dir / POCKET_FOLDER
    folder.mkdir(parents=True)
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(_SENTENCES * 20),
        model_prefix=str(folder / "tokenizer"),
        vocab_size=64,
        model_type="unigram",
        hard_vocab_limit=False,
        minloglevel=2,
    )
    n_bins = sentencepiece.SentencePieceProcessor(
        model_file=str(folder / "tokenizer.model")
    ).vocab_size()
    seanet = {
        "dimension": 16,
        "channels": 1,
        "n_filters": 4,
        "n_residual_layers": 1,
        "ratios": [6, 5, 4],
        "kernel_size": 7,
        "residual_kernel_size": 3,
        "last_kernel_size": 3,
        "dilation_base": 2,
        "pad_mode": "constant",
        "compress": 2,
    }
    config = {
        "flow_lm": {
            "dtype": "float32",
            "flow": {"dim": 16, "depth": 1},
            "transformer": {
                "d_model": 32,
                "hidden_scale": 2,
                "max_period": 10000,
                "num_heads": 2,
                "num_layers": 1,
            },
            "lookup_table": {
                "dim": 32,
                "n_bins": n_bins,
                "tokenizer": "sentencepiece",
                "tokenizer_path": str(folder / "tokenizer.model"),
            },
        },
        "mimi": {
            "dtype": "float32",
            "sample_rate": 24000,
            "channels": 1,
            "frame_rate": 12.5,
            "inner_dim": 8,
            "outer_dim": 16,
            "seanet": seanet,
            "transformer": {
                "d_model": 16,
                "input_dimension": 16,
                "output_dimensions": [16],
                "num_heads": 2,
                "num_layers": 1,
                "layer_scale": 0.01,
                "context": 250,
                "dim_feedforward": 32,
            },
            "quantizer": {"dimension": 8, "output_dimension": 16},
        },
    }
    # Build it uninitialised through pocket-tts's own loader, then give it weights.
    (folder / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    threads = torch.get_num_threads()
    try:
        from pocket_tts import TTSModel
    finally:
        torch.set_num_threads(threads)  # importing pocket_tts sets one thread process-wide
    torch.manual_seed(0)
    model = TTSModel.load_model(config=folder / "config.yaml")
    with torch.no_grad():
        # Zeros out of the box: cloning would ignore the reference entirely.
        model.flow_lm.speaker_proj_weight.normal_(0.0, 0.5)
    safetensors.torch.save_file(model.state_dict(), folder / "model.safetensors")

    config["weights_path"] = "model.safetensors"
    config["flow_lm"]["lookup_table"]["tokenizer_path"] = "tokenizer.model"  # type: ignore[index]
    (folder / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    return folder
