"""The critic, built once for both runtimes: the critic node and the embedded session call this.

Both serve one ``BatchingCritic`` (``vlac_critic.batching``) over the model, so the arms' concurrent
requests are scored in shared batches whichever runtime carries them.
"""

from __future__ import annotations

from vlac_core.checkpoint_dir import require_checkpoint_dir

from .batching import BatchingCritic
from .config import CriticConfig


def check_critic_checkpoint(cfg: CriticConfig) -> None:
    """ConfigError naming ``critic_node.checkpoint`` and the path when the folder is missing (before loading)."""
    require_checkpoint_dir(cfg.checkpoint, "critic_node.checkpoint")


def build_critic(cfg: CriticConfig):
    """The configured model in its backend, as a ``vlac_critic.Critic`` (loads weights: seconds to minutes)."""
    from .backends import make_backend
    from .critic import Critic

    check_critic_checkpoint(cfg)
    device = None if cfg.device == "auto" else cfg.device
    dtype = None if cfg.dtype == "auto" else cfg.dtype
    if cfg.own_process:
        import torch

        from .process_backend import ProcessBackend

        # the child uses as many intra-op threads as the caller was set to (session.torch_threads)
        backend = ProcessBackend(cfg.checkpoint, device, dtype, torch_threads=torch.get_num_threads())
    else:
        backend = make_backend(cfg.backend, cfg.checkpoint, device=device, dtype=dtype)
    return Critic(backend, cfg.batch_size, cfg.max_new_tokens)


def build_shared_critic(cfg: CriticConfig, reference=None) -> BatchingCritic:
    """The critic every caller shares: concurrent requests batched; ``close()`` it when done."""
    return BatchingCritic(build_critic(cfg), reference=reference)
