"""VLAC actor: structured action decoding with log-probs, value head, replica pool, actor node.

Modules (ROS-free; the node is in ``ros/``):
  grammar      the action template as a token automaton derived from the tokenizer (ranges, canonical ids)
  constrained  the policy's constrained distribution at a decision (shared by sampling and scoring)
  decoding     batched structured decoding over the KV cache -> DecodedAction
  scoring      teacher-forced re-scoring for PPO (log-probs, entropies, values; optionally with grad)
  value_head   linear value head on the final hidden state, value_head.safetensors
  policy       load/save a policy checkpoint (model + value head + grammar, with its version)
  inputs       observation -> release actor prompt (+ optional history) and the checks on bad input
  request      ActorRequest / ActorResult
  backend      backend protocol and the torch backend; vllm_backend: optional vLLM backend
  pool         replica pool: FIFO dispatch to idle replicas, queue-wait measurement, version swaps
  lockstep     LockstepActor: K arms stepping together decoded in one batch per step (``vlac actor eval``)
  history      per-robot action history for the optional history prompt
  config       ActorConfig (node parameters / session section ``actor``)
  service      ActorService: what the node and the embedded session drive
"""
