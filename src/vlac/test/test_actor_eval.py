"""`vlac actor eval`: one outcome per seed, bounded episodes, batched arms, clear errors; every episode an
EpisodeLoop episode on the session's simulated arm (safety envelope, ground-truth success rule)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys

import pytest

from piper_driver.safety import SafetyEnvelope
from piper_driver.sim.backend import SimBackend
from vlac import actor_eval_cli
from vlac.actor_eval import evaluate_policy_on_task
from vlac_actor.lockstep import LockstepActor
from vlac_actor.policy import load_policy
from vlac_core.model import TinyModelSpec, build_tiny_model


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


def test_the_arms_decode_one_batch_per_step(policy_dir, monkeypatch):
    actors = []
    init = LockstepActor.__init__
    monkeypatch.setattr(LockstepActor, "__init__", lambda self, *a, **k: (actors.append(self), init(self, *a, **k))[1])
    policy = load_policy(policy_dir, device="cpu")
    result = evaluate_policy_on_task(policy, "sweep", [0, 1, 2, 3], max_steps=2, parallel=3, image_size_px=32)
    assert [o.steps for o in result.outcomes] == [2, 2, 2, 2]
    (actor,) = actors
    assert actor.batches == [3, 3, 1, 1]  # three arms in lock step, then the fourth seed's arm alone


def test_every_action_passes_the_safety_envelope_and_a_refused_one_fails_its_episode(policy_dir, monkeypatch):
    checks = []
    check = SafetyEnvelope.check

    def refuse_each_arms_second_action(self, current, action, obs_stamp_s, now_s, gripper_mm=None):
        checks.append(self)
        if checks.count(self) == 2:
            return self._reject_counted("test", "the second action is refused")
        return check(self, current, action, obs_stamp_s, now_s, gripper_mm)

    monkeypatch.setattr(SafetyEnvelope, "check", refuse_each_arms_second_action)
    policy = load_policy(policy_dir, device="cpu")
    result = evaluate_policy_on_task(policy, "sweep", [7, 8], max_steps=3, parallel=1, image_size_px=32)
    first, second = result.outcomes
    assert (first.success, first.steps) == (False, 1)
    assert first.error.startswith("step 1: robot: MotionRefused: safety envelope rejected the action (test)")
    assert (second.success, second.steps, second.error) == (False, 3, "")
    assert len(checks) == 1 + 1 + 3  # every action the policy chose was checked by the arm's envelope
    assert result.summary()["refused_motions"] == 1


def test_an_episode_ends_at_ground_truth_success(policy_dir, monkeypatch):
    truth, move_to, reset = SimBackend.truth, SimBackend.move_to, SimBackend.reset
    moves: dict[int, int] = {}  # per simulated arm, since its last reset

    def counted_move_to(self, target, gripper_mm):
        moves[id(self)] = moves.get(id(self), 0) + 1
        return move_to(self, target, gripper_mm)

    def counted_reset(self, *args, **kwargs):
        moves[id(self)] = 0
        return reset(self, *args, **kwargs)

    monkeypatch.setattr(SimBackend, "move_to", counted_move_to)
    monkeypatch.setattr(SimBackend, "reset", counted_reset)
    monkeypatch.setattr(SimBackend, "truth", lambda self: dataclasses.replace(truth(self), success=moves[id(self)] > 1))
    monkeypatch.setattr(SimBackend, "success", lambda self: self.truth().success)
    policy = load_policy(policy_dir, device="cpu")
    result = evaluate_policy_on_task(policy, "sweep", [5, 6], max_steps=6, parallel=2, image_size_px=32)
    assert [(o.success, o.steps) for o in result.outcomes] == [(True, 2), (True, 2)]
    assert result.success_rate == 1.0 and result.summary()["mean_steps_to_success"] == 2


def test_no_seeds_is_an_error(policy_dir):
    policy = load_policy(policy_dir, device="cpu")
    with pytest.raises(ValueError, match="seeds"):
        evaluate_policy_on_task(policy, "sweep", [], image_size_px=32)


def test_cli_writes_results_and_refuses_unknown_tasks(policy_dir, tmp_path, capsys):
    parser = argparse.ArgumentParser()
    actor_eval_cli.add_arguments(parser)
    out = tmp_path / "eval"
    args = ["--checkpoint", str(policy_dir), "--task", "pick_bowl", "--episodes", "2", "--max-steps", "1"]
    assert actor_eval_cli.run(parser.parse_args([*args, "--out", str(out), "--no-progress"])) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["tasks"][0]["episodes"] == 2 and results["seeds"] == [20000, 20001]
    assert (out / "actor_success.png").is_file()
    assert actor_eval_cli.run(parser.parse_args(["--checkpoint", str(policy_dir), "--task", "cook"])) == 2
    assert "unknown task" in capsys.readouterr().err


def test_cli_repeats_each_scene_when_sampling_and_refuses_greedy_repeats(policy_dir, tmp_path, capsys):
    parser = argparse.ArgumentParser()
    actor_eval_cli.add_arguments(parser)
    base = ["--checkpoint", str(policy_dir), "--task", "sweep", "--episodes", "2", "--max-steps", "1", "--no-progress"]
    out = tmp_path / "eval"
    assert actor_eval_cli.run(parser.parse_args([*base, "--sample", "--repeats", "3", "--out", str(out)])) == 0
    assert "1 task(s) x 2 seeds x 3 repeats = 6 episodes (sweep; seeds 20000-20001" in capsys.readouterr().err
    results = json.loads((out / "results.json").read_text())
    assert results["repeats"] == 3 and results["decoding"] == "sample"
    assert [o["seed"] for o in results["tasks"][0]["outcomes"]] == [20000] * 3 + [20001] * 3
    assert actor_eval_cli.run(parser.parse_args([*base, "--repeats", "2", "--out", str(out)])) == 2
    assert "--repeats 2 without --sample" in capsys.readouterr().err
    assert actor_eval_cli.run(parser.parse_args([*base, "--sample", "--repeats", "0", "--out", str(out)])) == 2
    assert "--repeats 0: must be >= 1" in capsys.readouterr().err


def test_cli_draws_with_the_sample_seed_given_and_records_it(policy_dir, tmp_path, capsys, monkeypatch):
    import vlac.actor_eval

    drawn_with = []
    real = vlac.actor_eval.evaluate_policy_on_task

    def spy(*args, **kwargs):
        drawn_with.append(kwargs["sample_seed"])
        return real(*args, **kwargs)

    monkeypatch.setattr(vlac.actor_eval, "evaluate_policy_on_task", spy)
    parser = argparse.ArgumentParser()
    actor_eval_cli.add_arguments(parser)
    base = ["--checkpoint", str(policy_dir), "--task", "sweep", "--episodes", "1", "--max-steps", "1", "--no-progress"]
    for extra, recorded in ((["--sample-seed", "7"], 7), ([], 0)):
        out = tmp_path / f"eval{recorded}"
        assert actor_eval_cli.run(parser.parse_args([*base, "--sample", *extra, "--out", str(out)])) == 0
        assert json.loads((out / "results.json").read_text())["sample_seed"] == recorded
    assert drawn_with == [7, 0]
    greedy = tmp_path / "greedy"
    assert actor_eval_cli.run(parser.parse_args([*base, "--out", str(greedy)])) == 0
    assert "sample_seed" not in json.loads((greedy / "results.json").read_text())
    assert actor_eval_cli.run(parser.parse_args([*base, "--sample-seed", "3", "--out", str(greedy)])) == 2
    assert "--sample-seed 3 without --sample" in capsys.readouterr().err


def test_cli_says_how_many_episodes_it_will_run_before_loading_anything(policy_dir, tmp_path, capsys):
    parser = argparse.ArgumentParser()
    actor_eval_cli.add_arguments(parser)
    args = ["--checkpoint", str(policy_dir), "--episodes", "1", "--max-steps", "1", "--out", str(tmp_path)]
    assert actor_eval_cli.run(parser.parse_args(args)) == 0
    err = capsys.readouterr().err
    assert "vlac actor eval: 2 task(s) x 1 episodes = 2 episodes (pick_bowl, sweep; seeds 20000-20000 for each" in err
    assert "2/2" in err  # the per-episode bar, counted over all tasks


def test_cli_checks_flags_and_checkpoint_files_before_importing_torch(tmp_path):
    (tmp_path / "ckpt").mkdir()
    code = (
        "import argparse, json, sys\n"
        "from vlac import actor_eval_cli\n"
        "parser = argparse.ArgumentParser(); actor_eval_cli.add_arguments(parser)\n"
        "rcs = [actor_eval_cli.run(parser.parse_args(argv)) for argv in json.loads(sys.argv[1])]\n"
        "print(json.dumps([rcs, sorted({'torch', 'transformers', 'mujoco'} & set(sys.modules))]))"
    )
    argvs = [["--checkpoint", str(tmp_path / "ckpt")], ["--checkpoint", "x", "--episodes", "0"]]
    done = subprocess.run([sys.executable, "-c", code, json.dumps(argvs)], capture_output=True, text=True, check=True)
    assert json.loads(done.stdout) == [[2, 2], []]
    assert "no config.json (the folder is empty)" in done.stderr
