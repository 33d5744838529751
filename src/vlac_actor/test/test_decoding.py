"""Structured decoding and re-scoring: always a parsable in-range action, log-probs the trainer can recompute."""

from __future__ import annotations

import pytest
import torch
from actor_testing import TEST_LIMITS, make_observation
from hypothesis import given, settings
from hypothesis import strategies as st

from vlac_actor.decoding import SamplingSettings, decode_actions
from vlac_actor.grammar import ActionGrammar, ActionLimits
from vlac_actor.inputs import InputLimits, actor_content
from vlac_actor.policy import Policy, load_policy
from vlac_actor.policy_settings import PolicySettings
from vlac_actor.scoring import prompt_features, score_actions, state_values
from vlac_core.action_text import parse_action
from vlac_core.types import ACTION_FIELDS, DeltaAction


def _inputs(seeds, tasks=None):
    tasks = tasks or ["pick up the red cube"] * len(seeds)
    pairs = [actor_content(make_observation(s, task=t), InputLimits()) for s, t in zip(seeds, tasks, strict=True)]
    return [c for c, _ in pairs], [i for _, i in pairs]


# different task lengths -> different prompt lengths -> left padding inside the batch
TASKS = ["pick up the red cube", "open the drawer and put the bowl in the sink please", "fold the towel"]


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    temperature=st.floats(0.3, 3.0),
    top_p=st.floats(0.05, 1.0),
    greedy=st.booleans(),
    n_views=st.integers(1, 3),
)
def test_decoded_actions_always_parse_and_stay_in_range(policy, seed, temperature, top_p, greedy, n_views):
    limits = InputLimits(num_views=n_views)
    pairs = [actor_content(make_observation(seed % 5 + k, n_views=n_views), limits) for k in range(2)]
    chosen = SamplingSettings(greedy=greedy, temperature=temperature, top_p=top_p)
    generator = torch.Generator().manual_seed(seed)
    decoded = decode_actions(policy, [c for c, _ in pairs], [i for _, i in pairs], [chosen] * 2, generator)
    for action in decoded:
        assert parse_action(action.text) == action.delta
        for k, value in enumerate(action.delta.as_tuple()):
            low, high = TEST_LIMITS.field_range(k)
            assert low <= value <= high, f"{ACTION_FIELDS[k]} = {value}"
        assert len(action.token_logprobs) == len(policy.grammar.walk(action.token_ids))
        assert all(lp <= 0.0 for lp in action.token_logprobs)
        assert action.logprob == pytest.approx(sum(action.token_logprobs))


def test_sampled_log_probs_and_values_are_recomputed_by_scoring_batched_with_padding(policy):
    contents, images = _inputs([0, 1, 2], TASKS)
    generator = torch.Generator().manual_seed(3)
    decoded = decode_actions(policy, contents, images, [SamplingSettings(temperature=1.5)] * 3, generator)
    scores = score_actions(policy, contents, images, [d.text for d in decoded])
    for row, action in enumerate(decoded):
        # read as the PPO loss reads them: the (B, S) padded tensor under its mask
        assert scores.token_logprobs[row][scores.mask[row]].tolist() == pytest.approx(action.token_logprobs, abs=1e-5)
        assert float(scores.values[row]) == pytest.approx(action.value, abs=1e-5)
        assert float(scores.logprob[row]) == pytest.approx(action.logprob, abs=1e-4)
        assert scores.entropies[row][scores.mask[row]].tolist() == pytest.approx(action.entropies, abs=1e-5)
        assert all(e >= 0 for e in action.entropies)
    # the same action scored alone (no padding) agrees too
    alone = score_actions(policy, contents[1:2], images[1:2], [decoded[1].delta])
    assert alone.token_logprobs[0][alone.mask[0]].tolist() == pytest.approx(decoded[1].token_logprobs, abs=1e-5)


