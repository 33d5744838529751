"""The vLLM backend: same prompts as torch; runs where vLLM is importable (a GPU machine), else skips."""

from __future__ import annotations

import importlib.util

import pytest
from critic_testing import frames

from vlac_core import prompts
from vlac_core.model.chat import build_prompt
from vlac_critic.backends import BackendUnavailableError, make_backend
from vlac_critic.vllm_backend import vllm_prompt_text

HAS_VLLM = importlib.util.find_spec("vllm") is not None


@pytest.mark.parametrize("n_images", [1, 2])
def test_vllm_prompt_expands_to_the_release_layout(n_images):
    """vLLM replaces each <IMG_CONTEXT> with <img> + N x <IMG_CONTEXT> + </img>; the result must be ours."""
    content = prompts.pair_progress_prompt("fold the towel") if n_images == 2 else prompts.done_prompt("x")
    n_ctx = 16
    text = vllm_prompt_text(content, n_images, "<IMG_CONTEXT>", "<s>")
    expanded = text.replace("<IMG_CONTEXT>", "<img>" + "<IMG_CONTEXT>" * n_ctx + "</img>")
    assert expanded == build_prompt(content, n_images, n_ctx)


@pytest.mark.skipif(HAS_VLLM, reason="vLLM is installed: the unavailable-backend error cannot occur")
def test_asking_for_vllm_without_it_is_a_clear_error(random_model_dir):
    with pytest.raises(BackendUnavailableError, match="needs the vllm package"):
        make_backend("vllm", random_model_dir)


@pytest.mark.skipif(not HAS_VLLM, reason="vLLM is not importable (CUDA-only optional backend)")
def test_vllm_answers_like_torch(progress_model_dir):
    from vlac_critic.critic import Critic

    f = frames(4, seed=31)
    torch_scores = Critic(make_backend("torch", progress_model_dir)).progress("open the drawer", f[:-1], f[1:])
    vllm_scores = Critic(make_backend("vllm", progress_model_dir)).progress("open the drawer", f[:-1], f[1:])
    assert [s.raw_answer for s in vllm_scores] == [s.raw_answer for s in torch_scores]
