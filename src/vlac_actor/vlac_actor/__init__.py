"""VLAC actor: structured action decoding with log-probs, value head, replica pool, actor node."""
