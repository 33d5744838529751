"""Shared types, VLAC text formats, model layer and message converters of the VLAC stack (no ROS imports)."""
