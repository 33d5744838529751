"""One arm's episode machinery, built once for both runtimes: the episode manager node and the session.

Why: each runtime used to wire the loop, its manager, the return-and-explore store, the bag sink and
the arm's seeds its own way, and they drifted (the node started every arm at the same scene seed).
The runtimes differ only in what they pass in: the robot, actor and critic adapters (topics and
services, or in-process objects), the clock, and whether the store and intervention tracker are
shared by several arms (the session) or the arm's own (a node per arm).

Seeds of arm ``k`` (``arm_index``; ``arm_k`` robot ids) after ``episodes_done`` episodes: fresh
starts from scene seed ``scene_seed + 100000 k + episodes_done`` (arms never draw the same scenes), or
with ``scene_pool`` K > 0 cycled over ``scene_seed + 100000 k`` .. ``+ K - 1`` from position
``ceil(episodes_done / scene_repeats) mod K`` (the fresh starts behind the run: a resumed pool goes on in its
cycle where it stopped, and a group cut short is not made up); return-and-explore draws from
``scene_seed + 7919 k + episodes_done`` (a resumed run does not replay the draws of the run before).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from piper_driver.sim.scene_seeds import SceneSeeds
from vlac.episode.interfaces import Operator
from vlac.episode.intervention import InterventionTracker
from vlac.episode.loop import EpisodeLoop, LoopConfig
from vlac.episode.manager import CancellableOperator, EpisodeManager
from vlac.episode.recording import BagSink
from vlac.episode.return_explore import ReturnAndExploreStore
from vlac.param_file import EpisodeManagerConfig

#: Scene seeds reserved per arm: arm k's fresh starts begin at scene_seed + SCENES_PER_ARM * k.
SCENES_PER_ARM = 100000
#: Stride between the arms' return-and-explore seeds (a prime, so arms' streams do not line up).
_MANAGER_SEED_STRIDE = 7919
_ARM_ID = re.compile(r"^arm_(\d+)$")


def arm_index(robot_id: str) -> int:
    """k of ``arm_k``; 0 for any other robot id (a single arm named otherwise)."""
    match = _ARM_ID.match(robot_id)
    return int(match.group(1)) if match else 0


@dataclass(frozen=True)
class ArmSeeds:
    scene_seed: int  # first scene seed of the arm's fresh starts (simulation)
    manager_seed: int  # the episode manager's return-and-explore draws
    scenes: SceneSeeds  # the rule of the fresh starts after the first (the arm's pool, if any)


def arm_seeds(
    scene_seed: int, index: int, episodes_done: int = 0, scene_pool: int = 0, scene_repeats: int = 1
) -> ArmSeeds:
    """The seeds of arm ``index`` once ``episodes_done`` training episodes are behind the run; ``scene_pool``
    K > 0 cycles the arm's fresh starts over K scenes, each run ``scene_repeats`` times in a row.

    Why the pool counts groups and the open run does not: in a pool the position is what matters (each scene's
    share of the run), so a resumed arm takes the scene after the ``ceil(episodes_done / scene_repeats)`` fresh
    starts behind it; without a pool any scene not drawn yet will do, and ``episodes_done`` is never below the
    fresh starts behind the run, so a resumed arm never replays one, however many groups were cut short."""
    if scene_seed < 0 or index < 0 or episodes_done < 0 or scene_pool < 0 or scene_repeats < 1:
        raise ValueError(
            f"arm_seeds({scene_seed}, {index}, {episodes_done}, {scene_pool}, {scene_repeats}): expected "
            "non-negative numbers and scene_repeats >= 1"
        )
    if scene_pool > SCENES_PER_ARM:
        raise ValueError(f"scene_pool {scene_pool}: at most {SCENES_PER_ARM} (the scenes reserved per arm)")
    scenes = SceneSeeds(scene_seed + SCENES_PER_ARM * index, scene_pool)
    fresh_starts_done = -(-episodes_done // scene_repeats) if scene_pool else episodes_done
    return ArmSeeds(
        scene_seed=scenes.nth(fresh_starts_done),
        manager_seed=scene_seed + _MANAGER_SEED_STRIDE * index + episodes_done,
        scenes=scenes,
    )


def recorded_episodes(bag_dir: str | Path, phase: str = "train") -> int:
    """Episode bags ``bag_sink`` has written under ``bag_dir`` for ``phase`` (0 for a new folder): the
    ``episodes_done`` of an episode manager node restarted on its folder, so it draws new scenes."""
    folder = Path(bag_dir) / phase
    return sum(1 for path in folder.iterdir() if path.is_dir()) if folder.is_dir() else 0


def return_explore_store(cfg: EpisodeManagerConfig) -> ReturnAndExploreStore:
    """An empty store with the configured limits (a node's own, or the one the session's arms share)."""
    return ReturnAndExploreStore(cfg.revisit_prob, cfg.max_kept_states, cfg.retire_after_successes)


def bag_sink(cfg: EpisodeManagerConfig, bag_dir: str | Path, listeners: Iterable[Callable] = ()) -> BagSink:
    """The arm's recorder: every episode to an MCAP bag under ``bag_dir`` before ``listeners`` hear of it."""
    return BagSink(Path(bag_dir), record=cfg.record, listeners=list(listeners))


def build_episode_manager(
    cfg: EpisodeManagerConfig,
    robot,
    actor,
    critic,
    sink,
    *,
    operator: Operator | None = None,
    seeds: ArmSeeds,
    clock: Callable[[], float],
    loop_config: LoopConfig | None = None,
    stop_event: threading.Event | None = None,
    return_explore: ReturnAndExploreStore | None = None,
    intervention: InterventionTracker | None = None,
    lock: threading.Lock | None = None,
    cancellable: bool = True,
    **loop_options,
) -> EpisodeManager:
    """The arm's ``EpisodeManager`` around a new ``EpisodeLoop``.

    ``return_explore`` / ``intervention`` / ``lock``: pass shared ones when several arms pool them
    (then pass the lock too); by default the arm gets its own. The store is used only when
    ``cfg.return_explore`` is on. ``cancellable`` False builds a loop without an operator (the
    session's evaluation arm); ``loop_config`` overrides ``cfg.loop_config()``; ``loop_options`` go to
    ``EpisodeLoop`` as they are (e.g. ``ground_truth``, ``sleep``).
    """
    loop = EpisodeLoop(
        robot,
        actor,
        critic,
        sink,
        loop_config or cfg.loop_config(),
        CancellableOperator(operator) if cancellable else None,
        stop_event=stop_event,
        clock=clock,
        **loop_options,
    )
    store = return_explore if return_explore is not None else return_explore_store(cfg)
    return EpisodeManager(
        loop,
        loop.operator,
        return_explore=store if cfg.return_explore else None,
        intervention=intervention or InterventionTracker(cfg.intervention_window),
        seed=seeds.manager_seed,
        lock=lock,
        return_to=cfg.return_to,
        scene_repeats=cfg.scene_repeats,
    )
