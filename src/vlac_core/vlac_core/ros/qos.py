"""QoS profiles of the topics whose publisher and subscribers live in different nodes: declared once.

A publisher and a subscription match only when their profiles are compatible (a transient-local
subscription ignores a volatile publisher), so both ends import the profile from here.
"""

from __future__ import annotations

from rclpy.qos import QoSDurabilityPolicy, QoSProfile, QoSReliabilityPolicy

#: /policy_version (trainer -> actor nodes): the latest announcement stays for late joiners, so an
#: actor that starts after the trainer, or a trainer that restarts, converge on the trainer's version.
POLICY_VERSION_QOS = QoSProfile(
    depth=1, reliability=QoSReliabilityPolicy.RELIABLE, durability=QoSDurabilityPolicy.TRANSIENT_LOCAL
)

#: /episodes (episode managers -> trainer): every finished episode, none dropped while the trainer is busy.
EPISODES_QOS = QoSProfile(depth=100, reliability=QoSReliabilityPolicy.RELIABLE, durability=QoSDurabilityPolicy.VOLATILE)

#: /trainer_backlog (trainer -> episode managers): the latest backlog stays for late joiners, so an arm that
#: starts or restarts while a batch waits holds back at once.
TRAINER_BACKLOG_QOS = QoSProfile(
    depth=1, reliability=QoSReliabilityPolicy.RELIABLE, durability=QoSDurabilityPolicy.TRANSIENT_LOCAL
)
