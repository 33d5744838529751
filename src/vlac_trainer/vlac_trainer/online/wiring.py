"""The trainer, built once for both runtimes: the trainer node and the embedded session call this.

Why: the two used to build it each their own way and drifted (the node dropped
``allow_fresh_value_head``, scored prompts under other input limits than the actor, and started
every fresh run at version 0 whatever the actor served). Here:

- :func:`check_actor_trainer_agree`: the trainer recomputes log-probs under the actor's grammar and
  prompt, from the actor's starting policy: both start from the same checkpoint, whose settings
  (``vlac_actor.policy_settings``) give the grammar and prompt to both, and every other setting that
  shapes them must be equal in ``actor_node`` and ``trainer_node`` (``vlac_actor.trainer_agreement``);
  the session runs it on its parameter file; the actor node runs the same comparison against the
  announcing trainer's parameters.
- :func:`start_point`: where training starts: the last published version recorded in the trainer
  checkpoint under ``<out>/trainer`` (a restart resumes), else ``checkpoint_path`` at
  ``policy_version``. The actor must serve that version; the trainer node announces it at start.
- :func:`build_trainer`: policy, PPO trainer (:func:`build_ppo`), publisher and ``AsyncTrainer`` (restored
  when resuming); with ``own_process`` the updates run in a child process (``update_process``).
- :func:`reingest_missing`: recorded training-episode bags the trainer's checkpoint does not hold
  (received after its last save, or while it was down) go to it again at start: nothing stored is lost.
- :class:`LateBags`: while it runs, the trainer node reads back finished bags whose /episodes message never
  came (sent before discovery matched the trainer, or lost).

Output layout under ``out_dir``: ``trainer/`` (checkpoints), ``policies/v<N>/`` (published versions).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vlac_actor.trainer_agreement import SHARED_WITH_TRAINER, trainer_disagreement
from vlac_core.checkpoint_dir import require_checkpoint_dir
from vlac_core.config import ConfigError
from vlac_trainer.online.trainer_config import GROUP_ADVANTAGES, TrainerConfig

#: Settings of ``actor_node`` that ``trainer_node`` must repeat exactly (the prompt, the grammar, the start).
SHARED_WITH_ACTOR = SHARED_WITH_TRAINER


def check_actor_trainer_agree(actor, trainer: TrainerConfig, where: str = "") -> None:
    """ConfigError naming the first setting where ``actor`` (an ActorConfig) and ``trainer`` differ.

    The starting checkpoints are compared as resolved paths, as both are read on this machine (the
    actor node, which may run elsewhere, checks the other settings against the announcing trainer).
    """
    prefix = f"{where}: " if where else ""
    problem = trainer_disagreement(actor, {key: getattr(trainer, key) for key in SHARED_WITH_ACTOR})
    if problem:
        raise ConfigError(prefix + problem)
    if Path(trainer.checkpoint_path).resolve() != Path(actor.checkpoint_path).resolve():
        raise ConfigError(
            f"{prefix}trainer_node.checkpoint_path {trainer.checkpoint_path!r} differs from "
            f"actor_node.checkpoint_path {actor.checkpoint_path!r}; they must be equal"
        )


def check_groups(advantage: str, scene_repeats: int, episodes_per_update: int) -> None:
    """ConfigError unless the arms' groups fit the trainer's batches (``advantage: group`` or ``group_phase``).

    A group baseline needs episodes from one start in one batch: an arm that runs each scene once leaves every
    episode alone (none would be trained on), and a batch that is not a whole number of groups splits one. A
    group may also span whole batches (``scene_repeats`` a multiple of ``episodes_per_update``): each batch is
    then a part of one group, as in a run that trains on one scene throughout (the overfit check).
    """
    if advantage not in GROUP_ADVANTAGES:
        return
    if scene_repeats < 2:
        raise ConfigError(
            f"trainer_node.advantage: {advantage} compares episodes from one start, but "
            f"episode_manager.scene_repeats is {scene_repeats}; set it to 2 or more"
        )
    if episodes_per_update % scene_repeats and (scene_repeats % episodes_per_update or episodes_per_update < 2):
        raise ConfigError(
            f"trainer_node.episodes_per_update: {episodes_per_update} is neither a multiple of "
            f"episode_manager.scene_repeats ({scene_repeats}) nor a divisor of it (2 or more): a batch would split "
            "a group"
        )


@dataclass(frozen=True)
class StartPoint:
    """The policy training starts from, and whether a trainer checkpoint is there to restore."""

    policy_path: str
    policy_version: int
    resumed: bool


def start_point(cfg: TrainerConfig, out_dir: str | Path, resume: bool = True) -> StartPoint:
    """The last published version of a previous run under ``out_dir`` (when ``resume``), else the config's.

    A missing starting checkpoint is a ConfigError naming ``trainer_node.checkpoint_path`` and the path.
    """
    from vlac_trainer.online.async_trainer import saved_policy_path

    saved = saved_policy_path(Path(out_dir) / "trainer") if resume else None
    if saved is not None:
        path, version = saved
        require_checkpoint_dir(path, f"trainer checkpoint in {Path(out_dir) / 'trainer'}: policy_path")
        return StartPoint(str(path), int(version), resumed=True)
    require_checkpoint_dir(cfg.checkpoint_path, "trainer_node.checkpoint_path")
    return StartPoint(str(cfg.checkpoint_path), cfg.policy_version, resumed=False)


def build_ppo(cfg: TrainerConfig, policy_path: str, policy_version: int):
    """The PPO trainer (policy, prior, optimizer) at ``policy_path``; also what ``own_process``'s child builds."""
    from vlac_actor.policy import load_policy
    from vlac_trainer.online.ppo_trainer import PPOTrainer

    def load(path, version: int):
        return load_policy(
            path,
            version=version,
            device=cfg.device,
            dtype="float32",
            allow_fresh_value_head=cfg.allow_fresh_value_head,
        )

    policy = load(policy_path, policy_version)
    prior = None
    # The KL anchor's reference, or the drift's (log_prior_kl): the starting checkpoint, never a resumed version
    if cfg.prior_kl_coef > 0 or cfg.log_prior_kl:
        prior = load(cfg.checkpoint_path, cfg.policy_version)
        prior.loaded.model.requires_grad_(False)
    return PPOTrainer(policy, cfg, cfg.input_limits(policy.settings), prior=prior)


