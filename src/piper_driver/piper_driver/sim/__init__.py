"""MuJoCo simulation of the PiPER and of the VLAC paper's tasks (no ROS).

``SimBackend`` is a ``RobotBackend`` like the real arm; tasks give scenes, seeded initial
states and ground-truth success; experts script demonstrations and failures. mujoco is
imported lazily (after the headless GL backend is chosen), so importing this package is cheap.
"""