def test_value_is_a_state_value_read_before_the_action(policy):
    """V(s) must not depend on the action sampled at s: the sampler, the re-scorer (any action, any padding)
    and the bootstrap readout give one value per state, and different states get different values."""
    contents, images = _inputs([0, 1, 2], TASKS)
    decoded = decode_actions(policy, contents, images, [SamplingSettings(greedy=True)] * 3)
    other = [DeltaAction(40, -7, 3, 10, -5, 90, 0)] * 3
    other_scores = score_actions(policy, contents, images, other)
    alone = state_values(policy, contents, images)
    for row, action in enumerate(decoded):
        assert float(other_scores.values[row]) == pytest.approx(action.value, abs=1e-5)
        assert float(alone[row]) == pytest.approx(action.value, abs=1e-5)
    assert len({round(d.value, 6) for d in decoded}) == 3


def test_prompt_features_are_each_prompts_last_token_whatever_the_padding(policy):
    """A probe reads one feature row per state: batched (left-padded) rows equal each prompt alone, the value
    head on them is V(s), score_actions carries the same rows, and different states get different rows."""
    contents, images = _inputs([0, 1, 2], TASKS)
    batched = prompt_features(policy, contents, images)
    assert batched.shape == (3, policy.value_head.hidden_size)
    for row in range(3):
        alone = prompt_features(policy, contents[row : row + 1], images[row : row + 1])
        assert torch.allclose(alone[0], batched[row], atol=1e-5)
    with torch.inference_mode():
        values = policy.value_head(batched)
    assert values.tolist() == pytest.approx(state_values(policy, contents, images).tolist(), abs=1e-6)
    scored = score_actions(policy, contents, images, [DeltaAction(40, -7, 3, 10, -5, 90, 1)] * 3)
    assert torch.allclose(scored.prompt_hidden, batched, atol=1e-5)  # the rows score_actions reads V(s) from
    assert not torch.allclose(batched[0], batched[1], atol=1e-3)


def test_open_logprob_is_the_gripper_decision_alone(policy):
    """The two answers of the gripper field after the same other fields share one distribution (probabilities
    sum to 1), and everything before it is scored the same: the property reads the open decision, nothing else."""
    contents, images = _inputs([0, 1, 2], TASKS)
    opened = score_actions(policy, contents, images, [DeltaAction(40, -7, 3, 10, -5, 90, 1)] * 3)
    held = score_actions(policy, contents, images, [DeltaAction(40, -7, 3, 10, -5, 90, 0)] * 3)
    total = opened.open_logprob.exp() + held.open_logprob.exp()
    assert total.tolist() == pytest.approx([1.0] * 3, abs=1e-5)
    assert torch.allclose(opened.logprob - opened.open_logprob, held.logprob - held.open_logprob, atol=1e-5)
    assert not torch.allclose(opened.open_logprob, held.open_logprob, atol=1e-3)


def test_batched_decoding_matches_one_by_one(policy):
    contents, images = _inputs([4, 5, 6], TASKS)
    greedy = SamplingSettings(greedy=True)
    batched = decode_actions(policy, contents, images, [greedy] * 3)
    for row in range(3):
        (alone,) = decode_actions(policy, contents[row : row + 1], images[row : row + 1], [greedy])
        assert alone.text == batched[row].text
        assert alone.token_logprobs == pytest.approx(batched[row].token_logprobs, abs=1e-5)


def test_a_generator_per_row_samples_each_row_as_it_would_alone(policy):
    """One generator per row: a row's draws do not depend on the rows batched with it (with one shared generator
    they do: the rows draw from it in turn)."""
    contents, images = _inputs([4, 5, 6], TASKS)
    hot = SamplingSettings(temperature=1.5)

    def generators():
        return [torch.Generator().manual_seed(100 + row) for row in range(3)]

    batched = decode_actions(policy, contents, images, [hot] * 3, generators())
    for row, generator in enumerate(generators()):
        (alone,) = decode_actions(policy, contents[row : row + 1], images[row : row + 1], [hot], [generator])
        assert alone.text == batched[row].text
    with pytest.raises(ValueError, match="one generator per row, got 2 for 3 rows"):
        decode_actions(policy, contents, images, [hot] * 3, generators()[:2])


