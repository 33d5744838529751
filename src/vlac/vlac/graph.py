"""The ROS node graph of a session, computed once from its parameter file (no ROS imported here).

Both the launch files and the whole-graph test start exactly this list, so everything but the
mapping onto ``launch_ros`` actions is tested without ``launch`` (not on PyPI):

    shared        actor_node, critic_node, trainer_node                 namespace ""
    per arm k     episode_manager + sim_node (or driver_node, camera_node)  namespace arm_k

``sim_node`` and ``driver_node`` are one executable, piper_driver's ``arm_node``, run under the name
of its backend with the parameter ``backend`` (``sim`` or ``sdk``) set here.

Each node gets the session YAML as a ROS parameter file (``vlac.param_file.ros_param_file``: the file
itself, or for an overlay its ``extends`` chain merged into one file; ROS applies the sections whose
names match the node: ``actor_node`` for the shared nodes, ``/**/sim_node`` for every arm,
``arm_1/driver_node`` for arm 1 only, later sections winning) and, after it, a small set of
overrides computed here: the arm's robot id (``arm_k``: the episode manager derives its seeds from
it with ``vlac.episode.arm_wiring.arm_seeds``, as the embedded session does), the sim node's first
scene seed by the same rule, the arm's bag folder, the trainer's list of the arms' training-bag
folders (re-read at start: a restarted trainer loses nothing), and every relative path made
absolute. A real arm's camera node publishes ``image_raw``, remapped to the topic the arm's episode
manager reads (``front_image_topic``).

Relative paths in a session file resolve against its *root* (``vlac.param_file.session_root``,
the embedded session's rule too): the folder above the file's folder when that folder is
``config/`` (the repository, or ``share/vlac`` where the launch files install it), else the file's
own folder. So ``models/sim_actor`` in ``config/sim_pick_bowl.yaml`` names the same folder whatever
the working directory of ``ros2 launch`` or ``vlac session``.

Before anything starts, every node's effective parameters (file sections as ROS matches them,
then the overrides) are validated against its config dataclass: a typo or bad value in any
section, per-arm ones included, fails here with the file, the node and the key; and the actor and
trainer must agree on every setting the trainer's recompute depends on
(``vlac_trainer.online.wiring.check_actor_trainer_agree``, the embedded session's check), and a group
advantage needs every arm to repeat its scenes in whole batches (``check_groups``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import yaml

from vlac.episode.arm_wiring import arm_seeds
from vlac.param_file import (
    load_session_files,
    read_session_sections,
    resolve_path,
    resolve_paths,
    ros_param_file,
    section_class,
    session_root,
)
from vlac_core.config import ConfigError, from_mapping
from vlac_trainer.online.wiring import check_actor_trainer_agree, check_groups

#: console scripts (package, executable) each node section runs; checked against the setup.py files.
EXECUTABLES = {
    "sim_node": ("piper_driver", "arm_node"),
    "driver_node": ("piper_driver", "arm_node"),
    "camera_node": ("piper_driver", "camera_node"),
    "episode_manager": ("vlac", "episode_manager_node"),
    "actor_node": ("vlac_actor", "actor_node"),
    "critic_node": ("vlac_critic", "critic_node"),
    "trainer_node": ("vlac_trainer", "trainer_node"),
}
SHARED_NODES = ("actor_node", "critic_node", "trainer_node")
#: The one arm node's ``backend`` parameter, by the section (node name) it runs as: set here, not in the file.
ARM_BACKENDS = {"sim_node": "sim", "driver_node": "sdk"}


@dataclass(frozen=True)
class NodeSpec:
    """One node to start: what runs, where in the graph, and its parameters (file, then overrides)."""

    package: str
    executable: str
    namespace: str  # "" for the shared nodes, "arm_k" per arm
    name: str
    param_file: Path  # the session YAML (an overlay's chain merged: ros_param_file), absolute
    overrides: Mapping[str, Any]  # applied after param_file
    remappings: tuple[tuple[str, str], ...] = ()  # (topic the node uses, topic in the graph)

    @property
    def fqn(self) -> str:
        """Fully qualified node name, e.g. ``/arm_0/sim_node``."""
        return f"/{self.namespace}/{self.name}" if self.namespace else f"/{self.name}"

    def overrides_yaml(self) -> str:
        """The overrides as a ROS parameter file keyed by this node's full name (for ``--params-file``)."""
        return yaml.safe_dump({self.fqn: {"ros__parameters": dict(self.overrides)}}, sort_keys=True)

    def command(self, install_prefix: str | Path, overrides_file: str | Path) -> list[str]:
        """argv to run this node as a process from a colcon install folder (``overrides_file`` holds
        :meth:`overrides_yaml`), as ``ros2 launch`` would."""
        executable = Path(install_prefix) / self.package / "lib" / self.package / self.executable
        return [
            str(executable),
            "--ros-args",
            "-r",
            f"__node:={self.name}",
            "-r",
            f"__ns:=/{self.namespace}",
            "--params-file",
            str(self.param_file),
            "--params-file",
            str(overrides_file),
            *[arg for source, target in self.remappings for arg in ("-r", f"{source}:={target}")],
        ]


def section_matches(key: str, fqn: str) -> bool:
    """Whether a parameter-file section applies to the node ``fqn``, by ROS 2's rules.

    A key without a leading ``/`` is absolute (``sim_node`` is ``/sim_node``, root namespace only);
    ``/**`` stands for any number of namespace levels, ``*`` for one name.
    """
    key = key if key.startswith("/") else "/" + key
    if key == "/**":
        return True
    pattern = re.escape(key).replace(r"/\*\*", "(?:/[^/]+)*").replace(r"\*", "[^/]+")
    return re.fullmatch(pattern, fqn) is not None


