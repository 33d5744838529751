"""Action template formatting and strict parsing: text that is not one template never becomes motion."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vlac_core.action_text import ActionParseError, format_action, format_state, normalize_angle_deg, parse_action
from vlac_core.types import DeltaAction, EndPose

PAPER_EXAMPLE = "{x: -47mm, y: 19mm, z: 66mm, roll: 14 degrees, pitch: 10 degrees, yaw: 15 degrees, open: 0}"

translations = st.integers(min_value=-999_999, max_value=999_999)
angles = st.integers(min_value=-180, max_value=180)
actions = st.builds(
    DeltaAction, translations, translations, translations, angles, angles, angles, st.integers(min_value=0, max_value=1)
)


def test_paper_example_parses():
    assert parse_action(PAPER_EXAMPLE) == DeltaAction(-47, 19, 66, 14, 10, 15, 0)


def test_format_writes_the_template_exactly():
    assert format_action(DeltaAction(-47, 19, 66, 14, 10, 15, 0)) == PAPER_EXAMPLE


def test_state_text_rounds_to_whole_units_and_wraps_angles():
    pose = EndPose(x_mm=56.4, y_mm=-0.6, z_mm=213.5, roll_deg=190.0, pitch_deg=-0.2, yaw_deg=-179.7)
    assert format_state(pose, gripper_open=True) == (
        "{x: 56mm, y: -1mm, z: 214mm, roll: -170 degrees, pitch: 0 degrees, yaw: -180 degrees, open: 1}"
    )


def test_normalize_angle_wraps_into_half_open_range():
    assert normalize_angle_deg(180.0) == -180.0
    assert normalize_angle_deg(-190.0) == 170.0
    assert normalize_angle_deg(725.0) == 5.0


@given(actions)
def test_format_then_parse_round_trips(action):
    assert parse_action(format_action(action)) == action


@given(actions, st.sampled_from([" ", "\n", "\t "]))
def test_surrounding_whitespace_is_allowed(action, pad):
    assert parse_action(pad + format_action(action) + pad) == action


@given(actions, st.data())
def test_truncated_text_never_parses(action, data):
    text = format_action(action)
    cut = data.draw(st.integers(min_value=0, max_value=len(text) - 1))
    with pytest.raises(ActionParseError):
        parse_action(text[:cut])


@given(st.text(max_size=120))
def test_random_text_never_parses(text):
    with pytest.raises(ActionParseError):
        parse_action(text)


@given(actions, st.data())
def test_a_single_character_change_never_parses_into_a_different_field_layout(action, data):
    text = format_action(action)
    index = data.draw(st.integers(min_value=0, max_value=len(text) - 1))
    replacement = data.draw(st.sampled_from(list("{}:,;xyz m.+ ")))
    mutated = text[:index] + replacement + text[index + 1 :]
    try:
        parsed = parse_action(mutated)
    except ActionParseError:
        return
    # Only a digit-for-digit or equivalent edit can still parse; it must still be a full, valid action.
    assert format_action(parsed) == mutated.strip()


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (PAPER_EXAMPLE[1:], "'x' is missing"),
        (PAPER_EXAMPLE[:-1], "missing closing"),
        (PAPER_EXAMPLE + " and then", "after the closing"),
        (PAPER_EXAMPLE.replace("open: 0", "open: 2"), "'open'"),
        (PAPER_EXAMPLE.replace("19mm", "019mm"), "'y'"),
        (PAPER_EXAMPLE.replace("19mm", "+19mm"), "'y'"),
        (PAPER_EXAMPLE.replace("19mm", "1.5mm"), "'y'"),
        (PAPER_EXAMPLE.replace("66mm", "-0mm"), "'z'"),
        (PAPER_EXAMPLE.replace("roll: 14", "roll: 181"), "outside"),
        (PAPER_EXAMPLE.replace("-47mm", "-4700000mm"), "digits"),
        (PAPER_EXAMPLE.replace("{", "").replace("}", ""), "'x'"),
        (PAPER_EXAMPLE + PAPER_EXAMPLE, "after the closing"),
    ],
)
def test_malformed_text_is_rejected_with_a_reason_naming_it(text, reason):
    with pytest.raises(ActionParseError, match=reason) as info:
        parse_action(text)
    assert info.value.text == text


def test_non_string_is_rejected():
    with pytest.raises(ActionParseError, match="expected action text"):
        parse_action(None)  # type: ignore[arg-type]
