"""The embedded runtime (``vlac session``): the episode loop's adapters for simulated arms, the
actor pool and the critic, the bag-recording sink, human-in-the-loop helpers (teleop mapping,
demo loading, scripted operator), the session runner, and its plots and summary. No ROS here.
"""
