"""ROS 2 shell: nodes and wiring only; all logic lives in the parent package."""
