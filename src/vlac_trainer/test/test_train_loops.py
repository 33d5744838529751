"""Critic SFT and actor BC loops: answer-only supervision, exact resume after a kill, CLI and export."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from piper_driver.sim.demo_format import save_episode_npz
from piper_driver.sim.rollout import EpisodeRecord
from vlac_core.config import ConfigError, from_mapping
from vlac_core.model import load_model
from vlac_trainer.offline import train_actor_cli, train_critic_cli
from vlac_trainer.offline.bc_data import batch_indices, bc_samples, discounted_returns
from vlac_trainer.offline.sft import IGNORE_INDEX, answer_batch
from vlac_trainer.offline.train_common import LoopSettings
from vlac_trainer.offline.train_loop import lr_at

#: A very small model: 32 px images at patch 8 (4 image tokens), one layer each.
TINY = {
    "image_size_px": 32,
    "patch_size_px": 8,
    "vision_hidden": 16,
    "vision_layers": 1,
    "text_hidden": 32,
    "text_layers": 1,
}


def synthetic_record(task: str, text: str, seed: int, steps: int = 12) -> EpisodeRecord:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(steps + 1, 32, 32, 3), dtype=np.uint8)
    poses = np.array([[250.0 + 3 * t, -t, 215.0 - 2 * t, 180.0, 0.0, -180.0] for t in range(steps + 1)])
    actions = np.array([[3, -1, -2, 0, 0, 0, int(t < steps // 2)] for t in range(steps)], dtype=np.int32)
    return EpisodeRecord(
        task=task,
        text=text,
        seed=seed,
        variant="expert",
        front_images=images,
        wrist_images=None,
        end_poses=poses,
        gripper_mm=np.where(np.arange(steps + 1) < steps // 2, 70.0, 0.0),
        joints_rad=np.zeros((steps + 1, 6)),
        stamps_s=0.2 * np.arange(steps + 1),
        actions=actions,
        success=True,
        success_steps=np.arange(steps + 1) == steps,
    )


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("demos")
    for seed in range(3):
        save_episode_npz(root / "npz" / f"a_{seed}.npz", synthetic_record("a", "Pick up the bowl", seed))
        save_episode_npz(root / "npz" / f"b_{seed}.npz", synthetic_record("b", "Sweep the trash", 10 + seed))
    return root


def critic_config(demo_dir: Path, work: Path, **overrides) -> train_critic_cli.CriticTrainConfig:
    values = {
        **TINY,
        "train_data": [str(demo_dir)],
        "work_dir": str(work / "work"),
        "out_dir": str(work / "model"),
        "steps": 5,
        "warmup_steps": 2,
        "checkpoint_every": 2,
        "batch_units": 2,
        "threads": 1,
        **overrides,
    }
    return from_mapping(train_critic_cli.CriticTrainConfig, values)


def actor_config(demo_dir: Path, work: Path, **overrides) -> train_actor_cli.ActorTrainConfig:
    values = {
        **TINY,
        "train_data": [str(demo_dir)],
        "work_dir": str(work / "work"),
        "out_dir": str(work / "model"),
        "steps": 5,
        "warmup_steps": 2,
        "checkpoint_every": 2,
        "batch_size": 3,
        "threads": 1,
        **overrides,
    }
    return from_mapping(train_actor_cli.ActorTrainConfig, values)


def weights(folder: Path) -> dict[str, torch.Tensor]:
    return {f"{f.name}/{k}": v for f in sorted(folder.glob("*.safetensors")) for k, v in load_file(str(f)).items()}


def assert_same_weights(a: Path, b: Path) -> None:
    wa, wb = weights(a), weights(b)
    assert sorted(wa) == sorted(wb)
    different = [k for k in wa if not torch.equal(wa[k], wb[k])]
    assert not different, f"weights differ after resume: {different[:5]}"


def test_answer_batch_supervises_only_the_answer_and_the_end_of_turn(demo_dir, tmp_path):
    from vlac_trainer.offline.train_common import prepare_base_model

    config = critic_config(demo_dir, tmp_path)
    loaded = load_model(prepare_base_model(config, tmp_path), device="cpu", dtype="fp32")
    image = np.zeros((32, 32, 3), np.uint8)
    batch = answer_batch(
        loaded, ["<image>\nsay it", "Image-1: <image>\nlonger question here"], [[image], [image]], ["-38", "1"]
    )
    tok = loaded.tokenizer
    for row, answer in enumerate(["-38", "1"]):
        supervised = batch.labels[row][batch.labels[row] != IGNORE_INDEX].tolist()
        assert tok.decode(supervised) == answer + tok.eos_token
        prompt = batch.input_ids[row][: batch.attention_mask[row].sum()].tolist()[: -len(supervised)]
        assert tok.decode(prompt) == loaded.processor.build_text(
            ["<image>\nsay it", "Image-1: <image>\nlonger question here"][row], 1
        )
    with pytest.raises(ValueError, match="answers\\[0\\]"):
        answer_batch(loaded, ["q"], [[image]], [""])


def test_lr_warms_up_then_decays_to_the_floor():
    settings = LoopSettings(steps=100, lr=1e-3, warmup_steps=10, min_lr_ratio=0.1)
    assert lr_at(0, settings) == pytest.approx(1e-4)
    assert lr_at(9, settings) == pytest.approx(1e-3)
    assert lr_at(10, settings) == pytest.approx(1e-3)
    assert lr_at(100, settings) == pytest.approx(1e-4)
    assert lr_at(40, settings) > lr_at(70, settings)


def test_critic_training_killed_and_resumed_equals_an_uninterrupted_run(demo_dir, tmp_path):
    whole = critic_config(demo_dir, tmp_path / "whole")
    result = train_critic_cli.train_critic(whole, progress=False)
    assert result.steps_done == 5 and result.resumed_from == 0

    split = critic_config(demo_dir, tmp_path / "split")
    killed = train_critic_cli.train_critic(split, progress=False, stop_after=3)
    assert killed.steps_done == 3 and not Path(split.out_dir).exists()  # not exported before the end
    resumed = train_critic_cli.train_critic(split, progress=False)
    assert resumed.resumed_from == 2  # the last checkpoint before the kill; step 3 is redone
    assert_same_weights(Path(whole.out_dir), Path(split.out_dir))
    assert (Path(split.work_dir) / "tensorboard").is_dir()


def test_resuming_with_other_settings_is_refused_naming_them(demo_dir, tmp_path):
    from vlac_core.config import ConfigError

    train_critic_cli.train_critic(critic_config(demo_dir, tmp_path), progress=False, stop_after=2)
    with pytest.raises(ConfigError, match=r"lr: 0\.0003 -> 0\.001"):
        train_critic_cli.train_critic(critic_config(demo_dir, tmp_path, lr=1e-3), progress=False)


def test_critic_training_changes_the_weights_and_lowers_the_loss(demo_dir, tmp_path):
    config = critic_config(demo_dir, tmp_path, steps=40, lr=3e-3, checkpoint_every=40)
    result = train_critic_cli.train_critic(config, progress=False)
    base = Path(config.work_dir) / "base"
    key = "model.safetensors/language_model.lm_head.weight"
    assert not torch.equal(weights(base)[key], weights(Path(config.out_dir))[key])
    assert result.last_scalars["loss"] < 3.0  # from ~ln(vocab) = 6 at the start


def test_actor_training_killed_and_resumed_equals_an_uninterrupted_run(demo_dir, tmp_path):
    whole = actor_config(demo_dir, tmp_path / "whole")
    train_actor_cli.train_actor(whole, progress=False)
    split = actor_config(demo_dir, tmp_path / "split")
    train_actor_cli.train_actor(split, progress=False, stop_after=3)
    resumed = train_actor_cli.train_actor(split, progress=False)
    assert resumed.resumed_from == 2
    assert_same_weights(Path(whole.out_dir), Path(split.out_dir))
    assert "value_head.safetensors/weight" in weights(Path(split.out_dir))


def test_cli_commands_read_the_yaml_and_export_loadable_models(demo_dir, tmp_path):
    from vlac_actor.policy import load_policy
    from vlac_actor.policy_settings import PolicySettings
    from vlac_critic.backends import TorchBackend
    from vlac_critic.critic import Critic

    yaml = tmp_path / "train.yaml"
    tiny = "\n".join(f"    {k}: {v}" for k, v in TINY.items())
    common = f"    train_data: [{demo_dir}]\n    steps: 2\n    warmup_steps: 1\n    threads: 1\n{tiny}\n"
    yaml.write_text(
        f"train_critic:\n  ros__parameters:\n{common}    out_dir: {tmp_path / 'critic'}\n"
        f"    work_dir: {tmp_path / 'cw'}\n"
        f"train_actor:\n  ros__parameters:\n{common}    out_dir: {tmp_path / 'actor'}\n"
        f"    work_dir: {tmp_path / 'aw'}\n    max_translation_mm: 80\n"
    )
    for module, overrides in ((train_critic_cli, []), (train_actor_cli, ["--set", "max_translation_mm=50"])):
        parser = argparse.ArgumentParser()
        module.add_arguments(parser)
        assert module.run(parser.parse_args(["--config", str(yaml), "--no-progress", *overrides])) == 0
    critic = Critic(TorchBackend(load_model(tmp_path / "critic", device="cpu")))
    frame = np.zeros((32, 32, 3), np.uint8)
    assert len(critic.progress("Pick up the bowl", [frame], [frame])) == 1
    policy = load_policy(tmp_path / "actor", device="cpu")  # refuses a checkpoint without a value head
    assert policy.value_head.hidden_size == TINY["text_hidden"]
    # the grammar and prompt it was trained with travel in the checkpoint (the actor and trainer read them); the
    # --set value won over the file's 80
    assert policy.settings == PolicySettings(max_translation_mm=50, image_size_px=TINY["image_size_px"])
    assert policy.grammar.limits.max_translation_mm == 50


def test_a_fine_tuned_actor_records_its_base_models_frame_size_not_the_configs(demo_dir, tmp_path):
    """image_size_px sizes a fresh tiny model only; a base_model keeps its processor's 32 px, and the exported
    policy_settings.json must say so (the sessions and benches render at the size it records)."""
    from vlac_actor.policy_settings import read_policy_settings
    from vlac_core.model.tiny import TinyModelSpec, build_tiny_model

    base = build_tiny_model(tmp_path / "base", TinyModelSpec(**TINY))
    config = actor_config(demo_dir, tmp_path, base_model=str(base), image_size_px=64, steps=1, checkpoint_every=1)
    train_actor_cli.train_actor(config, progress=False)
    assert read_policy_settings(tmp_path / "model").image_size_px == TINY["image_size_px"]


def test_a_base_resized_by_the_config_is_fine_tuned_and_exported_at_the_new_frame_size(demo_dir, tmp_path):
    """resize_base_px: the base's position embeddings interpolated to 48 px frames (vlac_core.model.resize); the
    exported critic takes 48 px frames. Without a base, or at a size the patch grid cannot take, a ConfigError."""
    from vlac_core.model.tiny import TinyModelSpec, build_tiny_model

    base = build_tiny_model(tmp_path / "base", TinyModelSpec(**TINY))
    config = critic_config(demo_dir, tmp_path, base_model=str(base), resize_base_px=48, steps=1, checkpoint_every=1)
    train_critic_cli.train_critic(config, progress=False)
    exported = load_model(tmp_path / "model", device="cpu", dtype="fp32")
    assert (exported.image_size_px, exported.image_seq_length) == (48, 9)
    with pytest.raises(ConfigError, match="resize_base_px: resizes a base_model"):
        train_critic_cli.train_critic(critic_config(demo_dir, tmp_path / "b", resize_base_px=48), progress=False)
    with pytest.raises(ConfigError, match="resize_base_px: image_size_px: 40 px is not a whole grid"):
        train_critic_cli.train_critic(
            critic_config(demo_dir, tmp_path / "c", base_model=str(base), resize_base_px=40), progress=False
        )


def test_cli_rejects_a_bad_config_naming_the_key(demo_dir, tmp_path, capsys):
    yaml = tmp_path / "bad.yaml"
    yaml.write_text(f"train_critic:\n  ros__parameters:\n    train_data: [{demo_dir}]\n    stepz: 3\n")
    parser = argparse.ArgumentParser()
    train_critic_cli.add_arguments(parser)
    assert train_critic_cli.run(parser.parse_args(["--config", str(yaml)])) == 2
    assert "stepz" in capsys.readouterr().err
    yaml.write_text(f"train_critic:\n  ros__parameters:\n    train_data: [{demo_dir}]\n")
    assert train_critic_cli.run(parser.parse_args(["--config", str(yaml), "--set", "stepz=3"])) == 2
    assert "unknown key(s) ['stepz']" in capsys.readouterr().err  # an override is checked like the file
    assert train_critic_cli.run(parser.parse_args(["--config", str(yaml), "--set", "steps"])) == 2
    assert "--set 'steps': expected key=value" in capsys.readouterr().err
    yaml.write_text(f"train_critic:\n  ros__parameters:\n    train_data: [{tmp_path / 'missing'}]\n")
    assert train_critic_cli.run(parser.parse_args(["--config", str(yaml)])) == 2
    assert "is not a directory" in capsys.readouterr().err


def test_bc_samples_hold_the_expert_action_and_a_discounted_progress_return():
    record = synthetic_record("a", "Pick up the bowl", 0, steps=4)
    samples = bc_samples(record, gamma=0.5)
    assert [s.action.as_tuple() for s in samples] == [tuple(a) for a in record.actions.tolist()]
    assert "<task> Pick up the bowl </task>" in samples[0].content and "x: 250mm" in samples[0].content
    # rewards 1/4, 1/3, 1/2, 1 (the critic label of each step); G_3 = 1, G_2 = 1/2 + 1/2, ...
    assert [s.value_target for s in samples] == pytest.approx(
        [1 / 4 + 0.5 * (1 / 3 + 0.5 * 1.0), 1 / 3 + 0.5, 1.0, 1.0]
    )
    assert discounted_returns([1.0, 1.0], 1.0).tolist() == [2.0, 1.0]


def with_object(record: EpisodeRecord, object_xy_mm=(300.0, -40.0)) -> EpisodeRecord:
    """``record`` with the moved object recorded at a fixed place (``meta["object_mm"]``, as rollout writes it)."""
    record.meta["object_mm"] = [[*object_xy_mm, 12.0]] * (record.length + 1)
    return record


@pytest.fixture(scope="module")
def object_demo_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("object_demos")
    for seed in range(3):
        record = with_object(synthetic_record("a", "Pick up the bowl", seed))  # where it is relative to the TCP
        save_episode_npz(root / "npz" / f"a_{seed}.npz", record)
    return root


def test_bc_samples_carry_the_recorded_object_relative_to_the_tool_centre_point_and_in_the_world():
    from piper_driver.sim.experts import tcp_of

    record = with_object(synthetic_record("a", "Pick up the bowl", 0, steps=4))
    samples = bc_samples(record)
    tcp_mm = [tcp_of(p) * 1000.0 for p in record.end_poses]
    np.testing.assert_allclose(
        [s.object_mm for s in samples], [(300.0 - tcp_mm[t][0], -40.0 - tcp_mm[t][1], 300.0, -40.0) for t in range(4)]
    )
    assert samples[1].object_mm[0] == pytest.approx(300.0 - 253.0)  # the flange moved 3 mm in x per step
    assert all(s.object_mm is None for s in bc_samples(synthetic_record("a", "Pick up the bowl", 0, steps=4)))
    record.meta["object_mm"] = record.meta["object_mm"][:-1]
    with pytest.raises(ValueError, match=r"object_mm has shape \(4, 3\), expected \(5, 3\)"):
        bc_samples(record)


def test_the_object_loss_trains_a_head_on_the_prompt_features_that_is_not_exported(object_demo_dir, tmp_path):
    config = actor_config(object_demo_dir, tmp_path, object_coef=1.0, steps=60, lr=3e-3, checkpoint_every=60)
    result = train_actor_cli.train_actor(config, progress=False)
    first = actor_config(object_demo_dir, tmp_path / "one", object_coef=1.0, steps=1, lr=3e-3, checkpoint_every=1)
    start = train_actor_cli.train_actor(first, progress=False)
    # the pose text says where the TCP is, so the relative target is learnable from the prompt
    assert result.last_scalars["object_mse"] < 0.2 * start.last_scalars["object_mse"]
    assert not [k for k in weights(Path(config.out_dir)) if "object" in k]  # a training aid, not part of the policy
    info = json.loads((Path(config.out_dir) / "training_info.json").read_text())
    assert info["object_samples"] == 36 and info["object_target_mean_mm"][2:] == [300.0, -40.0]


def test_the_object_loss_without_recorded_objects_is_refused_naming_the_key(demo_dir, tmp_path):
    with pytest.raises(ConfigError, match=r"object_coef 1.0: no sample of train_data .* records where the object is"):
        train_actor_cli.train_actor(actor_config(demo_dir, tmp_path, object_coef=1.0), progress=False)


def test_batches_visit_every_sample_once_per_epoch_in_a_seeded_order():
    order = [i for step in range(4) for i in batch_indices(step, 5, 10, seed=1)]
    assert sorted(order[:10]) == list(range(10)) and sorted(order[10:]) == list(range(10))
    assert order[:10] != order[10:]  # a new permutation each epoch
    assert batch_indices(3, 5, 10, seed=1) == batch_indices(3, 5, 10, seed=1)
    assert batch_indices(0, 5, 10, seed=1) != batch_indices(0, 5, 10, seed=2)
