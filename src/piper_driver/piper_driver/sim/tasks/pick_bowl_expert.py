"""Scripted expert and failure variants of the pick-and-place bowl task (rim pinch from above)."""

from __future__ import annotations

import numpy as np

from piper_driver.sim.experts import Waypoint, hover_plan, tcp_of, top_down_pose
from piper_driver.sim.tasks.base import top_down_yaw_deg
from piper_driver.sim.tasks.pick_bowl import BOWL_HEIGHT_M, BOWL_RIM_RADIUS_M, PLATE_TOP_M, TRAY_TOP_M

_APPROACH_ABOVE_RIM_M = 0.04
_PINCH_BELOW_RIM_M = 0.015
_CARRY_TCP_Z_M = 0.11
#: The expert lowers a carried bowl until its base is this far above the surface, then lets go.
SET_DOWN_ABOVE_SURFACE_M = 0.004
#: Steps the expert stays put with the gripper closing on the rim before it lifts (the first is the close itself).
#: The shipped demos hold 3; an actor whose prompt has no history cannot tell the pause's steps from the step
#: after it, so its greedy decode stays put with the bowl grasped (bench/prior_phases.py: still_carry). 1 closes
#: and lifts; the simulated gripper shuts within one step either way.
GRASP_HOLD_STEPS = 3


def _grasp_point(scene: dict) -> tuple[np.ndarray, float]:
    """TCP position on the rim facing the robot base, and the yaw that closes the fingers radially."""
    bowl = scene["bowl_m"]
    inward = -bowl[:2] / np.linalg.norm(bowl[:2])  # from the bowl centre toward the arm's base
    point = np.array([*(bowl[:2] + inward * BOWL_RIM_RADIUS_M), bowl[2] + BOWL_HEIGHT_M - _PINCH_BELOW_RIM_M])
    return point, top_down_yaw_deg(point[0] * 1000, point[1] * 1000)


def _pick_waypoints(tag: str, grasp_hold_steps: int = GRASP_HOLD_STEPS) -> list[Waypoint]:
    def above(scene, anchor):
        point, yaw = _grasp_point(scene)
        return top_down_pose(point + np.array([0.0, 0.0, _PINCH_BELOW_RIM_M + _APPROACH_ABOVE_RIM_M]), yaw)

    def pinch(scene, anchor):
        point, yaw = _grasp_point(scene)
        return top_down_pose(point, yaw)

    def lift(scene, anchor):
        tcp = tcp_of(anchor)
        return top_down_pose([tcp[0], tcp[1], _CARRY_TCP_Z_M], anchor[5])

    return [
        Waypoint(f"{tag}above_bowl", above, open=1, tolerance_mm=6.0),
        Waypoint(f"{tag}descend", pinch, open=1, tolerance_mm=3.0),
        Waypoint(f"{tag}close", pinch, open=0, hold_steps=grasp_hold_steps, tolerance_mm=6.0),
        Waypoint(f"{tag}lift", lift, open=0, tolerance_mm=8.0),
    ]


def _place_waypoints(tag: str, spot_m: callable, surface_top_m: float) -> list[Waypoint]:
    """Carry the grasped bowl so its centre is over ``spot_m(scene)``, lower it onto the surface, let go."""

    def offset(scene, anchor):
        # TCP minus bowl centre, fixed while the bowl is held (the yaw is kept, so is the offset).
        return tcp_of(scene["pose"])[:2] - scene["bowl_m"][:2]

    def carry(scene, anchor):
        xy = spot_m(scene)[:2] + offset(scene, anchor)
        return top_down_pose([xy[0], xy[1], _CARRY_TCP_Z_M], anchor[5])

    def lower(scene, anchor):
        # Closed loop on the bowl's height: stop with its base a few mm above the surface.
        xy = spot_m(scene)[:2] + offset(scene, anchor)
        drop_m = scene["bowl_m"][2] - (surface_top_m + SET_DOWN_ABOVE_SURFACE_M)
        tcp_z = tcp_of(scene["pose"])[2] - drop_m
        return top_down_pose([xy[0], xy[1], tcp_z], anchor[5])

    def retreat(scene, anchor):
        tcp = tcp_of(anchor)
        return top_down_pose([tcp[0], tcp[1], tcp[2] + 0.06], anchor[5])

    return [
        Waypoint(f"{tag}carry", carry, open=0, tolerance_mm=5.0, budget_steps=40),
        Waypoint(f"{tag}lower", lower, open=0, tolerance_mm=3.0),
        Waypoint(f"{tag}release", lambda scene, anchor: anchor, open=1, hold_steps=2, tolerance_mm=8.0),
        Waypoint(f"{tag}retreat", retreat, open=1, tolerance_mm=8.0),
    ]


