"""`vlac actor eval`: one outcome per seed, bounded episodes, batched arms, clear errors."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import pytest

from vlac_actor.policy import load_policy
from vlac_core.model import TinyModelSpec, build_tiny_model
from vlac_trainer import eval_actor_cli
from vlac_trainer.actor_eval import evaluate_policy_on_task


@pytest.fixture(scope="module")
def policy_dir(tmp_path_factory):
    path = build_tiny_model(tmp_path_factory.mktemp("policy") / "p", TinyModelSpec(image_size_px=32, seed=3))
    policy = load_policy(path, device="cpu", allow_fresh_value_head=True)
    return policy.save(path)


def test_each_seed_gets_one_bounded_episode_whatever_the_parallelism(policy_dir):
    policy = load_policy(policy_dir, device="cpu")
    seen = []
    result = evaluate_policy_on_task(
        policy, "sweep", [5, 3, 4], max_steps=2, parallel=2, image_size_px=32, on_episode=seen.append
    )
    assert [o.seed for o in result.outcomes] == [3, 4, 5]
    assert len(seen) == 3
    assert all(o.task == "sweep" and 1 <= o.steps <= 2 for o in result.outcomes)
    # an untrained policy does not finish the task in two steps; failures are counted as such
    assert result.success_rate == 0.0 and result.summary()["successes"] == 0
    again = evaluate_policy_on_task(policy, "sweep", [5, 3, 4], max_steps=2, parallel=3, image_size_px=32)
    assert again.outcomes == result.outcomes  # greedy, seeded scenes: batching does not change episodes


def test_no_seeds_is_an_error(policy_dir):
    policy = load_policy(policy_dir, device="cpu")
    with pytest.raises(ValueError, match="seeds"):
        evaluate_policy_on_task(policy, "sweep", [], image_size_px=32)


def test_cli_writes_results_and_refuses_unknown_tasks(policy_dir, tmp_path, capsys):
    parser = argparse.ArgumentParser()
    eval_actor_cli.add_arguments(parser)
    out = tmp_path / "eval"
    args = ["--checkpoint", str(policy_dir), "--task", "pick_bowl", "--episodes", "2", "--max-steps", "1"]
    assert eval_actor_cli.run(parser.parse_args([*args, "--out", str(out), "--no-progress"])) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["tasks"][0]["episodes"] == 2 and results["seeds"] == [20000, 20001]
    assert (out / "actor_success.png").is_file()
    assert eval_actor_cli.run(parser.parse_args(["--checkpoint", str(policy_dir), "--task", "cook"])) == 2
    assert "unknown task" in capsys.readouterr().err


def test_cli_says_how_many_episodes_it_will_run_before_loading_anything(policy_dir, tmp_path, capsys):
    parser = argparse.ArgumentParser()
    eval_actor_cli.add_arguments(parser)
    args = ["--checkpoint", str(policy_dir), "--episodes", "1", "--max-steps", "1", "--out", str(tmp_path)]
    assert eval_actor_cli.run(parser.parse_args(args)) == 0
    err = capsys.readouterr().err
    assert "vlac actor eval: 2 task(s) x 1 episodes = 2 episodes (pick_bowl, sweep; seeds 20000-20000 for each" in err
    assert "2/2" in err  # the per-episode bar, counted over all tasks


def test_cli_checks_flags_and_checkpoint_files_before_importing_torch(tmp_path):
    (tmp_path / "ckpt").mkdir()
    code = (
        "import argparse, json, sys\n"
        "from vlac_trainer import eval_actor_cli\n"
        "parser = argparse.ArgumentParser(); eval_actor_cli.add_arguments(parser)\n"
        "rcs = [eval_actor_cli.run(parser.parse_args(argv)) for argv in json.loads(sys.argv[1])]\n"
        "print(json.dumps([rcs, sorted({'torch', 'transformers', 'mujoco'} & set(sys.modules))]))"
    )
    argvs = [["--checkpoint", str(tmp_path / "ckpt")], ["--checkpoint", "x", "--episodes", "0"]]
    done = subprocess.run([sys.executable, "-c", code, json.dumps(argvs)], capture_output=True, text=True, check=True)
    assert json.loads(done.stdout) == [[2, 2], []]
    assert "no config.json (the folder is empty)" in done.stderr