def effective_parameters(sections: Mapping[str, Mapping[str, Any]], fqn: str, section: str) -> dict[str, Any]:
    """The values a node gets from the file: matching sections merged in file order (later wins).

    Keys of the catch-all ``/**`` section that ``section``'s dataclass does not declare are left
    out, as ROS ignores undeclared parameters; any other unknown key is kept so validation names it.
    """
    declared = {f.name for f in fields(section_class(section))}
    merged: dict[str, Any] = {}
    for key, params in sections.items():
        if key in ("/**", "**"):
            merged.update({k: v for k, v in params.items() if k in declared})
        elif key.rsplit("/", 1)[-1] == section and section_matches(key, fqn):
            merged.update(params)
    return merged


def node_list(config_path: str | Path, arms: int = 1, *, sim: bool = True, record: bool = True) -> list[NodeSpec]:
    """Every node of a session on ``arms`` arms (simulated or real), validated; see the module docstring."""
    if isinstance(arms, bool) or not isinstance(arms, int) or arms < 1:
        raise ConfigError(f"arms: expected at least 1 arm, got {arms!r}")
    path = Path(config_path).resolve()
    sections = read_session_sections(path)
    root = session_root(path)
    param_file = ros_param_file(path)
    manager_defaults = section_class("episode_manager")()
    namespaces = [f"arm_{k}" for k in range(arms)]
    managers = {ns: effective_parameters(sections, f"/{ns}/episode_manager", "episode_manager") for ns in namespaces}
    bag_dirs = {
        ns: str(Path(resolve_path(managers[ns].get("bag_dir", manager_defaults.bag_dir), root)) / ns)
        for ns in namespaces
    }
    # The trainer re-reads the arms' training bags (BagSink writes <bag_dir>/train/<episode id>/).
    shared_extra = {"trainer_node": {"bag_dirs": [str(Path(bag_dirs[ns]) / "train") for ns in namespaces]}}
    specs = [_spec(path, param_file, sections, root, name, "", shared_extra.get(name, {})) for name in SHARED_NODES]
    critic = effective_parameters(sections, "/critic_node", "critic_node")
    critic_checkpoint = resolve_path(critic.get("checkpoint", section_class("critic_node")().checkpoint), root)
    arm_sections = ("sim_node",) if sim else ("driver_node", "camera_node")
    for k, namespace in enumerate(namespaces):
        manager = managers[namespace]
        overrides = {"robot_id": namespace, "record": record, "bag_dir": bag_dirs[namespace]}
        if manager.get("done_rule", manager_defaults.done_rule) == "critic":  # the node reads the critic's own rule
            try:
                replace(manager_defaults, done_rule="critic").with_done_rule(critic_checkpoint)
            except ConfigError as error:
                raise ConfigError(f"{path} [/{namespace}/episode_manager]: {error}") from None
            overrides["done_rule_checkpoint"] = critic_checkpoint
        specs.append(_spec(path, param_file, sections, root, "episode_manager", namespace, overrides))
        for name in arm_sections:
            extra, remappings = {}, ()
            if name == "sim_node":  # the first scene the arm's episode manager asks for, by the same rule
                seed = effective_parameters(sections, f"/{namespace}/sim_node", "sim_node").get("seed", 0)
                extra["seed"] = arm_seeds(int(seed), k).scene_seed
            if name == "camera_node":  # it publishes image_raw; the arm's manager reads its front image topic
                front = manager.get("front_image_topic", manager_defaults.front_image_topic)
                remappings = (("image_raw", front),)
            specs.append(_spec(path, param_file, sections, root, name, namespace, extra, remappings))
    # Unknown section names, the session section, and the actor/trainer agreement: the embedded runtime's checks.
    files = load_session_files(path)
    check_actor_trainer_agree(files.actor, files.trainer, str(path))
    if files.trainer.advantage == "group_phase" and not sim:
        raise ConfigError(
            f"{path} [trainer_node]: advantage: group_phase compares episodes by the simulator's task phase, which a "
            "real arm does not record; use advantage: group or gae"
        )
    for namespace in namespaces:  # each arm's groups must fit the trainer's batches (advantage: group)
        pool = int(managers[namespace].get("scene_pool", manager_defaults.scene_pool))
        if pool and not sim:
            raise ConfigError(
                f"{path} [/{namespace}/episode_manager]: scene_pool: {pool} cycles simulated scenes by their seeds, "
                "and a real arm has none (it starts from wherever it is reset to); set it to 0"
            )
        repeats = int(managers[namespace].get("scene_repeats", manager_defaults.scene_repeats))
        try:
            check_groups(files.trainer.advantage, repeats, files.trainer.episodes_per_update)
        except ConfigError as error:
            raise ConfigError(f"{path} [/{namespace}/episode_manager]: {error}") from None
    return specs


def _spec(
    path: Path,
    param_file: Path,
    sections: Mapping[str, Any],
    root: Path,
    section: str,
    namespace: str,
    extra: dict[str, Any],
    remappings: tuple[tuple[str, str], ...] = (),
) -> NodeSpec:
    package, executable = EXECUTABLES[section]
    fqn = f"/{namespace}/{section}" if namespace else f"/{section}"
    values = effective_parameters(sections, fqn, section)
    overrides = {**resolve_paths(section, values, root), **extra}
    try:
        from_mapping(section_class(section), {**values, **overrides}, where=f"{path} [{fqn}]")
    except ConfigError as error:
        message = str(error)
        raise ConfigError(message if message.startswith(str(path)) else f"{path} [{fqn}]: {message}") from None
    if section in ARM_BACKENDS:
        overrides["backend"] = ARM_BACKENDS[section]
    return NodeSpec(package, executable, namespace, section, param_file, overrides, remappings)