def _plate(scene: dict) -> np.ndarray:
    return scene["plate_m"]


def _tray(scene: dict) -> np.ndarray:
    return scene["tray_m"]


def _wrong_spot(scene: dict) -> np.ndarray:
    """A free table spot between tray and plate, far from the plate: not the goal."""
    plate, tray = scene["plate_m"], scene["tray_m"]
    for x in (0.18, 0.38):
        spot = np.array([x, (plate[1] + tray[1]) / 2, 0.0])
        if np.linalg.norm(spot[:2] - plate[:2]) > 0.14:
            return spot
    return np.array([0.18, tray[1] * 0.3, 0.0])


def release_from_height_plan(extra_height_m: float) -> list[Waypoint]:
    """The expert's plan with the bowl let go ``extra_height_m`` higher than it sets it down (its base
    ``SET_DOWN_ABOVE_SURFACE_M`` above the plate plus this): where letting go still places it (bench/release_height.py,
    pick_bowl.RELEASE_MAX_DROP_M)."""
    if not 0.0 <= extra_height_m <= 0.2:
        raise ValueError(f"extra_height_m: expected 0..0.2 m, got {extra_height_m}")
    return _pick_waypoints("") + _place_waypoints("", _plate, PLATE_TOP_M + extra_height_m)


#: Farthest ``place_off_centre_plan`` sets the bowl from the plate's centre: its base (radius 30 mm) then still
#: overlaps the plate (radius 75 mm).
OFF_CENTRE_MAX_M = 0.09


def place_off_centre_plan(offset_m: tuple[float, float], *, grasp_hold_steps: int = GRASP_HOLD_STEPS) -> list[Waypoint]:
    """The expert's plan with the bowl set down ``offset_m`` (x, y) from the plate's centre instead of on it.

    Why: the task succeeds only with the bowl's centre within ``pick_bowl.SUCCESS_RADIUS_M`` of the plate's, and a
    policy sets it down anywhere from 0 to 60 mm off; a critic trained on centred (expert) and far (wrong_target)
    placements called a bowl 37-60 mm off done and missed some 20-35 mm off (docs/rl_experiments.md, "Where the
    critic's done goes wrong"). Placements on both sides of that boundary, labelled by the simulator's truth, show a
    critic where it lies (measured there: in a 64 px fine-tune they did not sharpen its done).
    """
    dx, dy = (float(v) for v in offset_m)
    if not (np.isfinite(dx) and np.isfinite(dy)) or np.hypot(dx, dy) > OFF_CENTRE_MAX_M:
        raise ValueError(
            f"offset_m: expected a finite (x, y) at most {OFF_CENTRE_MAX_M} m from the centre, got {offset_m}"
        )

    def spot(scene: dict) -> np.ndarray:
        return scene["plate_m"] + np.array([dx, dy, 0.0])

    return _pick_waypoints("", grasp_hold_steps) + _place_waypoints("", spot, PLATE_TOP_M)


def pick_bowl_plan(variant: str, *, grasp_hold_steps: int = GRASP_HOLD_STEPS) -> list[Waypoint]:
    """The expert's plan or a failure variant's; ``grasp_hold_steps``: see ``GRASP_HOLD_STEPS`` (1..10)."""
    if isinstance(grasp_hold_steps, bool) or not isinstance(grasp_hold_steps, int) or not 1 <= grasp_hold_steps <= 10:
        raise ValueError(f"grasp_hold_steps: expected an integer 1..10, got {grasp_hold_steps!r}")

    def pick(tag: str) -> list[Waypoint]:
        return _pick_waypoints(tag, grasp_hold_steps)

    if variant == "expert":
        return pick("") + _place_waypoints("", _plate, PLATE_TOP_M)
    if variant == "stall":
        return pick("")[:1] + hover_plan("stall", 14, open_=1)
    if variant == "wrong_target":
        return pick("") + _place_waypoints("", _wrong_spot, 0.0)
    if variant == "undo":
        return (
            pick("")
            + _place_waypoints("", _plate, PLATE_TOP_M)
            + pick("undo_")
            + _place_waypoints("undo_", _tray, TRAY_TOP_M)
        )
    raise ValueError(f"variant: unknown pick_bowl variant {variant!r}")
