"""vLLM backend of the critic (GPU only; optional, import-guarded).

Why it exists: vLLM batches many pairs with paged attention and is several times faster on a GPU.
Same prompts: the CONTENT strings come from ``vlac_core.prompts`` and are wrapped in the same chat
layout (``vlac_core.model.chat``). One difference is handled here: vLLM's InternVL (transformers
format) expands each ``<IMG_CONTEXT>`` placeholder into ``<img>`` + N x ``<IMG_CONTEXT>`` + ``</img>``
itself, so each ``<image>`` is written as ``<IMG_CONTEXT>⏎`` — which yields the release's
``</img>⏎`` layout. Images are squash-resized here to the model's size so its tiler sees one tile.
BOS is written into the text only when the tokenizer does not add it itself.

Greedy decoding (temperature 0). The done probability uses the first answer token's top-20
log-probabilities; a digit outside the top 20 counts as probability 0 (it would fall below the
expected-digit rule's 0.1 x top cut anyway, unless the whole top is spread thinly).

Not exercised in CI (the PyPI vLLM is CUDA-only); its test skips with the reason where vLLM is
not importable.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from .backends import BackendOutput, BackendUnavailableError

TOP_LOGPROBS = 20
MAX_IMAGES_PER_PROMPT = 14  # 11 reference frames + first frame + the pair


def vllm_prompt_text(content: str, n_images: int, image_token: str, bos_text: str) -> str:
    """The prompt vLLM gets: each image as ``<IMG_CONTEXT>⏎``, which vLLM expands to ``<img>…</img>⏎``."""
    from vlac_core.model.chat import chat_prompt, insert_missing_placeholders
    from vlac_core.prompts import IMAGE_PLACEHOLDER

    content = insert_missing_placeholders(content, n_images)
    return chat_prompt(content.replace(IMAGE_PLACEHOLDER, image_token + "\n"), bos_token=bos_text)


class VllmBackend:
    """Runs a transformers-format InternVL checkpoint with vLLM's offline ``LLM``."""

    name = "vllm"

    def __init__(self, checkpoint: str | Path, dtype: str | None = None, gpu_memory_utilization: float = 0.85):
        try:
            import vllm
        except ImportError as exc:
            raise BackendUnavailableError(
                "backend 'vllm' needs the vllm package (CUDA only): pip install vllm on a GPU machine"
            ) from exc
        from PIL import Image  # noqa: F401  (vLLM takes PIL images)

        from vlac_core.model import check_checkpoint_dir, load_processor

        path = check_checkpoint_dir(checkpoint)
        self._vllm = vllm
        self.processor = load_processor(path)
        tok = self.processor.tokenizer
        probe = tok("x")["input_ids"]
        self._bos_text = "" if probe and probe[0] == tok.bos_token_id else tok.bos_token
        self.llm = vllm.LLM(
            model=str(path),
            dtype=dtype or "bfloat16",
            gpu_memory_utilization=gpu_memory_utilization,
            limit_mm_per_prompt={"image": MAX_IMAGES_PER_PROMPT},
            mm_processor_kwargs={"crop_to_patches": False},
        )

    @property
    def image_size_px(self) -> int:
        return self.processor.image_size_px

    def prompt_text(self, content: str, n_images: int) -> str:
        return vllm_prompt_text(content, n_images, self.processor.image_token, self._bos_text)

    def generate(self, contents, images, max_new_tokens, digits=None) -> BackendOutput:
        from PIL import Image

        from vlac_core.model import squash_resize

        start = time.perf_counter()
        size = self.image_size_px
        requests = []
        for i, (content, ims) in enumerate(zip(contents, images, strict=True)):
            pil = [Image.fromarray(squash_resize(im, size, f"images[{i}][{k}]")) for k, im in enumerate(ims)]
            requests.append({"prompt": self.prompt_text(content, len(ims)), "multi_modal_data": {"image": pil}})
        params = self._vllm.SamplingParams(
            temperature=0.0, max_tokens=max_new_tokens, logprobs=TOP_LOGPROBS if digits is not None else None
        )
        prepared = time.perf_counter()
        outputs = self.llm.generate(requests, params, use_tqdm=False)
        generated = time.perf_counter()
        texts = [out.outputs[0].text for out in outputs]
        probs = None
        if digits is not None:
            probs = np.zeros((len(outputs), len(digits)))
            for row, out in enumerate(outputs):
                first = out.outputs[0].logprobs[0] if out.outputs[0].logprobs else {}
                for logprob in first.values():
                    text = (logprob.decoded_token or "").strip()
                    if text in {str(d) for d in digits}:
                        probs[row, list(digits).index(int(text))] += float(np.exp(logprob.logprob))
        timings = {"preprocess_s": prepared - start, "generate_s": generated - prepared}
        return BackendOutput(texts=texts, first_digit_probs=probs, timings_s=timings)
