"""Online PPO: the trainer that learns from the arms' episodes while they run (the trainer node, the
embedded session's trainer thread): losses, the update, GAE, buffers, the asynchronous trainer, policy
publishing, the per-update log, its config and its builder."""
