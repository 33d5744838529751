"""The launch files and the setup files, checked by what they do, without ROS.

``launch`` and ``launch_ros`` are ROS packages (apt, not PyPI) and are not installed here, so a
launch file cannot be run with them. It is run instead against small stand-ins for the few
``launch``/``launch_ros`` classes it uses, which only record what they are given: the Node actions
a launch file asks for are compared with ``vlac.graph.node_list`` (the real one, tested in
test_graph), so a field the launch file drops or garbles fails here. The setup files are executed
as colcon executes them, with ``setuptools.setup`` replaced by a recorder, and their console
scripts are loaded. The shipped session files load into the config dataclasses.
"""

from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
import runpy
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import setuptools

from vlac.graph import EXECUTABLES, node_list
from vlac.param_file import SECTIONS, load_session_files, merged_param_text
from vlac_core.config import ConfigError

REPO = Path(__file__).resolve().parents[3]
LAUNCH_FILES = sorted((REPO / "launch").glob("*.launch.py"))
CONFIG_FILES = sorted((REPO / "config").glob("*.yaml"))
SESSION_CONFIGS = ["sim_pick_bowl.yaml", "sim_multi_arm.yaml", "demo.yaml", "real_two_arms.yaml"]

#: Everything a launch file may import: the launch API, the ament index, os, and the node list.
#: Any other import would be wiring of its own, which nothing but a real ``ros2 launch`` would test.
LAUNCH_IMPORTS = {
    "__future__",
    "os",
    "ament_index_python.packages",
    "launch",
    "launch.actions",
    "launch.launch_description_sources",
    "launch.substitutions",
    "launch_ros.actions",
    "vlac.graph",
}


# --- setup files, executed ------------------------------------------------------------------


