"""VLAC critic: pair-wise progress and done scoring, trajectory evaluation (VOC, VROC, VOC-F1, NR), critic node."""
