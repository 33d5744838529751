"""The action grammar: canonical token ids derived from the vocabulary, ranges, unambiguous number ends."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from vlac_actor.grammar import ActionGrammar, ActionLimits, fixed_segments
from vlac_core.action_text import format_action
from vlac_core.model import build_tiny_tokenizer
from vlac_core.types import ACTION_FIELDS, DeltaAction

PAPER_EXAMPLE = DeltaAction(-47, 19, 66, 14, 10, 15, 0)


@pytest.fixture(scope="module")
def tiny_tokenizer():
    return build_tiny_tokenizer()


@pytest.fixture(scope="module")
def grammar(tiny_tokenizer):
    return ActionGrammar(tiny_tokenizer, ActionLimits(max_translation_mm=100))


@pytest.fixture(scope="module")
def byte_level_tokenizer():
    """A GPT-2/Qwen-style byte-level BPE that fuses " -" and merges digits: numbers split unlike the tiny one."""
    import random

    rng = random.Random(0)
    corpus = [
        format_action(DeltaAction(*[rng.randint(-99, 99) for _ in range(6)], rng.randint(0, 1))) for _ in range(300)
    ]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=600, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    tok.train_from_iterator(corpus, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok)


def test_template_pieces_rebuild_the_action_text():
    assert "".join(fixed_segments()[:1]) == "{x:"
    assert fixed_segments()[-2:] == [" degrees, open:", "}"]


def test_canonical_ids_are_the_tokenizers_own_for_the_paper_example(grammar, tiny_tokenizer):
    text = format_action(PAPER_EXAMPLE)
    assert grammar.token_ids(PAPER_EXAMPLE) == tuple(tiny_tokenizer.encode(text, add_special_tokens=False))


def test_number_choices_are_derived_from_the_vocabulary(grammar, tiny_tokenizer):
    decisions = grammar.walk(grammar.token_ids(PAPER_EXAMPLE))
    first_choices = {tiny_tokenizer.decode([t]) for t in grammar.allowed(decisions[0][1])}
    assert first_choices == {"-", *"0123456789"}
    # after "-4" of x the number may end ("mm,") or go on with a digit; after "-47" (|x| <= 100) it must end
    after_minus_four = {tiny_tokenizer.decode([t]) for t in grammar.allowed(decisions[2][1])}
    assert after_minus_four == {"mm,", *"0123456789"}
    # 17 decisions for the paper example: sign/digits and "ends here?" choices, open in {0, 1}
    assert len(decisions) == 17
    open_choices = {tiny_tokenizer.decode([t]) for t in grammar.allowed(decisions[-1][1])}
    assert open_choices == {"0", "1"}


def test_values_outside_the_limits_are_refused_naming_the_field(grammar):
    with pytest.raises(ValueError, match=r"dy_mm = 101 is outside the actor's range \[-100, 100\]"):
        grammar.token_ids(DeltaAction(0, 101, 0, 0, 0, 0, 1))


def test_limits_are_checked():
    with pytest.raises(ValueError, match="max_rotation_deg"):
        ActionLimits(max_rotation_deg=181)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(-100, 100), min_size=3, max_size=3),
    st.lists(st.integers(-180, 180), min_size=3, max_size=3),
    st.integers(0, 1),
)
def test_every_action_in_range_has_one_walkable_spelling(grammar, tiny_tokenizer, moves, turns, gripper):
    action = DeltaAction(*moves, *turns, gripper)
    ids = grammar.token_ids(action)
    assert grammar.action_of(ids) == action
    assert tiny_tokenizer.decode(list(ids)) == format_action(action)
    assert all(len(grammar.allowed(node)) > 1 for _, node in grammar.walk(ids))


def test_a_byte_level_tokenizer_with_fused_sign_and_merged_digits_works(byte_level_tokenizer):
    grammar = ActionGrammar(byte_level_tokenizer, ActionLimits(max_translation_mm=150))
    pieces = {
        byte_level_tokenizer.decode([t]) for node in range(len(grammar.transitions)) for t in grammar.allowed(node)
    }
    assert " -" in pieces or any(p.startswith(" -") for p in pieces)  # the sign fuses with the space
    assert any(len(p) >= 2 and p.isdigit() for p in pieces)  # multi-digit tokens are used where they exist
    for action in (PAPER_EXAMPLE, DeltaAction(-150, 150, 0, -180, 180, 0, 1), DeltaAction(7, -3, 120, 0, 99, -9, 0)):
        ids = grammar.token_ids(action)
        assert byte_level_tokenizer.decode(list(ids)) == format_action(action)
        assert grammar.action_of(ids) == action


@pytest.mark.parametrize("limits", [ActionLimits(max_translation_mm=100), ActionLimits(60, 30)])
def test_each_decision_is_counted_in_the_field_whose_value_it_chooses(tiny_tokenizer, byte_level_tokenizer, limits):
    for tokenizer in (tiny_tokenizer, byte_level_tokenizer):
        grammar = ActionGrammar(tokenizer, limits)
        for action in (DeltaAction(-47, 19, 30, 14, 10, 15, 0), DeltaAction(0, 0, 0, 0, 0, 0, 1)):
            ids = grammar.token_ids(action)
            fields = grammar.decision_fields(ids)
            assert len(fields) == len(grammar.walk(ids))
            assert list(fields) == sorted(fields) and set(fields) == set(range(7))  # every field chooses, in order
            for k in range(7):
                # changing field k's value changes only the decisions counted in field k
                other = [getattr(action, name) for name in ACTION_FIELDS]
                other[k] = 1 - other[k] if k == 6 else (other[k] + 7 if other[k] < 20 else other[k] - 7)
                other_ids = grammar.token_ids(DeltaAction(*other))
                other_fields = grammar.decision_fields(other_ids)
                assert [f for f in fields if f != k] == [f for f in other_fields if f != k]
                before = [t for (p, _), f in zip(grammar.walk(ids), fields, strict=True) if f != k for t in [ids[p]]]
                after = [t for (p, _), f in zip(grammar.walk(other_ids), other_fields, strict=True) if f != k
                         for t in [other_ids[p]]]  # fmt: skip
                assert before == after  # the other fields' choices are the same tokens


def test_field_of_places_every_decision_node_in_one_field_and_refuses_fixed_text(grammar):
    from vlac_actor.grammar import GrammarError

    decision_nodes = [n for n in range(len(grammar.transitions)) if grammar.is_decision(n)]
    by_field = {}
    for node in decision_nodes:
        by_field.setdefault(grammar.field_of(node), set()).add(node)
    assert sorted(by_field) == list(range(7))
    # the open field's only decision is 0 or 1; a field's nodes are reached only through that field's values
    assert [grammar.allowed(n) for n in by_field[6]] == [tuple(sorted(grammar.value_ids[6][v][-1] for v in (0, 1)))]
    for k, nodes in by_field.items():
        reached = {node for value in grammar.value_ids[k].values() for node in _nodes_along(grammar, k, value)}
        assert nodes <= reached
    with pytest.raises(GrammarError, match="fixed text"):
        grammar.field_of(grammar.start)


def _nodes_along(grammar, field, value_ids):
    """The nodes a value's tokens pass through in field ``field`` (root included), found from the canonical ids."""
    node = grammar.start
    for k in range(field):
        for token in grammar.segment_ids[k] + grammar.value_ids[k][0]:
            node = grammar.step(node, token)
    for token in grammar.segment_ids[field]:
        node = grammar.step(node, token)
    nodes = [node]
    for token in value_ids:
        node = grammar.step(node, token)
        nodes.append(node)
    return nodes


def test_decision_fields_refuses_a_cut_off_action(grammar):
    from vlac_actor.grammar import GrammarError

    with pytest.raises(GrammarError, match="stop before the end"):
        grammar.decision_fields(grammar.token_ids(PAPER_EXAMPLE)[:-3])
