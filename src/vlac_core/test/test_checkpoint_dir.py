"""The checkpoint-folder check every node and the session run before loading a model."""

import pytest

from vlac_core.checkpoint_dir import require_checkpoint_dir
from vlac_core.config import ConfigError
from vlac_core.model import DamagedCheckpointError, ModelLoadError, TinyModelSpec, build_tiny_model


def test_a_checkpoint_passes_and_anything_else_names_the_key_and_the_path(tmp_path):
    model = build_tiny_model(tmp_path / "model", TinyModelSpec(seed=0))
    assert require_checkpoint_dir(str(model), "actor.checkpoint_path") == model
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelLoadError, match=r"^critic\.checkpoint: checkpoint '.*empty': no config\.json"):
        require_checkpoint_dir(tmp_path / "empty", "critic.checkpoint")
    with pytest.raises(ConfigError, match=r"actor.checkpoint_path: checkpoint '.*nowhere' does not exist \(looked"):
        require_checkpoint_dir(tmp_path / "nowhere", "actor.checkpoint_path")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="is not a folder"):
        require_checkpoint_dir(tmp_path / "file", "critic.checkpoint")
    with pytest.raises(ConfigError, match=r"critic\.checkpoint: empty"):
        require_checkpoint_dir("  ", "critic.checkpoint")


def test_damaged_weights_stay_a_damaged_checkpoint_error_so_commands_exit_1_not_2(tmp_path):
    model = build_tiny_model(tmp_path / "model", TinyModelSpec(seed=0))
    weights = next(model.glob("*.safetensors"))
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(DamagedCheckpointError, match=rf"^actor\.checkpoint_path: .*{weights.name}"):
        require_checkpoint_dir(model, "actor.checkpoint_path")
