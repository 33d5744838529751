"""The episode manager's core, shared by both runtimes (the episode manager node and the embedded
``vlac session``); no ROS here.

- ``interfaces``: the Protocols the loop is written against (robot, actor, critic, sink, operator);
  ``loop``: ``EpisodeLoop``, one episode step by step; ``reward_source``: critic or sim ground truth.
- ``manager``: ``EpisodeManager``, one arm's episodes around the loop (goals, cancel, feedback,
  rolling success); ``arm_wiring``: how both runtimes build one arm's loop, manager, store and seeds.
- ``recording``: ``BagSink`` (every episode to its own bag before the listeners hear of it) and
  ``EpisodeIndex`` (one JSON line per finished episode).
- Human in the loop: ``return_explore`` (kept failed start states), ``intervention`` (takeover rate),
  ``teleop`` (joystick / twist input -> actions, the loop's ``Operator``); ``evaluation``: greedy trials
  (on one arm, or start states shared out to parallel arms: ``vlac actor eval``).
- ``observation_assembly``: an Observation from the latest topic values (the ROS node's robot adapter).

Each runtime supplies its own implementations of the Protocols: ``vlac.ros.adapters`` (topics and
services) or ``vlac.session.adapters`` (simulated arms, in-process actor and critic).
"""
