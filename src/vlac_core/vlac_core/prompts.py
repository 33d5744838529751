"""The VLAC prompt texts, character for character as the released checkpoints were trained on.

A checkpoint only answers well when it sees these strings exactly (see
shared VLAC_REFERENCE.md), so every prompt of the stack is built here and nowhere
else. ``<image>`` marks where the model layer expands an image into its tokens.
"""

from __future__ import annotations

IMAGE_PLACEHOLDER = "<image>"

#: The system message the release sets for every conversation.
SYSTEM_PROMPT = (
    "You are a visual-language assistant designed to interpret spatial and task-related information from "
    "images and text. Provide precise, context-aware responses and actionable guidance to assist in achieving "
    "task objectives."
)

#: Most reference frames an in-context prompt may carry (release limit).
MAX_REFERENCE_FRAMES = 11
#: Reference frames the release picks by default.
DEFAULT_REFERENCE_FRAMES = 6


def _check_task(task: str) -> str:
    if not isinstance(task, str) or not task.strip():
        raise ValueError(f"task text must be a non-empty string, got {task!r}")
    return task


def pair_progress_prompt(task: str) -> str:
    """Pair-wise progress prompt; images go in as [earlier frame, later frame]."""
    _check_task(task)
    return (
        "Image-1: <image>\nImage-2: <image>\n"
        "Compare two images and evaluate whether the second image is closer to achieving task objectives "
        "compared to the first image. + score means the second image is closer, - score means the first image "
        "is closer\n"
        f"Response the relative progressing of target task follow <score>. The target task is: <task> {task} "
        "</task> <score>"
    )


def in_context_progress_prompt(task: str, n_reference: int) -> str:
    """In-context prompt: a reference trajectory of ``n_reference`` frames, then the pair-wise prompt.

    Images in order: the reference frames, the current episode's first frame, the
    earlier frame, the later frame.
    """
    _check_task(task)
    if not 2 <= n_reference <= MAX_REFERENCE_FRAMES:
        raise ValueError(f"n_reference must be 2..{MAX_REFERENCE_FRAMES} frames, got {n_reference}")
    reference = f"<trajectory> <task> {task} </task>:"
    for k in range(n_reference):
        reference += f" {int(k / (n_reference - 1) * 100)}% <image>\n"
    reference += "</trajectory>"
    start = "0% <image>\nThis image is the trajectory beginning of the following two images\n"
    return reference + start + pair_progress_prompt(task)


def done_prompt(task: str) -> str:
    """Done check of one image; the model layer puts the image placeholder at the very front."""
    _check_task(task)
    return f"The 1 means yes, the 0 means no. Check if the robot has completed its task: <task> {task} </task> <done>"


#: Task-description objective (paper: from a start frame in [0, 0.3T] and an end frame in [0.8T, T],
#: generate the task text). The release gives no wording for it; this one is the project's own, in the
#: pair-wise prompt's image layout. It only shapes critic training: the stack never asks it at run time.
TASK_DESCRIPTION_PROMPT = (
    "Image-1: <image>\nImage-2: <image>\n"
    "The first image is the beginning and the second image is the end of a robot trajectory. "
    "What task did the robot complete? <task>"
)


def select_reference_frames(n_frames: int, n_reference: int = DEFAULT_REFERENCE_FRAMES) -> list[int]:
    """Indices of the reference frames the release picks: 0 and int(k * ((len-1)/(n-1))) for k = 1..n-1.

    The step (len-1)/(n-1) is computed first, as the release code does; in floating point
    that can land one frame earlier than k*(len-1)/(n-1) (length 62, 8 frames: 60, not 61).
    """
    if not 2 <= n_reference <= MAX_REFERENCE_FRAMES:
        raise ValueError(f"n_reference must be 2..{MAX_REFERENCE_FRAMES} frames, got {n_reference}")
    if n_frames < 1:
        raise ValueError(f"a reference trajectory needs at least one frame, got {n_frames}")
    step = (n_frames - 1) / (n_reference - 1)
    return [0] + [int(k * step) for k in range(1, n_reference)]


def views_prefix(n_views: int) -> str:
    """Image placeholders of the actor prompt for 1-3 camera views."""
    if n_views == 1:
        return "<image>\n"
    if n_views in (2, 3):
        return "".join(f"Image-{i}: <image>\n" for i in range(1, n_views + 1))
    raise ValueError(f"the actor takes 1 to 3 camera views, got {n_views}")


def actor_prompt(task: str, state_text: str, n_views: int) -> str:
    """Actor prompt: views, the end-pose state text (see action_text.format_state), and the task."""
    _check_task(task)
    return views_prefix(n_views) + (
        "The current position state of the robotic arm's end gripper in the image is as follows: "
        f"<state> {state_text} </state>. What action should the robot take to get better completion of "
        f"instruction: <task> {task} </task> <action>"
    )
