"""`vlac session` reports bad input in one line, before heavy imports and before it creates anything."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from session_helpers import write_config

from vlac.cli import main

HEAVY = ("torch", "transformers", "mujoco")


def _checkpoint(folder: Path, weights: bytes | None) -> Path:
    """A folder that looks like an InternVL checkpoint, with ``weights`` as model.safetensors (None: empty folder)."""
    folder.mkdir()
    if weights is not None:
        (folder / "config.json").write_text(json.dumps({"model_type": "internvl"}))
        (folder / "model.safetensors").write_bytes(weights)
    return folder


def _run_in_subprocess(argv: list[str], cwd: Path) -> tuple[int, list[str], str]:
    """Exit status, heavy modules imported and stderr of `vlac ARGV` run in a fresh interpreter."""
    code = (
        "import json, sys\nfrom vlac.cli import main\nrc = main(sys.argv[1:])\n"
        f"print(json.dumps([rc, sorted(set({HEAVY!r}) & set(sys.modules))]))"
    )
    done = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, cwd=cwd, check=True)
    rc, modules = json.loads(done.stdout)
    return rc, modules, done.stderr


@pytest.mark.parametrize(
    ("weights", "status", "message"),
    [
        (None, 2, "actor_node.checkpoint_path: checkpoint '{actor}': no config.json (the folder is empty)"),
        (b"\x10\x00\x00\x00\x00\x00\x00\x00{", 1, "actor_node.checkpoint_path: {actor}/model.safetensors: not a"),
    ],
    ids=["empty-folder", "truncated-weights"],
)
def test_unloadable_checkpoint_is_one_line_naming_config_key_and_file_before_torch(tmp_path, weights, status, message):
    actor = _checkpoint(tmp_path / "actor", weights)
    critic = _checkpoint(tmp_path / "critic", weights)
    config = write_config(tmp_path / "session.yaml", actor, critic, tmp_path / "out")
    rc, heavy, err = _run_in_subprocess(["session", "--config", str(config)], tmp_path)
    assert (rc, heavy) == (status, [])
    assert err.startswith(f"vlac session: {config}: ") and err.count("\n") == 1
    assert message.format(actor=actor) in err
    assert not (tmp_path / "out").exists()  # nothing created for a run that cannot start


def test_malformed_yaml_is_a_usage_error_naming_the_file(tmp_path, capsys):
    config = tmp_path / "session.yaml"
    config.write_text("session:\n  ros__parameters:\n    episodes: [3\n")
    assert main(["session", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"vlac session: {config}: line 4, column 1: not valid YAML") and err.count("\n") == 1


def test_bad_flag_is_reported_before_heavy_imports(tmp_path):
    rc, heavy, err = _run_in_subprocess(["session", "--config", "nowhere.yaml", "--arms", "0"], tmp_path)
    assert (rc, heavy, err) == (2, [], "vlac session: --arms: expected 1..64, got 0\n")


def test_evaluation_trials_are_reported_as_they_end(tmp_path, capsys):
    import session_helpers
    import torch

    torch.set_num_threads(1)
    actor, critic = session_helpers.build_models(tmp_path / "models")
    config = write_config(
        tmp_path / "s.yaml", actor, critic, tmp_path / "out", max_steps=2, eval_trials=2, eval_at_end=False
    )
    assert main(["session", "--config", str(config), "--episodes", "0"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("[eval")]
    assert [line.split("]")[0] for line in lines] == ["[eval 1/2", "[eval 2/2", "[eval"]
    assert lines[0].startswith("[eval 1/2] policy v0: ") and lines[0].endswith(" steps")
    assert lines[2].startswith("[eval] after 0 episodes, policy v0: success ")  # the summary line log readers parse