def build_trainer(
    cfg: TrainerConfig,
    out_dir: str | Path,
    start: StartPoint,
    announce: Callable[[int, str], object] | None,
    *,
    extra_state: Callable[[dict[str, np.ndarray]], dict] | None = None,
    on_update=None,
    on_backlog=None,
):
    """An ``AsyncTrainer`` (not started) at ``start``; restored from ``out_dir/trainer`` when resuming.

    ``announce(version, path)`` is called after each published update: the actor service in the
    session, the PolicyVersion publisher in the node. ``on_update`` and ``on_backlog``: AsyncTrainer's.
    """
    from vlac_trainer.online.async_trainer import AsyncTrainer
    from vlac_trainer.online.policy_publisher import PolicyPublisher

    out = Path(out_dir)
    ppo = build_ppo(cfg, start.policy_path, start.policy_version)
    updater = None
    if cfg.own_process:
        import torch

        from vlac_trainer.online.update_process import ProcessUpdater

        # the child uses as many intra-op threads as the caller was set to (session.torch_threads)
        updater = ProcessUpdater(cfg, start.policy_path, start.policy_version, torch_threads=torch.get_num_threads())
    publisher = PolicyPublisher(
        out / "policies", announce=announce, keep=cfg.keep_policy_versions, keep_every=cfg.keep_policy_every
    )
    trainer = AsyncTrainer(
        ppo,
        publisher,
        out / "trainer",
        extra_state=extra_state,
        on_update=on_update,
        on_backlog=on_backlog,
        updater=updater,
    )
    if start.resumed and not trainer.restore():
        raise ConfigError(f"{out / 'trainer'}: the trainer checkpoint vanished while starting; start again")
    return trainer


