"""The prompt texts must match the release character for character (shared VLAC_REFERENCE.md)."""

import pytest

from vlac_core import prompts

TASK = "Pick up the bowl and put it on the plate"


def test_system_prompt_is_the_release_text():
    assert prompts.SYSTEM_PROMPT == (
        "You are a visual-language assistant designed to interpret spatial and task-related information from images "
        "and text. Provide precise, context-aware responses and actionable guidance to assist in achieving task "
        "objectives."
    )


def test_pair_prompt_is_the_release_text():
    expected = (
        "Image-1: <image>\nImage-2: <image>\nCompare two images and evaluate whether the second image is closer to "
        "achieving task objectives compared to the first image. + score means the second image is closer, - score "
        "means the first image is closer\nResponse the relative progressing of target task follow <score>. The "
        f"target task is: <task> {TASK} </task> <score>"
    )
    assert prompts.pair_progress_prompt(TASK) == expected


def test_done_prompt_is_the_release_text_without_image_placeholder():
    expected = (
        f"The 1 means yes, the 0 means no. Check if the robot has completed its task: <task> {TASK} </task> <done>"
    )
    assert prompts.done_prompt(TASK) == expected
    assert "<image>" not in prompts.done_prompt(TASK)


def test_in_context_prompt_layout_for_six_reference_frames():
    text = prompts.in_context_progress_prompt(TASK, 6)
    expected_reference = (
        f"<trajectory> <task> {TASK} </task>: 0% <image>\n 20% <image>\n 40% <image>\n 60% <image>\n"
        " 80% <image>\n 100% <image>\n</trajectory>"
    )
    start = "0% <image>\nThis image is the trajectory beginning of the following two images\n"
    assert text == expected_reference + start + prompts.pair_progress_prompt(TASK)
    # reference frames, first frame, earlier, later
    assert text.count("<image>") == 6 + 1 + 2


def test_in_context_percentages_truncate_like_int():
    text = prompts.in_context_progress_prompt(TASK, 4)
    assert " 0% <image>\n 33% <image>\n 66% <image>\n 100% <image>\n</trajectory>" in text


@pytest.mark.parametrize("n", [0, 1, 12])
def test_in_context_rejects_reference_sizes_outside_the_release_range(n):
    with pytest.raises(ValueError, match="n_reference"):
        prompts.in_context_progress_prompt(TASK, n)


def test_reference_frame_selection_matches_release_rule():
    assert prompts.select_reference_frames(51, 6) == [0, 10, 20, 30, 40, 50]
    assert prompts.select_reference_frames(10, 6) == [0, 1, 3, 5, 7, 9]
    assert prompts.select_reference_frames(3, 6) == [0, 0, 0, 1, 1, 2]


def test_reference_frame_selection_divides_first_like_the_release_code():
    # 7 * (61 / 7) is 60.99999999999999 in floating point: the release picks frame 60, not 61.
    assert prompts.select_reference_frames(62, 8)[-1] == 60


def test_reference_selection_rejects_more_than_eleven_frames():
    with pytest.raises(ValueError, match="n_reference"):
        prompts.select_reference_frames(100, 12)


@pytest.mark.parametrize(
    ("n_views", "prefix"),
    [
        (1, "<image>\n"),
        (2, "Image-1: <image>\nImage-2: <image>\n"),
        (3, "Image-1: <image>\nImage-2: <image>\nImage-3: <image>\n"),
    ],
)
def test_actor_prompt_views_prefix(n_views, prefix):
    state = "{x: 1mm, y: 2mm, z: 3mm, roll: 4 degrees, pitch: 5 degrees, yaw: 6 degrees, open: 1}"
    text = prompts.actor_prompt(TASK, state, n_views)
    assert text == prefix + (
        "The current position state of the robotic arm's end gripper in the image is as follows: "
        f"<state> {state} </state>. What action should the robot take to get better completion of instruction: "
        f"<task> {TASK} </task> <action>"
    )


@pytest.mark.parametrize("n_views", [0, 4])
def test_actor_prompt_rejects_view_counts_outside_one_to_three(n_views):
    with pytest.raises(ValueError, match="1 to 3 camera views"):
        prompts.actor_prompt(TASK, "{}", n_views)


@pytest.mark.parametrize("task", ["", "   "])
def test_empty_task_is_rejected(task):
    with pytest.raises(ValueError, match="task text"):
        prompts.pair_progress_prompt(task)
    with pytest.raises(ValueError, match="task text"):
        prompts.done_prompt(task)
