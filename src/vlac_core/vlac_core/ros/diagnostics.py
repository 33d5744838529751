"""Publishing a node's health on /diagnostics: the array, its stamp and its QoS, written once.

Every node of the graph reports one ``DiagnosticStatus`` per period; what goes into the status is
the node's business, the envelope around it is the same everywhere, so it lives here.
"""

from __future__ import annotations

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus

#: /diagnostics (every node -> aggregators, rqt): keep a few reports queued, drop the oldest.
DIAGNOSTICS_TOPIC, DIAGNOSTICS_QOS = "/diagnostics", 10


def diagnostics_publisher(node):
    """The plain (non-lifecycle) publisher of ``node``'s reports."""
    return node.create_publisher(DiagnosticArray, DIAGNOSTICS_TOPIC, DIAGNOSTICS_QOS)


def publish_diagnostics(node, publisher, status: DiagnosticStatus) -> None:
    """Publish ``status`` as a one-status DiagnosticArray stamped with ``node``'s ROS clock."""
    array = DiagnosticArray(status=[status])
    array.header.stamp = node.get_clock().now().to_msg()
    publisher.publish(array)