def reingest_missing(
    trainer, bag_dirs: Iterable[str | Path], say: Callable[[str], object], *, unfinished: bool = True
) -> int:
    """Hand ``trainer`` (an AsyncTrainer) every episode bag in ``bag_dirs`` that it does not hold.

    ``bag_dirs``: folders of training-episode bags, one sub-folder per episode named by its id
    (``BagSink``'s ``<bag_dir>/train``); a folder that does not exist yet holds none. Bags go in the
    order they were written (the rollout buffer keeps each robot's latest). ``unfinished``: rebuild a
    bag without ``metadata.yaml`` (cut off by a crash) as an aborted episode; False leaves it alone,
    for a trainer started while episode managers may be writing it (the episode arrives on /episodes
    once finished). A bag that cannot be read is reported through ``say`` and skipped. Returns how
    many episodes were handed in.
    """
    bags = _recorded_bags(bag_dirs)
    missing = set(trainer.missing_episode_ids(path.name for path in bags))
    chosen = [p for p in bags if p.name in missing and (unfinished or _finished(p))]
    handed = len(chosen) - len(_hand_in(trainer, chosen, say))
    if handed:
        say(f"{handed} recorded episode(s) missing from the trainer checkpoint handed to the trainer")
    return handed


class LateBags:
    """Finished training bags the trainer still lacks one scan after a scan first saw them finished.

    Why: /episodes is volatile, so an episode an episode manager sends before its publisher has matched
    the trainer's subscription (discovery is pairwise and takes seconds on a loaded machine) reaches no
    trainer, and the read-back at start (:func:`reingest_missing`) has already run. The bag on disk is
    the record (DESIGN: an episode is written before it is acknowledged), so the trainer node scans
    ``bag_dirs`` every ``bag_rescan_s`` and reads such episodes back. Two scans, not one: a bag whose
    message is still on its way is left to the message, and no clock margin decides it. Bags without
    ``metadata.yaml`` are being written (or were cut off: the read-back at start rebuilds those).
    """

    def __init__(self, trainer, bag_dirs: Iterable[str | Path]) -> None:
        self.trainer = trainer
        self.bag_dirs = [Path(d) for d in bag_dirs]
        self._missing_last_scan: set[str] = set()
        self._unreadable: set[str] = set()  # reported once, not at every scan

    def scan(self, say: Callable[[str], object]) -> int:
        """Hand in the bags missing at this scan and the last one; returns how many were handed in."""
        finished = [p for p in _recorded_bags(self.bag_dirs) if _finished(p)]
        missing = set(self.trainer.missing_episode_ids(p.name for p in finished)) - self._unreadable
        due = [p for p in finished if p.name in missing & self._missing_last_scan]
        self._missing_last_scan = missing - {p.name for p in due}
        unreadable = {p.name for p in _hand_in(self.trainer, due, say)}
        self._unreadable |= unreadable
        handed = [p for p in due if p.name not in unreadable]
        for path in handed:
            say(f"{path.name}: finished but never received on /episodes; read back from {path}")
        return len(handed)


def _recorded_bags(bag_dirs: Iterable[str | Path]) -> list[Path]:
    """Every episode's bag folder under ``bag_dirs``, in the order they were written."""
    bags = [path for folder in map(Path, bag_dirs) if folder.is_dir() for path in folder.iterdir() if path.is_dir()]
    return sorted(bags, key=lambda p: (p.stat().st_mtime, p.name))


def _finished(bag: Path) -> bool:
    return (bag / "metadata.yaml").exists()


def _hand_in(trainer, bags: Iterable[Path], say: Callable[[str], object]) -> list[Path]:
    """Read each bag (a finished one as recorded, an unfinished one rebuilt as aborted) and submit it;
    returns the bags that could not be read (each reported through ``say``)."""
    from vlac_core.bag import BagError, read_episode, recover_episode

    unreadable = []
    for path in bags:
        try:
            episode = read_episode(path) if _finished(path) else recover_episode(path)
        except BagError as error:
            say(f"{path} not handed to the trainer: {error}")
            unreadable.append(path)
            continue
        trainer.submit(episode)
    return unreadable
