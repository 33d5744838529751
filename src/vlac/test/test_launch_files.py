"""The launch files, read without ROS (launch is not on PyPI): they parse, map the node list of
``vlac.graph`` onto Node actions and nothing else, start only console scripts that exist, and the
shipped session files load into the config dataclasses."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from vlac.graph import EXECUTABLES
from vlac.param_file import SECTIONS, load_session_files
from vlac_core.config import ConfigError

REPO = Path(__file__).resolve().parents[3]
LAUNCH_FILES = sorted((REPO / "launch").glob("*.launch.py"))
CONFIG_FILES = sorted((REPO / "config").glob("*.yaml"))
SESSION_CONFIGS = ["sim_pick_bowl.yaml", "sim_multi_arm.yaml", "demo.yaml", "real_two_arms.yaml"]


def console_scripts() -> dict[str, set[str]]:
    """package -> console script names, from every src/*/setup.py (read with ast, not executed)."""
    scripts: dict[str, set[str]] = {}
    for setup in (REPO / "src").glob("*/setup.py"):
        names = set()
        for node in ast.walk(ast.parse(setup.read_text())):
            text = node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else ""
            if " = " in text and ":" in text:
                names.add(node.value.split(" = ")[0].strip())
        scripts[setup.parent.name] = names
    return scripts


def launch_module(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def test_launch_files_exist_and_parse():
    names = {p.name for p in LAUNCH_FILES}
    assert {"rl_session.launch.py", "multi_arm.launch.py"} <= names
    for path in LAUNCH_FILES:
        module = launch_module(path)
        functions = {n.name for n in module.body if isinstance(n, ast.FunctionDef)}
        assert "generate_launch_description" in functions, path


def test_the_session_launch_maps_every_field_of_the_node_list_onto_node_actions():
    """The launch file holds no wiring of its own: node_list (tested in test_graph) decides everything."""
    module = launch_module(REPO / "launch" / "rl_session.launch.py")
    imports = {(n.module, a.name) for n in ast.walk(module) if isinstance(n, ast.ImportFrom) for a in n.names}
    assert ("vlac.graph", "node_list") in imports
    calls = [c for c in ast.walk(module) if isinstance(c, ast.Call) and getattr(c.func, "id", "") == "Node"]
    assert len(calls) == 1
    keywords = {k.arg: ast.unparse(k.value) for k in calls[0].keywords}
    for field in ("package", "executable", "namespace", "name"):
        assert keywords[field] == f"spec.{field}"
    assert keywords["parameters"] == "[str(spec.param_file), dict(spec.overrides)]"
    assert keywords["remappings"] == "list(spec.remappings)"


def test_every_node_section_runs_a_console_script_that_a_setup_file_installs():
    scripts = console_scripts()
    for section, (package, executable) in EXECUTABLES.items():
        assert executable in scripts.get(package, set()), f"{section}: {package}/{executable} is not a console script"
        assert section in SECTIONS, f"{section}: no config dataclass for the node's section"


def test_multi_arm_launch_includes_the_session_launch_with_its_arguments():
    source = (REPO / "launch" / "multi_arm.launch.py").read_text()
    assert "rl_session.launch.py" in source
    for argument in ("arms", "sim", "config", "record"):
        assert f'"{argument}": LaunchConfiguration("{argument}")' in source


@pytest.mark.parametrize("name", SESSION_CONFIGS)
def test_shipped_session_files_load_into_the_dataclasses(name):
    files = load_session_files(REPO / "config" / name)
    # Relative paths resolve against the session root (the repository for config/), as vlac.graph does.
    assert files.actor.checkpoint_path == files.trainer.checkpoint_path == str(REPO / "models/sim_actor")
    assert files.critic.checkpoint == str(REPO / "models/sim_critic")
    assert files.trainer.max_translation_mm == files.actor.max_translation_mm


def test_a_wrong_value_names_file_section_and_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    text = (REPO / "config" / "demo.yaml").read_text()
    bad.write_text(text.replace("max_steps: 50", "max_steps: -3", 1))
    with pytest.raises(ConfigError, match=r"\[episode_manager\].*max_steps"):
        load_session_files(bad)


def test_an_unknown_section_is_refused(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text((REPO / "config" / "demo.yaml").read_text() + "\nepisode_manger:\n  ros__parameters: {}\n")
    with pytest.raises(ConfigError, match="unknown section 'episode_manger'"):
        load_session_files(bad)


def test_rviz_config_and_rqt_perspective_are_installed_with_the_package():
    setup = (REPO / "src" / "vlac" / "setup.py").read_text()
    assert '"../../rviz/*"' in setup and "*.perspective" in setup
    assert list((REPO / "rviz").glob("*.rviz")) and list((REPO / "config").glob("*.perspective"))
