"""Critic latency: per-pair latency and pairs/s of pair-wise progress vs batch size (1, 4, 16).

Each batch holds consecutive pairs of one trajectory (B pairs share B + 1 frames, each resized once,
as in trajectory evaluation). Its time is split into preprocessing (squash-resize of 640x480 camera
frames, normalisation, tokenisation in the release's chat layout), generation (prefill of both images + greedy decoding,
on the device) and parsing. Models:

- ``tiny``: the offline tiny InternVL (~0.7 M parameters, 64 px, patch 8) — always, on CPU unless
  ``--device`` says otherwise;
- ``internvl2-2b``: a real-size InternVL2-2B configuration (InternViT-300M at 448 px, 256 image
  tokens per image, InternLM2-1.8B as a Llama decoder, vocab 92553) with random weights in bf16 —
  when a GPU is present (``--models auto``, the default) or asked for.

Random weights never emit the end-of-turn token, so every answer runs the full ``--max-new-tokens``
(default 8, enough for "-100.0"): a worst case; a trained critic answers in 3-5 tokens.
Prints a line per measurement and, as its last line, one JSON object.
Usage: python bench/critic_latency.py [--models auto|tiny|internvl2-2b|all] [--repeats 10] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import statistics
import tempfile
import time

import numpy as np
import torch

BATCH_SIZES = (1, 4, 16)
TASK = "pick up the red cube and put it in the bowl"


def internvl2_2b_config(vocab_size: int, image_token_id: int, eos_token_id: int, pad_token_id: int):
    """InternVL2-2B sizes (InternViT-300M-448px + InternLM2-chat-1.8B) in transformers' InternVL format."""
    from transformers import InternVLConfig, LlamaConfig

    text = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=2048,
        intermediate_size=8192,
        num_hidden_layers=24,
        num_attention_heads=16,
        num_key_value_heads=8,
        max_position_embeddings=32768,
        rms_norm_eps=1e-5,
        rope_theta=1_000_000.0,
        tie_word_embeddings=False,
        eos_token_id=eos_token_id,
        pad_token_id=pad_token_id,
    )
    vision = {
        "hidden_size": 1024,
        "num_hidden_layers": 24,
        "num_attention_heads": 16,
        "intermediate_size": 4096,
        "image_size": [448, 448],
        "patch_size": [14, 14],
        "attention_bias": True,
    }
    return InternVLConfig(
        vision_config=vision,
        text_config=text.to_dict(),
        image_token_id=image_token_id,
        image_seq_length=256,
        tie_word_embeddings=False,
    )


def load_tiny(device: str | None, dtype: str | None, workdir: str):
    from vlac_core.model import build_tiny_model, load_model

    return load_model(build_tiny_model(f"{workdir}/tiny"), device=device, dtype=dtype)


def load_2b(device: str | None, dtype: str | None):
    from transformers import InternVLForConditionalGeneration

    from vlac_core.model import LoadedModel, TinyModelSpec, build_tiny_processor, resolve_device, resolve_dtype

    resolved_device = resolve_device(device)
    resolved_dtype = resolve_dtype(dtype, resolved_device)
    processor = build_tiny_processor(TinyModelSpec(image_size_px=448, patch_size_px=14))
    tok = processor.tokenizer
    config = internvl2_2b_config(92553, tok.context_image_token_id, tok.eos_token_id, tok.pad_token_id)
    torch.manual_seed(0)
    with torch.device(resolved_device):
        model = InternVLForConditionalGeneration(config).to(resolved_dtype).eval()
    model.generation_config.eos_token_id = tok.eos_token_id
    model.generation_config.pad_token_id = tok.pad_token_id
    assert processor.image_seq_length == 256
    return LoadedModel(model=model, processor=processor, device=resolved_device, dtype=resolved_dtype, path=None)


