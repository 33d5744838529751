"""The episode manager's core: one episode loop written against small interfaces, and the
human-in-the-loop pieces around it (return-and-explore, intervention tracking, evaluation).

No ROS here: the ROS node and the embedded `vlac session` both supply implementations of the
Protocols in ``interfaces`` and drive the same ``EpisodeLoop``.
"""
