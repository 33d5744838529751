"""The checkpoint-folder check every node and the session run before loading a model."""

import pytest

from vlac_core.checkpoint_dir import require_checkpoint_dir
from vlac_core.config import ConfigError


def test_a_folder_passes_and_anything_else_names_the_key_and_the_path(tmp_path):
    assert require_checkpoint_dir(str(tmp_path), "actor.checkpoint_path") == tmp_path
    with pytest.raises(ConfigError, match=r"actor.checkpoint_path: checkpoint '.*nowhere' does not exist \(looked"):
        require_checkpoint_dir(tmp_path / "nowhere", "actor.checkpoint_path")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="is not a folder"):
        require_checkpoint_dir(tmp_path / "file", "critic.checkpoint")
    with pytest.raises(ConfigError, match=r"critic\.checkpoint: empty"):
        require_checkpoint_dir("  ", "critic.checkpoint")
