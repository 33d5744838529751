"""vLLM backend (optional, GPU): fast sampling of the action template with regex-guided decoding.

vLLM is CUDA-only and not a dependency of the stack: it is imported when a VllmBackend is built,
and ``vllm_available()`` says whether it can be. Its guided decoding keeps the text inside the same
template and ranges as the torch grammar (the regex below lists every allowed value), but its
log-probs come from a different kernel stack, and the paper measured vLLM/torch ratios of 0.4-1.8
for the same action, so every action it returns is flagged ``logprob_needs_recompute``: the trainer
re-scores it with torch (vlac_actor.scoring) before an update. It has no value head either, so
``value`` is NaN and is recomputed the same way.

Not exercised on the project's CPU machines (its test skips); one VllmBackend owns the GPU its
process sees (choose it with CUDA_VISIBLE_DEVICES), so run one actor node per GPU with it.
"""

from __future__ import annotations

import importlib.util
import math
import re
import time
from collections.abc import Sequence
from pathlib import Path

from vlac_core.action_text import TEMPLATE_FIELDS, ActionParseError, parse_action
from vlac_core.config import ConfigError
from vlac_core.model.chat import chat_prompt, insert_missing_placeholders
from vlac_core.prompts import IMAGE_PLACEHOLDER
from vlac_core.types import PolicyAction

from .grammar import ActionLimits
from .inputs import ActorInputError, InputLimits, actor_content
from .policy_settings import PolicySettings
from .request import ActorRequest


def vllm_available() -> bool:
    return importlib.util.find_spec("vllm") is not None


def vllm_logit_temperature(settings: PolicySettings) -> float:
    """The one logit temperature vLLM can apply to ``settings``' policy, or a ConfigError naming the key:
    vLLM samples a request at one temperature, so a policy whose fields have their own
    (``field_logit_temperatures``) would be sampled from another policy than the one it records and trains."""
    shared = settings.one_temperature
    if shared is None:
        raise ConfigError(
            f"backend 'vllm': the policy's field_logit_temperatures {list(settings.field_logit_temperatures)} "
            "differ per field, and vLLM samples a request at one temperature; serve this checkpoint with backend "
            "'torch'"
        )
    return shared


def _int_alternation(low: int, high: int) -> str:
    # Longest literals first so the regex engine never stops at a prefix ("1" before "17").
    literals = sorted((str(v) for v in range(low, high + 1)), key=lambda s: (-len(s), s))
    return "(" + "|".join(re.escape(s) for s in literals) + ")"


def action_regex(limits: ActionLimits) -> str:
    """A regex matching exactly the action texts the torch grammar can produce under ``limits``."""
    parts = []
    for k, (name, unit) in enumerate(TEMPLATE_FIELDS):
        parts.append(f"{name}: {_int_alternation(*limits.field_range(k))}{re.escape(unit)}")
    return r"\{" + ", ".join(parts) + r"\}"


def vllm_prompt(content: str, n_images: int, image_token: str = "<IMG_CONTEXT>") -> str:
    """The release's chat text with one ``image_token`` per image, which vLLM's InternVL processor expands.

    transformers' InternVL processing turns each image token into ``<img>`` + N context tokens +
    ``</img>``; the release layout has a newline after ``</img>``, added here.
    """
    content = insert_missing_placeholders(content, n_images).replace(IMAGE_PLACEHOLDER, image_token + "\n")
    return chat_prompt(content)


class VllmBackend:
    """One vLLM engine serving one policy version; see the module docstring for what it cannot do."""

    def __init__(
        self,
        checkpoint_path: str | Path,
        version: int,
        limits: ActionLimits | None = None,
        input_limits: InputLimits | None = None,
        dtype: str = "auto",
        gpu_memory_utilization: float = 0.85,
        max_action_tokens: int = 96,
        logit_temperature: float = 1.0,
    ) -> None:
        """``logit_temperature``: the policy's one temperature (``vllm_logit_temperature``); vLLM samples at the
        request's temperature times it, which is sampling softmax(logits / logit_temperature) at the request's."""
        if not vllm_available():
            raise ImportError("backend 'vllm' needs the vllm package (CUDA only): pip install vllm")
        import vllm

        self.policy_version = version
        self.logit_temperature = logit_temperature
        self.limits = limits or ActionLimits()
        self.input_limits = input_limits or InputLimits()
        self.llm = vllm.LLM(
            model=str(checkpoint_path),
            dtype=dtype,
            gpu_memory_utilization=gpu_memory_utilization,
            limit_mm_per_prompt={"image": 3},
        )
        self._regex = action_regex(self.limits)
        self._max_tokens = max_action_tokens

    def _sampling_params(self, request: ActorRequest):
        import vllm

        settings = request.sampling
        kwargs = {
            "temperature": 0.0 if settings.greedy else settings.temperature * self.logit_temperature,
            "top_p": 1.0 if settings.greedy else settings.top_p,
            "top_k": -1,
            "max_tokens": self._max_tokens,
            "logprobs": 0,  # the chosen token's log-prob only
        }
        sampling_params = vllm.sampling_params
        if hasattr(sampling_params, "StructuredOutputsParams"):  # vLLM >= 0.11
            kwargs["structured_outputs"] = sampling_params.StructuredOutputsParams(regex=self._regex)
        else:
            kwargs["guided_decoding"] = sampling_params.GuidedDecodingParams(regex=self._regex)
        return vllm.SamplingParams(**kwargs)

    def act(self, requests: Sequence[ActorRequest]) -> list[PolicyAction | Exception]:
        from PIL import Image

        results: list[PolicyAction | Exception] = [ActorInputError("not decoded")] * len(requests)
        ready, prompts, params = [], [], []
        for i, request in enumerate(requests):
            try:
                content, images = actor_content(request.observation, self.input_limits, request.history)
            except ValueError as error:
                results[i] = error
                continue
            ready.append(i)
            prompts.append(
                {
                    "prompt": vllm_prompt(content, len(images)),
                    "multi_modal_data": {"image": [Image.fromarray(im) for im in images]},
                }
            )
            params.append(self._sampling_params(request))
        if not ready:
            return results
        try:
            outputs = self.llm.generate(prompts, params, use_tqdm=False)
        except Exception as error:
            for i in ready:
                results[i] = error
            return results
        done_s = time.monotonic()
        for i, output in zip(ready, outputs, strict=True):
            completion = output.outputs[0]
            obs = requests[i].observation
            try:
                delta = parse_action(completion.text)
            except ActionParseError as error:  # e.g. max_tokens reached; never becomes motion
                results[i] = error
                continue
            logprobs = tuple(
                float(step[token].logprob)
                for token, step in zip(completion.token_ids, completion.logprobs or [], strict=False)
            )
            results[i] = PolicyAction(
                delta=delta,
                text=completion.text.strip(),
                token_logprobs=logprobs,
                value=math.nan,
                policy_version=self.policy_version,
                obs_stamp_s=obs.stamp_s,
                inference_latency_s=done_s - requests[i].received_s,
                robot_id=obs.robot_id,
                obs_seq=obs.seq,
                logprob_needs_recompute=True,
            )
        return results
