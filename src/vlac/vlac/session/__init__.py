"""The embedded runtime (``vlac session``): the whole RL loop in one process, no ROS.

Only what that command uses: the runner (``runtime``) and its command line (``cli``), the episode
loop's adapters for simulated arms and the in-process actor (``adapters``), demonstrations and the
scripted operator (``demos``), the output folder's lock and crash recovery (``outdir_lock``,
``outdir_recovery``) and the success plot and summary (``report``). SIGINT/SIGTERM/SIGHUP handling is
``vlac.stop_signals`` (``vlac.cli`` installs it for every command; the runner nests its own). The episode machinery both
runtimes share (loop, manager, bag sink, teleoperation, one arm's wiring) is in ``vlac.episode``;
the parameter file both read is ``vlac.param_file``.
"""
