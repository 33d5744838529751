"""VLAC trainer: critic, behaviour-cloning and PPO training loops, buffers and checkpoints, trainer node."""