def test_greedy_equals_vanishing_temperature_and_vanishing_top_p(policy):
    contents, images = _inputs([7])
    (greedy,) = decode_actions(policy, contents, images, [SamplingSettings(greedy=True)])
    (cold,) = decode_actions(policy, contents, images, [SamplingSettings(temperature=1e-4)], torch.Generator())
    (narrow,) = decode_actions(policy, contents, images, [SamplingSettings(top_p=1e-6)], torch.Generator())
    assert cold.text == greedy.text == narrow.text
    # recorded log-probs are the temperature-1 policy's, whatever the sampling temperature
    assert cold.token_logprobs == pytest.approx(greedy.token_logprobs, abs=1e-6)


def test_a_logit_temperature_sharpens_sampling_and_scoring_alike_and_keeps_the_greedy_action(policy):
    from dataclasses import replace

    sharp = replace(policy, settings=replace(policy.settings, logit_temperature=0.5))
    contents, images = _inputs([0, 1, 2], TASKS)
    greedy = SamplingSettings(greedy=True)
    assert [d.text for d in decode_actions(sharp, contents, images, [greedy] * 3)] == [
        d.text for d in decode_actions(policy, contents, images, [greedy] * 3)
    ]
    decoded = decode_actions(sharp, contents, images, [SamplingSettings()] * 3, torch.Generator().manual_seed(4))
    scores = score_actions(sharp, contents, images, [d.text for d in decoded])
    plain = score_actions(policy, contents, images, [d.text for d in decoded])
    for row, action in enumerate(decoded):  # what the actor records is what the trainer recomputes
        assert scores.token_logprobs[row][scores.mask[row]].tolist() == pytest.approx(action.token_logprobs, abs=1e-5)
    # the tempered policy is another distribution: lower entropy per decision than the same logits at 1
    assert float(scores.entropies[scores.mask].mean()) < float(plain.entropies[plain.mask].mean())
    assert not torch.allclose(scores.token_logprobs[scores.mask], plain.token_logprobs[plain.mask])


def test_field_temperatures_temper_each_fields_decisions_alone_in_sampling_and_scoring(policy):
    from dataclasses import replace

    cold_translation = (0.2, 0.2, 0.2, 1.0, 1.0, 1.0, 1.0)
    mixed = replace(policy, settings=replace(policy.settings, field_logit_temperatures=cold_translation))
    cold = replace(policy, settings=replace(policy.settings, logit_temperature=0.2))
    contents, images = _inputs([0, 1, 2], TASKS)
    decoded = decode_actions(mixed, contents, images, [SamplingSettings()] * 3, torch.Generator().manual_seed(5))
    actions = [d.text for d in decoded]
    scores = score_actions(mixed, contents, images, actions)
    for row, action in enumerate(decoded):  # what the actor records is what the trainer recomputes
        assert scores.token_logprobs[row][scores.mask[row]].tolist() == pytest.approx(action.token_logprobs, abs=1e-5)
    plain, sharp = score_actions(policy, contents, images, actions), score_actions(cold, contents, images, actions)
    for row, text in enumerate(actions):
        fields = mixed.grammar.decision_fields(mixed.grammar.token_ids(parse_action(text)))
        got = scores.token_logprobs[row][scores.mask[row]].tolist()
        at_one = plain.token_logprobs[row][plain.mask[row]].tolist()
        at_cold = sharp.token_logprobs[row][sharp.mask[row]].tolist()
        for field, value, one, cold_value in zip(fields, got, at_one, at_cold, strict=True):
            # translation decisions score as the policy at 0.2 does, every other field's as the policy at 1
            assert value == pytest.approx(cold_value if field < 3 else one, abs=1e-5)
    assert [d.text for d in decode_actions(mixed, contents, images, [SamplingSettings(greedy=True)] * 3)] == [
        d.text for d in decode_actions(policy, contents, images, [SamplingSettings(greedy=True)] * 3)
    ]


