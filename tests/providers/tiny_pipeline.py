"""Build a tiny Stable Diffusion img2img pipeline from random weights and save it to a folder.

Model weights cannot be downloaded in tests, so this assembles the same kind of pipeline a real
model id gives (UNet, VAE, CLIP text encoder and tokenizer, scheduler) at a toy size. The saved
folder loads through ``AutoPipelineForImage2Image.from_pretrained`` like any checkpoint.
"""

from __future__ import annotations

import json
from pathlib import Path

# A few ordinary words so prompts tokenize into more than single characters.
_WORDS = ("an", "oil", "painting", "of", "a", "cat", "dog", "photo", "blurry", "ugly")


def _byte_alphabet() -> list[str]:
    """The 256 printable characters CLIP's byte-level BPE maps bytes onto."""
    codes = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
             + list(range(ord("®"), ord("ÿ") + 1)))
    extra = 0
    for byte in range(256):
        if byte not in codes:
            codes.append(256 + extra)
            extra += 1
    return [chr(code) for code in codes]


def write_tokenizer_files(folder: Path) -> tuple[Path, Path]:
    """Write a tiny CLIP ``vocab.json`` and ``merges.txt``; returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    tokens = ["<|startoftext|>", "<|endoftext|>"]
    alphabet = _byte_alphabet()
    tokens += alphabet + [f"{char}</w>" for char in alphabet]
    merges: list[str] = []
    for word in _WORDS:
        # Merge left to right: "c a" -> "ca", "ca t</w>" -> "cat</w>".
        pieces = [*word[:-1], f"{word[-1]}</w>"]
        while len(pieces) > 1:
            merged = pieces[0] + pieces[1]
            merges.append(f"{pieces[0]} {pieces[1]}")
            if merged not in tokens:
                tokens.append(merged)
            pieces = [merged, *pieces[2:]]
    vocab = {token: index for index, token in enumerate(dict.fromkeys(tokens))}
    vocab_path = folder / "vocab.json"
    merges_path = folder / "merges.txt"
    vocab_path.write_text(json.dumps(vocab), encoding="utf-8")
    merges_path.write_text("#version: 0.2\n" + "\n".join(dict.fromkeys(merges)) + "\n",
                           encoding="utf-8")
    return vocab_path, merges_path


def build_tiny_pipeline(folder: Path) -> Path:
    """Assemble a random tiny ``StableDiffusionImg2ImgPipeline`` and ``save_pretrained`` it."""
    import torch
    from diffusers import (
        AutoencoderKL,
        EulerDiscreteScheduler,
        StableDiffusionImg2ImgPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    torch.manual_seed(0)
    vocab_path, merges_path = write_tokenizer_files(folder / "_tokenizer_src")
    tokenizer = CLIPTokenizer(str(vocab_path), str(merges_path), model_max_length=77)
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=1000, hidden_size=32, intermediate_size=37, num_attention_heads=4,
        num_hidden_layers=2, max_position_embeddings=77, projection_dim=32,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    ))
    unet = UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, layers_per_block=1,
        block_out_channels=(32, 64), norm_num_groups=32, cross_attention_dim=32,
        attention_head_dim=8,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
    )
    # Four blocks give the usual VAE scale factor of 8, like a real Stable Diffusion VAE.
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, layers_per_block=1,
        block_out_channels=(16, 16, 16, 16), norm_num_groups=8, sample_size=64,
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
    )
    scheduler = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012,
                                       beta_schedule="scaled_linear", num_train_timesteps=1000,
                                       steps_offset=1)
    pipe = StableDiffusionImg2ImgPipeline(
        vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet, scheduler=scheduler,
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )
    target = folder / "tiny-sd-img2img"
    pipe.save_pretrained(target)
    return target


if __name__ == "__main__":
    import sys
    import tempfile

    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp())
    print(build_tiny_pipeline(out))
