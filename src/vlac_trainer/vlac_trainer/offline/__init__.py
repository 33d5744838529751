"""Offline supervised training from recorded episodes: the critic recipe (`vlac train critic`),
behaviour cloning of the actor prior (`vlac train actor`), labelled rollouts for the critic and DAgger
labels for the actor, and the training loop they share."""