def test_sampling_is_reproducible_with_a_seed_and_explores_without(policy):
    contents, images = _inputs([8])
    hot = [SamplingSettings(temperature=2.0)]

    def sample(seed):
        return decode_actions(policy, contents, images, hot, torch.Generator().manual_seed(seed))[0].text

    assert sample(1) == sample(1)
    assert len({sample(s) for s in range(6)}) > 1


def test_one_forward_pass_per_decision_not_per_token(policy):
    contents, images = _inputs([9])
    (action,) = decode_actions(policy, contents, images, [SamplingSettings(greedy=True)])
    assert action.forward_passes == len(action.token_logprobs) + 1  # + the prompt's prefill
    assert action.forward_passes < len(action.token_ids) / 2


def test_scoring_with_grad_reaches_model_and_value_head(policy):
    contents, images = _inputs([0, 1], TASKS[:2])
    actions = ["{x: -47mm, y: 19mm, z: 66mm, roll: 14 degrees, pitch: 10 degrees, yaw: 15 degrees, open: 0}"] * 2
    policy.loaded.model.zero_grad(set_to_none=True)
    policy.value_head.zero_grad(set_to_none=True)
    scores = score_actions(policy, contents, images, actions, with_grad=True)
    assert scores.token_logprobs.requires_grad and scores.values.requires_grad and scores.entropies.requires_grad
    (-(scores.logprob.sum()) + scores.values.square().sum() - scores.entropies.sum()).backward()
    assert policy.loaded.model.lm_head.weight.grad.abs().sum() > 0
    assert policy.value_head.linear.weight.grad.abs().sum() > 0
    policy.loaded.model.zero_grad(set_to_none=True)
    policy.value_head.zero_grad(set_to_none=True)


def test_scoring_refuses_unparsable_or_out_of_range_actions(policy):
    contents, images = _inputs([0])
    with pytest.raises(ValueError, match="not an action template"):
        score_actions(policy, contents, images, ["{x: 1mm}"])
    out_of_range = "{x: 500mm, y: 0mm, z: 0mm, roll: 0 degrees, pitch: 0 degrees, yaw: 0 degrees, open: 1}"
    with pytest.raises(ValueError, match="dx_mm = 500"):
        score_actions(policy, contents, images, [out_of_range])


def test_configured_bounds_hold_even_when_tight(policy):
    tight = ActionLimits(max_translation_mm=3, max_rotation_deg=2)
    narrow = Policy(
        loaded=policy.loaded,
        value_head=policy.value_head,
        grammar=ActionGrammar(policy.loaded.tokenizer, tight),
        settings=PolicySettings(max_translation_mm=3, max_rotation_deg=2),
    )
    contents, images = _inputs([0, 1, 2], TASKS)
    hot = [SamplingSettings(temperature=3.0)] * 3
    for seed in range(5):
        for action in decode_actions(narrow, contents, images, hot, torch.Generator().manual_seed(seed)):
            assert max(abs(v) for v in action.delta.as_tuple()[:3]) <= 3
            assert max(abs(v) for v in action.delta.as_tuple()[3:6]) <= 2


def test_bf16_policy_decodes_with_float32_log_probs_and_value(policy_dir):
    bf16 = load_policy(policy_dir, device="cpu", dtype="bfloat16")
    contents, images = _inputs([1, 2], TASKS[:2])
    for action in decode_actions(bf16, contents, images, [SamplingSettings()] * 2, torch.Generator().manual_seed(0)):
        assert parse_action(action.text) == action.delta
        assert all(isinstance(lp, float) and lp <= 0.0 for lp in action.token_logprobs)
        assert abs(action.value) < 10.0
