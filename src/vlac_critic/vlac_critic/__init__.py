"""VLAC critic: pair-wise progress and done scoring, trajectory evaluation (VOC, VROC, VOC-F1, NR), critic node.

Typical use (torch and transformers are imported only when a backend is made)::

    from vlac_critic import Critic, make_backend

    critic = Critic(make_backend("torch", "/models/vlac-2b-hf"), batch_size=16)
    scores = critic.progress("open the drawer", earlier_frames, later_frames)   # ProgressScore per pair
    done = critic.done("open the drawer", [latest_frame])                      # DoneScore per image
"""

from .backends import BackendUnavailableError, TorchBackend, make_backend
from .critic import Critic, CriticInputError, CriticStats, DoneScore, ProgressScore, reference_from_trajectory

__all__ = [
    "BackendUnavailableError",
    "Critic",
    "CriticInputError",
    "CriticStats",
    "DoneScore",
    "ProgressScore",
    "TorchBackend",
    "make_backend",
    "reference_from_trajectory",
]
