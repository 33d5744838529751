"""The one way every node of the stack is started, spun and shut down.

Each node's ``main`` differs only in the node class, the executor size and whether a
lifecycle node brings itself up (``autostart``: no lifecycle manager in the launch);
the init / spin / Ctrl-C / shutdown sequence lives here once, and so does the bound on
how long a node may take to exit once it is shut down.
"""

from __future__ import annotations

import faulthandler
import os
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import rclpy
from rclpy.executors import Executor, ExternalShutdownException, MultiThreadedExecutor, SingleThreadedExecutor
from rclpy.impl.implementation_singleton import rclpy_implementation
from rclpy.node import Node

RCLError = rclpy_implementation.RCLError  # rclpy's C-extension error (rcl calls that fail)

#: longest wait, once the node is destroyed, for callbacks still running on the executor's threads, s
EXIT_WAIT_S = 10.0
#: exit status of a node whose callbacks were still running EXIT_WAIT_S after it was destroyed
EXIT_STUCK = 3


def run_node(
    make_node: Callable[[], Node],
    args: list[str] | None = None,
    *,
    threads: int | Callable[[Node], int] | None = 1,
    autostart_lifecycle: bool = False,
    exit_wait_s: float = EXIT_WAIT_S,
) -> None:
    """Create the node, spin it until Ctrl-C or shutdown, then destroy it and shut rclpy down.

    ``threads`` > 1 (or a function of the node, for sizes read from its parameters) uses a
    MultiThreadedExecutor so re-entrant callback groups run concurrently; None sizes it like
    rclpy's default (one thread per CPU). With
    ``autostart_lifecycle`` a lifecycle node whose ``config.autostart`` is set configures and
    activates itself before spinning. A callback that has not returned ``exit_wait_s`` after the
    node was destroyed ends the process with status ``EXIT_STUCK`` and every thread's stack on
    stderr (``join_callback_threads``), instead of holding it forever.
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
    except RCLError:
        # Ctrl-C between the executor's shutdown check and its next wait set: rclpy raises the wait set's "context
        # is not valid" instead of ExternalShutdownException. A shutdown all the same; any other RCLError is not.
        if node.context.ok():
            raise
    finally:
        name = node.get_fully_qualified_name()
        node.destroy_node()
        rclpy.try_shutdown()
        stuck = join_callback_threads(executor, exit_wait_s)
        if stuck:
            print(
                f"{name}: callbacks still running {exit_wait_s:g} s after the node was destroyed, on "
                f"{', '.join(stuck)}: exiting with status {EXIT_STUCK}; every thread's stack follows",
                file=sys.stderr,
                flush=True,
            )
            faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
            sys.stdout.flush()
            os._exit(EXIT_STUCK)  # sys.exit would join the stuck thread at interpreter exit, forever


def join_callback_threads(executor: Executor, timeout_s: float) -> list[str]:
    """Stop the executor's worker threads and wait up to ``timeout_s`` for every non-daemon thread; the
    names of those still running.

    Why: rclpy's MultiThreadedExecutor runs callbacks on a ``ThreadPoolExecutor`` it never shuts down,
    and Python joins every such worker at interpreter exit without a time limit, so one callback that
    never returns keeps a Ctrl-C'd node alive forever and nothing says which callback it is.
    """
    executor.shutdown(timeout_sec=0)
    pool = getattr(executor, "_executor", None)  # MultiThreadedExecutor's worker pool (rclpy, Humble to Rolling)
    if isinstance(pool, ThreadPoolExecutor):
        pool.shutdown(wait=False)  # idle workers leave now, busy ones once their callback returns
    deadline = time.monotonic() + timeout_s
    stuck = []
    for thread in threading.enumerate():
        if thread is threading.current_thread() or thread.daemon:
            continue
        thread.join(max(0.0, deadline - time.monotonic()))
        if thread.is_alive():
            stuck.append(thread.name)
    return stuck