def setup_arguments(package: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The keyword arguments ``src/<package>/setup.py`` passes to ``setuptools.setup``, from running it
    in its own folder (its data-file globs are relative to it, as under colcon)."""
    captured: dict[str, Any] = {}
    with monkeypatch.context() as patch:
        patch.setattr(setuptools, "setup", lambda **kwargs: captured.update(kwargs))
        patch.chdir(REPO / "src" / package)
        runpy.run_path("setup.py", run_name="__main__")
    assert captured, f"{package}/setup.py did not call setuptools.setup"
    return captured


def console_scripts(package: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, importlib.metadata.EntryPoint]:
    entries = setup_arguments(package, monkeypatch).get("entry_points", {}).get("console_scripts", [])
    points = [
        importlib.metadata.EntryPoint(*(part.strip() for part in e.split("=")), "console_scripts") for e in entries
    ]
    return {p.name: p for p in points}


def data_files(package: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, list[Path]]:
    """Install folder -> the source files setup.py puts there (absolute)."""
    base = REPO / "src" / package
    return {
        folder: [(base / f).resolve() for f in files]
        for folder, files in setup_arguments(package, monkeypatch).get("data_files", [])
    }


def test_every_node_section_runs_a_console_script_that_a_setup_file_installs(monkeypatch):
    for section, (package, executable) in EXECUTABLES.items():
        scripts = console_scripts(package, monkeypatch)
        assert executable in scripts, f"{section}: {package}/setup.py installs no console script {executable}"
        assert callable(scripts[executable].load()), f"{section}: {scripts[executable].value} is not callable"
        assert section in SECTIONS, f"{section}: no config dataclass for the node's section"


def test_the_bring_up_package_installs_launch_session_rviz_and_rqt_files(monkeypatch):
    installed = data_files("vlac", monkeypatch)
    names = {folder: {f.name for f in files if f.is_file()} for folder, files in installed.items()}
    assert {p.name for p in LAUNCH_FILES} <= names["share/vlac/launch"]
    assert {"rl_session.launch.py", "multi_arm.launch.py"} <= names["share/vlac/launch"]
    assert set(SESSION_CONFIGS) <= names["share/vlac/config"]
    assert any(n.endswith(".perspective") for n in names["share/vlac/config"])
    assert any(n.endswith(".rviz") for n in names["share/vlac/rviz"])
    for model in ("sim_actor", "sim_critic"):
        assert "model.safetensors" in names[f"share/vlac/models/{model}"]


# --- launch files, run against stand-ins ------------------------------------------------------


@dataclass
class Recorded:
    """What a stand-in launch class was constructed with."""

    kind: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LaunchConfiguration:
    name: str

    def perform(self, context: types.SimpleNamespace) -> str:
        return context.launch_configurations[self.name]


def _recorder(kind: str):
    return lambda *args, **kwargs: Recorded(kind, args, kwargs)


def _module(name: str, **attributes: Any) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__dict__.update(attributes)
    return module


@pytest.fixture
def run_launch_file(monkeypatch):
    """Load a launch file with the stand-ins in place; the ament index finds the vlac share folder at
    the repository (the layout setup.py installs: share/vlac/{launch,config})."""
    stand_ins = {
        "launch": _module("launch", LaunchDescription=_recorder("LaunchDescription")),
        "launch.actions": _module(
            "launch.actions",
            DeclareLaunchArgument=_recorder("DeclareLaunchArgument"),
            IncludeLaunchDescription=_recorder("IncludeLaunchDescription"),
            OpaqueFunction=_recorder("OpaqueFunction"),
        ),
        "launch.launch_description_sources": _module(
            "launch.launch_description_sources",
            PythonLaunchDescriptionSource=_recorder("PythonLaunchDescriptionSource"),
        ),
        "launch.substitutions": _module("launch.substitutions", LaunchConfiguration=LaunchConfiguration),
        "launch_ros": _module("launch_ros"),
        "launch_ros.actions": _module("launch_ros.actions", Node=_recorder("Node")),
        "ament_index_python": _module("ament_index_python"),
        "ament_index_python.packages": _module(
            "ament_index_python.packages", get_package_share_directory={"vlac": str(REPO)}.__getitem__
        ),
    }
    for name, module in stand_ins.items():
        monkeypatch.setitem(sys.modules, name, module)

    def load(path: Path) -> types.ModuleType:
        spec = importlib.util.spec_from_file_location(f"launch_file_{path.name.split('.')[0]}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load


def declared_arguments(description: Recorded) -> dict[str, str]:
    (entities,) = description.args
    return {e.args[0]: e.kwargs["default_value"] for e in entities if e.kind == "DeclareLaunchArgument"}


def nodes_of_session_launch(run_launch_file, **configurations: str) -> list[Recorded]:
    description = run_launch_file(REPO / "launch" / "rl_session.launch.py").generate_launch_description()
    (entities,) = description.args
    (opaque,) = [e for e in entities if e.kind == "OpaqueFunction"]
    context = types.SimpleNamespace(launch_configurations=declared_arguments(description) | configurations)
    actions = opaque.kwargs["function"](context)
    assert all(a.kind == "Node" for a in actions)
    return actions


def expected_node_kwargs(specs) -> list[dict[str, Any]]:
    return [
        {
            "package": s.package,
            "executable": s.executable,
            "namespace": s.namespace,
            "name": s.name,
            "parameters": [str(s.param_file), dict(s.overrides)],
            "remappings": list(s.remappings),
        }
        for s in specs
    ]


def node_kwargs(actions: list[Recorded]) -> list[dict[str, Any]]:
    keys = ("package", "executable", "namespace", "name", "parameters", "remappings")
    return [{k: a.kwargs.get(k) for k in keys} for a in actions]


def test_launch_files_exist_parse_and_import_only_the_launch_api_and_the_node_list():
    names = {p.name for p in LAUNCH_FILES}
    assert {"rl_session.launch.py", "multi_arm.launch.py"} <= names
    for path in LAUNCH_FILES:
        module = ast.parse(path.read_text(), filename=str(path))
        functions = {n.name for n in module.body if isinstance(n, ast.FunctionDef)}
        assert "generate_launch_description" in functions, path
        imported = {n.module for n in ast.walk(module) if isinstance(n, ast.ImportFrom)}
        imported |= {a.name for n in ast.walk(module) if isinstance(n, ast.Import) for a in n.names}
        assert imported <= LAUNCH_IMPORTS, f"{path.name} imports {sorted(imported - LAUNCH_IMPORTS)}"


@pytest.mark.parametrize(
    ("config", "arms", "sim", "record"),
    [("sim_multi_arm.yaml", 2, True, False), ("real_two_arms.yaml", 2, False, True), ("demo.yaml", 1, True, True)],
)
def test_the_session_launch_starts_exactly_the_node_list(run_launch_file, config, arms, sim, record):
    """The launch file holds no wiring of its own: node_list decides every field of every Node."""
    actions = nodes_of_session_launch(
        run_launch_file,
        config=str(REPO / "config" / config),
        arms=str(arms),
        sim=str(sim).lower(),
        record=str(record).lower(),
    )
    specs = node_list(REPO / "config" / config, arms, sim=sim, record=record)
    assert node_kwargs(actions) == expected_node_kwargs(specs)


def test_the_session_launch_defaults_to_one_simulated_arm_on_the_installed_pick_bowl_session(run_launch_file):
    actions = nodes_of_session_launch(run_launch_file)  # every argument at its declared default
    assert node_kwargs(actions) == expected_node_kwargs(node_list(REPO / "config" / "sim_pick_bowl.yaml"))


def test_multi_arm_launch_includes_the_session_launch_with_its_arguments(run_launch_file):
    description = run_launch_file(REPO / "launch" / "multi_arm.launch.py").generate_launch_description()
    defaults = declared_arguments(description)
    (entities,) = description.args
    (include,) = [e for e in entities if e.kind == "IncludeLaunchDescription"]
    (source,) = include.args
    assert Path(source.args[0]) == REPO / "launch" / "rl_session.launch.py"
    forwarded = dict(include.kwargs["launch_arguments"])
    session_arguments = declared_arguments(
        run_launch_file(REPO / "launch" / "rl_session.launch.py").generate_launch_description()
    )
    assert forwarded == {name: LaunchConfiguration(name) for name in session_arguments}
    # Forwarded as they resolve: four simulated arms on the installed multi-arm session, recorded.
    resolved = {
        name: value.perform(types.SimpleNamespace(launch_configurations=defaults)) for name, value in forwarded.items()
    }
    actions = nodes_of_session_launch(run_launch_file, **resolved)
    assert node_kwargs(actions) == expected_node_kwargs(node_list(REPO / "config" / "sim_multi_arm.yaml", 4))


@pytest.mark.parametrize("name", SESSION_CONFIGS)
def test_shipped_session_files_load_into_the_dataclasses(name):
    files = load_session_files(REPO / "config" / name)
    # Relative paths resolve against the session root (the repository for config/), as vlac.graph does.
    assert files.actor.checkpoint_path == files.trainer.checkpoint_path == str(REPO / "models/sim_actor")
    assert files.critic.checkpoint == str(REPO / "models/sim_critic")


def test_a_wrong_value_names_file_section_and_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    text = merged_param_text(REPO / "config" / "demo.yaml")
    bad.write_text(text.replace("max_steps: 50", "max_steps: -3", 1))
    with pytest.raises(ConfigError, match=r"\[episode_manager\].*max_steps"):
        load_session_files(bad)


def test_an_unknown_section_is_refused(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text((REPO / "config" / "demo.yaml").read_text() + "\nepisode_manger:\n  ros__parameters: {}\n")
    with pytest.raises(ConfigError, match="unknown section 'episode_manger'"):
        load_session_files(bad)