def measure(loaded, name: str, batch_sizes, repeats: int, max_new_tokens: int) -> list[dict]:
    from vlac_critic.backends import TorchBackend
    from vlac_critic.critic import Critic

    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (480, 640, 3), dtype=np.uint8) for _ in range(max(batch_sizes) + 1)]
    rows = []
    n_params = sum(p.numel() for p in loaded.model.parameters())
    for batch_size in batch_sizes:
        critic = Critic(TorchBackend(loaded), batch_size=batch_size, max_new_tokens=max_new_tokens)
        earlier, later = frames[:batch_size], frames[1 : batch_size + 1]
        critic.progress(TASK, earlier, later)  # warm-up (allocations, kernels)
        samples = {"preprocess_s": [], "generate_s": [], "parse_s": [], "total_s": []}
        for _ in range(repeats):
            before = dict(critic.stats.timings_s)
            start = time.perf_counter()
            critic.progress(TASK, earlier, later)
            if loaded.device.type == "cuda":
                torch.cuda.synchronize()
            samples["total_s"].append(time.perf_counter() - start)
            for key in ("preprocess_s", "generate_s", "parse_s"):
                samples[key].append(critic.stats.timings_s[key] - before[key])
        med = {k: statistics.median(v) for k, v in samples.items()}
        row = {
            "model": name,
            "params_m": round(n_params / 1e6, 2),
            "device": str(loaded.device),
            "dtype": str(loaded.dtype).replace("torch.", ""),
            "batch_size": batch_size,
            "preprocess_ms": round(med["preprocess_s"] * 1e3, 2),
            "generate_ms": round(med["generate_s"] * 1e3, 2),
            "parse_ms": round(med["parse_s"] * 1e3, 3),
            "batch_ms": round(med["total_s"] * 1e3, 2),
            "per_pair_ms": round(med["total_s"] * 1e3 / batch_size, 2),
            "pairs_per_s": round(batch_size / med["total_s"], 2),
            "max_new_tokens": max_new_tokens,
            "repeats": repeats,
        }
        print(
            f"{name:>13} B={batch_size:<3} preprocess {row['preprocess_ms']:8.2f} ms"
            f"  generate {row['generate_ms']:9.2f} ms  parse {row['parse_ms']:6.3f} ms"
            f"  per pair {row['per_pair_ms']:8.2f} ms  {row['pairs_per_s']:8.2f} pairs/s",
            flush=True,
        )
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--models",
        default="auto",
        choices=("auto", "tiny", "internvl2-2b", "all"),
        help="auto: tiny, plus internvl2-2b when a GPU is present",
    )
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=list(BATCH_SIZES))
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--max-new-tokens", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--tiny-device", default="cpu", help="device of the tiny model (default cpu)")
    parser.add_argument("--device", default=None, help="device of the 2B model (default: cuda if available)")
    parser.add_argument("--dtype", default=None, help="dtype of the 2B model (default: bf16 on cuda, fp32 on cpu)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    logging.getLogger("vlac_critic").setLevel(logging.ERROR)  # random weights: every answer is unparsable
    has_gpu = torch.cuda.is_available()
    run_2b = args.models in ("internvl2-2b", "all") or (args.models == "auto" and has_gpu)
    run_tiny = args.models in ("tiny", "all", "auto")
    results = []
    with tempfile.TemporaryDirectory() as workdir:
        if run_tiny:
            results += measure(
                load_tiny(args.tiny_device, None, workdir), "tiny", args.batch_sizes, args.repeats, args.max_new_tokens
            )
        if run_2b:
            loaded = load_2b(args.device, args.dtype)
            results += measure(loaded, "internvl2-2b", args.batch_sizes, args.repeats, args.max_new_tokens)
    summary = {
        "bench": "critic_latency",
        "torch": torch.__version__,
        "threads": args.threads,
        "cpu": platform.processor() or platform.machine(),
        "gpu": torch.cuda.get_device_name(0) if has_gpu else None,
        "note": "random weights decode max_new_tokens every time (worst case); medians over repeats",
        "results": results,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
