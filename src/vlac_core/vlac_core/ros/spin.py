"""The one way every node of the stack is started, spun and shut down.

Each node's ``main`` differs only in the node class, the executor size and whether a
lifecycle node brings itself up (``autostart``: no lifecycle manager in the launch);
the init / spin / Ctrl-C / shutdown sequence lives here once.
"""

from __future__ import annotations

from collections.abc import Callable

import rclpy
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor, SingleThreadedExecutor
from rclpy.node import Node


def run_node(
    make_node: Callable[[], Node],
    args: list[str] | None = None,
    *,
    threads: int | Callable[[Node], int] | None = 1,
    autostart_lifecycle: bool = False,
) -> None:
    """Create the node, spin it until Ctrl-C or shutdown, then destroy it and shut rclpy down.

    ``threads`` > 1 (or a function of the node, for sizes read from its parameters) uses a
    MultiThreadedExecutor so re-entrant callback groups run concurrently; None sizes it like
    rclpy's default (one thread per CPU). With
    ``autostart_lifecycle`` a lifecycle node whose ``config.autostart`` is set configures and
    activates itself before spinning.
    """
    rclpy.init(args=args)
    node = make_node()
    n_threads = threads(node) if callable(threads) else threads
    if n_threads is None:
        executor = MultiThreadedExecutor()
    elif n_threads > 1:
        executor = MultiThreadedExecutor(num_threads=n_threads)
    else:
        executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        if autostart_lifecycle and node.config.autostart:
            node.trigger_configure()
            node.trigger_activate()
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
