"""Scripted expert and failure variants of the desktop sweep task (pushing with the closed gripper)."""

from __future__ import annotations

import numpy as np

from piper_driver.sim.experts import Waypoint, hover_plan, tcp_of, top_down_pose
from piper_driver.sim.tasks.base import top_down_yaw_deg
from piper_driver.sim.tasks.sweep import BIN_HALF_M, TRASH_HALF_M

PUSH_TCP_Z_M = 0.012  # the TCP's height while pushing along the table
_HOVER_TCP_Z_M = 0.07
#: TCP behind the trash's centre when pushing (trash half size + finger half thickness + clearance).
_CONTACT_M = TRASH_HALF_M[0] + 0.012
_APPROACH_GAP_M = 0.03
_PUSH_LEAD_M = 0.02
#: Lateral offset of the pusher from the push line beyond which it realigns before pushing on.
_REALIGN_M = 0.007
#: ``label_target``: the pusher is in pushing position when its TCP is within this horizontal distance of the
#: contact point (m; the expert lowers 30 mm behind it) and below ``LOW_TCP_M``.
PUSH_REACH_M = 0.045
#: ``label_target``: a TCP below this height (m) is at pushing height (the expert pushes at 12 mm).
LOW_TCP_M = 0.03
#: ``label_target``: the TCP is over the approach point within this horizontal distance (m): it lowers there.
_OVER_APPROACH_M = 0.01


def toward_bin(scene: dict) -> np.ndarray:
    """Push direction that funnels the trash onto the dustpan's axis: aim at an axis point a bit ahead."""
    axial = float(scene["trash_in_bin_m"][0])
    aim = scene["bin_m"][:2] + scene["bin_dir"] * min(axial + 0.06, 0.02)
    delta = aim - scene["trash_m"][:2]
    return delta / max(float(np.linalg.norm(delta)), 1e-6)


def push_contact_xy(scene: dict, direction: np.ndarray) -> np.ndarray:
    """Where the pusher's TCP touches the trash (m, horizontal) to push it along ``direction``."""
    return scene["trash_m"][:2] - direction * _CONTACT_M


def push_xy(scene: dict, direction: np.ndarray, tcp_xy: np.ndarray) -> np.ndarray:
    """The push's next TCP point (m, horizontal): a little ahead of the contact point along the line through the
    trash centre, or, when the pusher has drifted off that line, a little back from it to realign first
    (pushing off-line makes the trash slide sideways)."""
    contact = push_contact_xy(scene, direction)
    offset = tcp_xy - contact
    lateral = abs(float(direction[0] * offset[1] - direction[1] * offset[0]))
    advance = _PUSH_LEAD_M if lateral < _REALIGN_M else -0.01
    return contact + direction * advance


def label_target(scene: dict, pose: np.ndarray) -> np.ndarray:
    """The expert's next flange target as a function of the state alone (DAgger's labels; ``pose``: the flange now).

    The plan's waypoints, each chosen by where the TCP is rather than by the plan's progress, so that one state
    has one label whatever led there: in pushing position, push (``push_xy``, yaw kept); low behind the trash's
    contact line, or over the approach point, go to the approach point at pushing height (``lower``); anywhere
    else, to the hover point above it (``above_behind``)."""
    tcp = tcp_of(pose)
    d = toward_bin(scene)
    contact = push_contact_xy(scene, d)
    low = tcp[2] <= LOW_TCP_M
    if low and float(np.linalg.norm(tcp[:2] - contact)) <= PUSH_REACH_M:
        xy = push_xy(scene, d, tcp[:2])
        return top_down_pose([xy[0], xy[1], PUSH_TCP_Z_M], pose[5])
    approach = contact - d * _APPROACH_GAP_M
    yaw = top_down_yaw_deg(approach[0] * 1000, approach[1] * 1000)
    behind = float(np.dot(tcp[:2] - scene["trash_m"][:2], d)) <= -_CONTACT_M
    if (low and behind) or float(np.linalg.norm(tcp[:2] - approach)) <= _OVER_APPROACH_M:
        return top_down_pose([approach[0], approach[1], PUSH_TCP_Z_M], yaw)
    return top_down_pose([approach[0], approach[1], _HOVER_TCP_Z_M], yaw)


def _push_plan(
    tag: str, direction_fn, done_fn, budget_steps: int = 40, approach_gap_m: float = _APPROACH_GAP_M
) -> list[Waypoint]:
    """Approach behind the trash (relative to ``direction_fn``), lower, push until ``done_fn``, lift."""

    def behind(z_m):
        def target(scene, anchor):
            d = direction_fn(scene)
            xy = scene["trash_m"][:2] - d * (_CONTACT_M + approach_gap_m)
            return top_down_pose([xy[0], xy[1], z_m], top_down_yaw_deg(xy[0] * 1000, xy[1] * 1000))

        return target

    def push(scene, anchor):
        xy = push_xy(scene, direction_fn(scene), tcp_of(scene["pose"])[:2])
        return top_down_pose([xy[0], xy[1], PUSH_TCP_Z_M], anchor[5])

    def lift(scene, anchor):
        tcp = tcp_of(scene["pose"])
        return top_down_pose([tcp[0], tcp[1], _HOVER_TCP_Z_M], anchor[5])

    return [
        Waypoint(f"{tag}above_behind", behind(_HOVER_TCP_Z_M), open=0, tolerance_mm=6.0),
        Waypoint(f"{tag}lower", behind(PUSH_TCP_Z_M), open=0, tolerance_mm=4.0),
        Waypoint(f"{tag}push", push, open=0, budget_steps=budget_steps, done=done_fn),
        Waypoint(f"{tag}lift", lift, open=0, tolerance_mm=8.0),
    ]


def _deep_inside(scene: dict) -> bool:
    return bool(scene["trash_in_bin_m"][0] > 0.0)


def sweep_plan(variant: str) -> list[Waypoint]:
    if variant == "expert":
        return _push_plan("", toward_bin, _deep_inside)
    if variant == "stall":
        return _push_plan("", toward_bin, _deep_inside)[:2] + hover_plan("stall", 14, open_=0)
    if variant == "wrong_target":
        start: dict = {}

        def away(scene):
            start.setdefault("d", -toward_bin(scene))
            return start["d"]

        def pushed_away(scene):
            start.setdefault("xy", scene["trash_m"][:2].copy())
            return bool(np.linalg.norm(scene["trash_m"][:2] - start["xy"]) > 0.1)

        return _push_plan("", away, pushed_away, budget_steps=20)
    if variant == "undo":
        out: dict = {}

        def inside_entry(scene):
            return bool(scene["trash_in_bin_m"][0] > -BIN_HALF_M + 0.015)

        def out_direction(scene):
            out.setdefault("d", -scene["bin_dir"])
            return out["d"]

        def pulled_out(scene):
            return bool(scene["trash_in_bin_m"][0] < -BIN_HALF_M - 0.07)

        return _push_plan("", toward_bin, inside_entry) + _push_plan(
            "undo_", out_direction, pulled_out, approach_gap_m=0.012
        )
    raise ValueError(f"variant: unknown sweep variant {variant!r}")
