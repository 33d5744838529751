"""The session parameter file: one YAML (ROS parameter-file form) configures a session in both runtimes.

Read by the embedded runtime (``vlac session --config``), by ``vlac.graph`` for the launch files,
and by the episode manager node, which declares ``EpisodeManagerConfig`` as its ROS parameters.
Here are its section table, the two sections owned by this package (``EpisodeManagerConfig``,
``SessionConfig``), the reader, and the rule for relative paths. Its sections:

===================  ====================================================  =========================================
section              dataclass                                             read by
===================  ====================================================  =========================================
``sim_node``         ``piper_driver.sim.node_config.SimNodeConfig``        arm node (backend sim); embedded sim arms
``driver_node``      ``piper_driver.driver_config.DriverNodeConfig``       arm node (backend sdk)
``camera_node``      ``piper_driver.camera.CameraConfig``                  camera node (with a real arm)
``actor_node``       ``vlac_actor.config.ActorConfig``                     actor node; embedded actor pool
``critic_node``      ``vlac_critic.config.CriticConfig``                   critic node; embedded critic
``trainer_node``     ``vlac_trainer.online.trainer_config.TrainerConfig``  trainer node; embedded trainer thread
``episode_manager``  ``EpisodeManagerConfig`` (here)                       episode manager node(s); embedded arms
``session``          ``SessionConfig`` (here)                              ``vlac session`` only
===================  ====================================================  =========================================

``load_session_files`` reads every section through ``vlac_core.config.section_config``, so a wrong
key or value fails at start-up with the file, the section, the key and what is allowed.

Overlays: a session file may start with ``extends: <path>`` (relative to its own folder) and then
hold only what differs from that base file, e.g. ``config/sim_pick_bowl.yaml`` over
``config/session_base.yaml``. :func:`read_session_sections` applies the chain: the base's sections
first (its own ``extends`` applied before), then each section of the overlay merged over the base's
section of the same name key by key (a list replaces the base's list; a section the base lacks is
added after the base's, so ROS's later-wins order holds). Every file of the chain is checked on its
own, and errors name that file: an unknown section or key, a base that does not exist, a cycle.
ROS cannot read ``extends``, so the launch files hand nodes :func:`ros_param_file`, the merged file.

Relative paths (the settings in ``PATH_PARAMETERS``) resolve against the named file's *root*
(:func:`session_root`): the folder above the file's folder when that folder is ``config/`` (the
repository, or ``share/vlac`` where the launch files install it), else the file's own folder. The
embedded session (``vlac session --config``) and the ROS graph (``vlac.graph``) both use it, so one
file names the same folders in both runtimes whatever the working directory. For an overlay that is the
overlay's root, for paths its base sets too (keep a base beside its overlays).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, ClassVar

import yaml

from vlac.episode.loop import LoopConfig
from vlac.episode.return_explore import RETURN_TO, scene_repeats_refusal
from vlac_core.config import ConfigError, load_yaml_file, param, param_sections, section_config, validate

TELEOP_INPUTS = ("none", "joy", "twist")
#: episode_manager.done_rule: the session's keys, or the critic checkpoint's done_rule.json (vlac_critic.done_rule).
DONE_RULE_SOURCES = ("config", "critic")
#: settings that name files or folders, per section: made absolute against the session root.
PATH_PARAMETERS = {
    "actor_node": ("checkpoint_path",),
    "critic_node": ("checkpoint",),
    "trainer_node": ("checkpoint_path", "output_dir", "bag_dirs"),
    "episode_manager": ("bag_dir", "done_rule_checkpoint"),
    "session": ("out_dir", "demo_dir"),
}


def session_root(config_path: str | Path) -> Path:
    """The folder relative paths in ``config_path`` resolve against (see the module docstring)."""
    folder = Path(config_path).resolve().parent
    return folder.parent if folder.name == "config" else folder


def resolve_path(value: str, root: Path) -> str:
    """``value`` made absolute against ``root`` ("" stays "": not set; ``~`` is the user's home)."""
    if not value:
        return value
    path = Path(value).expanduser()
    return str(path if path.is_absolute() else root / path)


def resolve_paths(section: str, values: Mapping[str, Any], root: Path) -> dict[str, Any]:
    """The path settings of ``section`` among ``values`` made absolute against ``root`` (lists item by
    item); only those keys, so the result can go over ``values`` or into ``dataclasses.replace``."""
    resolved: dict[str, Any] = {}
    for key in PATH_PARAMETERS.get(section, ()):
        value = values.get(key)
        if isinstance(value, str) and value:
            resolved[key] = resolve_path(value, root)
        elif isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
            resolved[key] = [resolve_path(v, root) for v in value]
    return resolved


@dataclass(frozen=True)
class EpisodeManagerConfig(LoopConfig):
    """One arm's episode manager: the loop (the fields of ``LoopConfig``, declared there), recording,
    return-and-explore and teleoperation."""

    done_rule: str = param(
        "config",
        "where the done rule comes from: config (done_threshold and done_confirm_steps as written) or critic (the "
        "critic checkpoint's done_rule.json, chosen for that critic on rollouts with ground truth by critic_rollouts "
        "done-rule; it replaces both keys, and a checkpoint without one is refused at start-up)",
        choices=DONE_RULE_SOURCES,
    )
    done_rule_checkpoint: str = param(
        "",
        "ROS: the critic checkpoint whose done_rule.json done_rule: critic reads (the launch files set it to "
        "critic_node.checkpoint; the session reads critic_node's and refuses another here)",
    )
    robot_id: str = param("arm_0", "robot id written into episodes and bags (a ROS name component)")
    task: str = param(
        "", "ROS: instruction text of the episodes (a goal's task overrides it); the session uses the sim's"
    )
    record: bool = param(True, "write every episode to a rosbag2 MCAP bag before it is acknowledged")
    bag_dir: str = param("episodes", "folder of the episode bags (ROS runtime; the session uses <out>/bags)")
    send_to_trainer: bool = param(True, "hand finished training episodes to the trainer")
    max_waiting_batches: int = param(
        0,
        "backpressure: a training arm starts its next episode only while fewer than this many batches "
        "(trainer_node.episodes_per_update episodes each) wait for a PPO update (0: arms never wait, and episodes "
        "the trainer cannot reach before they grow too old are dropped). With 1, every episode is trained on and "
        "learning per episode no longer depends on how fast the CPU runs the updates. ROS: autorun episodes wait "
        "on /trainer_backlog (goals are never held); until the trainer has published it, nothing waits",
        low=0,
        high=1000,
    )
    scene_seed: int = param(0, "first scene seed of fresh starts (simulation); arm k starts at seed + 100000 k", low=0)
    scene_pool: int = param(
        0,
        "training scenes per arm, cycled (simulation): fresh starts go round scene_seed + 100000 k .. "
        "+ scene_pool - 1, so a run trains on that many scenes and the held-out evaluation measures what carries "
        "to new ones (0: every fresh start a new scene)",
        low=0,
        high=100000,
    )
    scene_repeats: int = param(
        1,
        "training episodes run in a row from each fresh scene (simulation; the arm is reset to the same start): a "
        "group for trainer_node.advantage: group or group_phase, which compare episodes of one start; more than a "
        "run's episodes trains on one scene throughout (the overfit check). Needs return_explore: false",
        low=1,
        high=100000,
    )
    return_explore: bool = param(True, "keep start states of failed episodes and go back to them")
    revisit_prob: float = param(0.3, "probability that a reset returns to a kept failed start state", low=0.0, high=1.0)
    max_kept_states: int = param(100, "kept start states at most", low=1)
    retire_after_successes: int = param(2, "successes from a kept state that retire it", low=1)
    return_to: str = param(
        "start",
        "what a failed episode keeps to return to: start, or frontier (the state where its return peaked; "
        "simulated arms only, refused at start-up elsewhere)",
        choices=RETURN_TO,
    )
    intervention_window: int = param(50, "episodes in the intervention-rate window", low=1)
    teleop_input: str = param("none", "operator input: none, joy (sensor_msgs/Joy) or twist", choices=TELEOP_INPUTS)
    teleop_topic: str = param("teleop/joy", "topic of the operator's Joy or Twist messages")
    teleop_max_mm: float = param(20.0, "translation of a full stick deflection / 1 m/s twist per step, mm", low=0.1)
    teleop_max_deg: float = param(10.0, "rotation of a full stick deflection / 1 rad/s twist per step, deg", low=0.1)
    teleop_deadzone: float = param(0.1, "stick deflections below this are zero", low=0.0, high=0.9)
    teleop_timeout_s: float = param(0.5, "an operator command older than this holds the arm still, s", low=0.01)
    takeover_button: int = param(4, "Joy button that toggles teleoperation (LB on an Xbox pad)", low=0, high=63)
    gripper_button: int = param(0, "Joy button that toggles the gripper (A on an Xbox pad)", low=0, high=63)
    end_button: int = param(1, "Joy button that ends the running episode (B on an Xbox pad)", low=0, high=63)
    autorun_episodes: int = param(
        0, "ROS: training episodes run without goals (-1: until shutdown; 0: goals only)", low=-1
    )
    service_timeout_s: float = param(60.0, "ROS: longest wait for an actor/critic service answer, s", low=0.1)
    front_image_topic: str = param("front_camera/image_raw", "ROS: front camera topic (sensor_msgs/Image)")
    front_image_max_age_s: float = param(1.0, "ROS: a front image older than this is not observed, s", low=0.01)

    def check(self) -> None:
        if not self.robot_id.replace("_", "").isalnum() or not self.robot_id[:1].isalpha():
            raise ConfigError(f"robot_id: {self.robot_id!r} must be letters, digits and '_' starting with a letter")
        refusal = scene_repeats_refusal(self.scene_repeats, self.return_explore)
        if refusal:
            raise ConfigError(refusal)

    def with_done_rule(self, critic_checkpoint: str | None = None) -> EpisodeManagerConfig:
        """This section with its done rule in force: as written (``done_rule: config``), or with done_threshold and
        done_confirm_steps replaced by the critic checkpoint's stored rule (``done_rule: critic``; the checkpoint
        ``critic_checkpoint`` where given, else ``done_rule_checkpoint``). ConfigError naming the key when the
        checkpoint is not known or has no rule: never a default in its place."""
        if self.done_rule == "config":
            return self
        from vlac_critic.done_rule import read_done_rule

        checkpoint = self.done_rule_checkpoint
        if critic_checkpoint is not None:
            if checkpoint and Path(checkpoint).resolve() != Path(critic_checkpoint).resolve():
                raise ConfigError(
                    f"done_rule_checkpoint: {checkpoint} is not the critic this session runs ({critic_checkpoint}); "
                    "leave it empty (it is for ROS nodes, which the launch files set)"
                )
            checkpoint = critic_checkpoint
        if not checkpoint:
            raise ConfigError(
                "done_rule: critic needs the critic's checkpoint in done_rule_checkpoint (the launch files set it to "
                "critic_node.checkpoint)"
            )
        try:
            rule = read_done_rule(checkpoint)
        except ConfigError as error:
            raise ConfigError(f"done_rule: critic: {error}") from None
        return replace(
            self,
            done_threshold=rule.threshold,
            done_confirm_steps=rule.confirm_steps,
            done_rule_checkpoint=str(checkpoint),
        )

    def loop_config(self, max_steps: int | None = None) -> LoopConfig:
        """The loop's part of this section (``max_steps`` replaced when given)."""
        values = {f.name: getattr(self, f.name) for f in fields(LoopConfig)}
        return LoopConfig(**{**values, "max_steps": max_steps or self.max_steps})


@dataclass(frozen=True)
class SessionConfig:
    """``vlac session`` only: how many episodes, arms and evaluations, where the output goes."""

    MOVED_KEYS: ClassVar[dict[str, str]] = {
        "max_waiting_batches": "set episode_manager.max_waiting_batches (an arm's setting: the session and the "
        "ROS episode manager read it there)",
    }

    episodes: int = param(
        20, "training episodes in all, over every arm (a resumed session runs those still missing)", low=0, high=10**6
    )
    arms: int = param(1, "simulated arms, one thread each, sharing actor pool, critic and trainer", low=1, high=64)
    out_dir: str = param("out/session", "output folder: bags, trainer checkpoints, policies, plots, summary")
    eval_every_episodes: int = param(10, "greedy evaluation after every this many training episodes (0: never)", low=0)
    eval_trials: int = param(5, "greedy trials per evaluation (ground-truth success)", low=1, high=10000)
    eval_seed: int = param(1000000, "scene seed of the first evaluation trial (trial i uses eval_seed + i)", low=0)
    eval_parallel: int = param(
        1,
        "evaluation trials run side by side on this many simulated arms (capped at eval_trials); their concurrent "
        "actor and critic requests share batches",
        low=1,
        high=64,
    )
    eval_at_start: bool = param(True, "evaluate the starting policy before training")
    eval_at_end: bool = param(True, "evaluate the final policy after training")
    demo_dir: str = param("", "demonstrations for the demo buffer: collect-demos npz files or episode bags")
    max_demos: int = param(100, "demonstration episodes loaded at most", low=0)
    score_demos: bool = param(True, "score loaded demos with the critic (rewards for the value warm-up)")
    guided_explore_prob: float = param(0.0, "share of episodes the scripted operator takes over", low=0.0, high=1.0)
    takeover_after_steps: int = param(5, "steps the policy acts before a scripted takeover", low=0)
    guided_explore_stall_steps: int = param(
        0,
        "the scripted operator takes over any training episode whose ground-truth progress has not risen for "
        "this many steps (0: never; pick_bowl)",
        low=0,
    )
    guided_explore_stall_phases: list[str] = param(
        [],
        "ground-truth task phases whose steps count toward a stall (empty: every phase), e.g. [release]: the "
        "operator steps in only when the bowl is held low over the plate and not let go",
    )
    rolling_window: int = param(10, "training episodes in the rolling success rate of the plot", low=1)
    resume: bool = param(True, "continue from the trainer checkpoint in out_dir when there is one")
    torch_threads: int = param(0, "torch CPU threads (0: torch's default)", low=0, high=256)

    def __post_init__(self) -> None:
        validate(self)


@dataclass(frozen=True)
class SessionFiles:
    """Every section of one parameter file, validated."""

    path: Path
    sim: object
    actor: object
    critic: object
    trainer: object
    manager: EpisodeManagerConfig
    session: SessionConfig


#: section name -> where its dataclass lives, imported on use (keeps `vlac --help` light).
SECTIONS = {
    "sim_node": ("piper_driver.sim.node_config", "SimNodeConfig"),
    "actor_node": ("vlac_actor.config", "ActorConfig"),
    "critic_node": ("vlac_critic.config", "CriticConfig"),
    "trainer_node": ("vlac_trainer.online.trainer_config", "TrainerConfig"),
    "driver_node": ("piper_driver.driver_config", "DriverNodeConfig"),
    "camera_node": ("piper_driver.camera", "CameraConfig"),
    "episode_manager": ("vlac.param_file", "EpisodeManagerConfig"),
    "session": ("vlac.param_file", "SessionConfig"),
}


def section_class(section: str) -> type:
    import importlib

    module, name = SECTIONS[section]
    return getattr(importlib.import_module(module), name)


#: the top-level key of an overlay: the session file it extends, relative to the overlay's folder.
EXTENDS_KEY = "extends"


def read_session_sections(path: str | Path) -> dict[str, dict[str, Any]]:
    """{section name: parameters} of the session file ``path`` with its ``extends`` chain applied (see the
    module docstring); each file of the chain checked for unknown sections and keys."""
    return _read_chain(Path(path).expanduser().resolve(), ())


def _read_chain(path: Path, overlays: tuple[Path, ...]) -> dict[str, dict[str, Any]]:
    if path in overlays:
        cycle = " -> ".join(str(p) for p in (*overlays, path))
        raise ConfigError(f"{overlays[-1]}: {EXTENDS_KEY}: the chain comes back to a file it passed: {cycle}")
    if not path.is_file():
        if overlays:
            raise ConfigError(f"{overlays[-1]}: {EXTENDS_KEY}: base file not found: {path}")
        raise ConfigError(f"config file not found: {path}")
    data = load_yaml_file(path) or {}
    base = data.pop(EXTENDS_KEY, None) if isinstance(data, dict) else None
    sections = param_sections(data, path)
    _check_keys(path, sections, base=bool(overlays))
    if base is None:
        return sections
    if not isinstance(base, str) or not base.strip():
        raise ConfigError(f"{path}: {EXTENDS_KEY}: expected the path of the base session file, got {base!r}")
    return merge_sections(_read_chain((path.parent / Path(base).expanduser()).resolve(), (*overlays, path)), sections)


def merge_sections(
    base: Mapping[str, Mapping[str, Any]], overlay: Mapping[str, Mapping[str, Any]]
) -> dict[str, dict[str, Any]]:
    """``overlay``'s sections over ``base``'s, key by key (a new section goes after the base's); both unchanged.
    The one merge rule of ``extends``, and of overlays built in code (bench/rl_experiment.py's variants)."""
    merged = {name: dict(params) for name, params in base.items()}
    for name, params in overlay.items():
        merged[name] = {**merged.get(name, {}), **params}
    return merged


def _check_keys(path: Path, sections: Mapping[str, Mapping[str, Any]], *, base: bool) -> None:
    """Unknown section names, and in a ``base`` unknown keys, named with the file they are in (the named
    file's own keys are named by its sections' validation, with the node they reach)."""
    for name, params in sections.items():
        section = name.rsplit("/", 1)[-1]
        if name != "/**" and section not in SECTIONS:
            raise ConfigError(f"{path}: unknown section {name!r}; allowed: {sorted(SECTIONS)}")
        if not base:
            continue
        classes = [section_class(s) for s in SECTIONS] if name == "/**" else [section_class(section)]
        known = {f.name for cls in classes for f in fields(cls)}
        unknown = sorted(set(params) - known)
        if unknown:
            raise ConfigError(f"{path} [{name}]: unknown key(s) {unknown}; allowed: {sorted(known)}")


def merged_param_text(path: str | Path) -> str:
    """The session file ``path`` with its ``extends`` chain applied, as a plain ROS parameter file's text."""
    sections = read_session_sections(path)
    return yaml.safe_dump({name: {"ros__parameters": params} for name, params in sections.items()}, sort_keys=False)


def ros_param_file(path: str | Path) -> Path:
    """A parameter file ROS can read for the session file ``path``: ``path`` itself when it extends nothing,
    else its merged sections written to the temporary folder (named by their content, so concurrent
    launches of one session share it and a changed file gets a new one)."""
    path = Path(path).resolve()
    data = load_yaml_file(path)
    if not (isinstance(data, dict) and EXTENDS_KEY in data):
        return path
    text = merged_param_text(path)
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    folder = Path(tempfile.gettempdir()) / "vlac_session_params"
    folder.mkdir(exist_ok=True)
    target = folder / f"{path.stem}-{digest}.yaml"
    if not target.is_file():
        partial = folder / f".{target.name}.{os.getpid()}"
        partial.write_text(f"# {path} with its {EXTENDS_KEY} chain applied (vlac.param_file.ros_param_file)\n{text}")
        partial.replace(target)
    return target


def load_session_files(path: str | Path) -> SessionFiles:
    """All sections of ``path`` (its ``extends`` chain applied), paths resolved against its root
    (``session_root``); an unknown section name or key is an error too (a typo must not pass)."""
    path = Path(path)
    root = session_root(path)
    sections = read_session_sections(path)
    # The real arm's sections are checked only when present (their defaults need hardware settings).
    present = {name.rsplit("/", 1)[-1] for name in sections}
    loaded = {}
    for name in SECTIONS:
        if name in ("driver_node", "camera_node") and name not in present:
            continue
        try:
            config = section_config(sections, name, section_class(name), where=f"{path} [{name}]")
            loaded[name] = replace(config, **resolve_paths(name, vars(config), root))
        except ConfigError as error:  # a dataclass's own __post_init__ check does not name the file
            message = str(error)
            raise ConfigError(message if message.startswith(str(path)) else f"{path} [{name}]: {message}") from None
    try:  # the done rule in force: the critic's own where done_rule: critic says so
        manager = loaded["episode_manager"].with_done_rule(loaded["critic_node"].checkpoint)
    except ConfigError as error:
        raise ConfigError(f"{path} [episode_manager]: {error}") from None
    return SessionFiles(
        path=path,
        sim=loaded["sim_node"],
        actor=loaded["actor_node"],
        critic=loaded["critic_node"],
        trainer=loaded["trainer_node"],
        manager=manager,
        session=loaded["session"],
    )
