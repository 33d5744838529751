"""The `vlac` command routes to the modules that own each command."""

import subprocess
import sys
import types

import pytest

from vlac.cli import COMMANDS, build_parser, command_object, main


@pytest.mark.parametrize("words", sorted(COMMANDS))
def test_every_registered_command_module_has_the_cli_contract(words):
    command = command_object(COMMANDS[words][0])
    assert callable(command.add_arguments) and callable(command.run)


@pytest.mark.parametrize("words", sorted(COMMANDS))
def test_every_command_parses_its_help(words, capsys):
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args([*words, "--help"])
    assert info.value.code == 0
    assert COMMANDS[words][1].split(":")[0] in capsys.readouterr().out


def test_no_command_prints_help_and_fails(capsys):
    assert main([]) == 2
    assert "usage: vlac" in capsys.readouterr().out


def test_unknown_command_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit) as info:
        main(["teleport"])
    assert info.value.code == 2
    assert "invalid choice: 'teleport'" in capsys.readouterr().err


def test_building_the_parser_imports_no_torch_or_mujoco():
    # Command modules keep heavy imports inside run(): `vlac --help` must stay fast.
    code = "import sys, vlac.cli; vlac.cli.build_parser(); print(sorted({'torch', 'mujoco'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


class _Exploding:
    """A command whose run raises what a library would raise on bad data."""

    @staticmethod
    def add_arguments(parser):
        parser.add_argument("--what", default="value")

    @staticmethod
    def run(args):
        raise ValueError(f"/data/x.bin: broken\n  on two lines ({args.what})")


@pytest.fixture()
def exploding(monkeypatch):
    # Registered under a name of its own: test modules of several packages may share a file name.
    monkeypatch.setitem(sys.modules, "vlac_cli_test_commands", types.SimpleNamespace(exploding=_Exploding))
    monkeypatch.setitem(COMMANDS, ("explode",), ("vlac_cli_test_commands:exploding", "raises"))


def test_an_escaping_exception_is_one_line_with_status_1(exploding, capsys):
    assert main(["explode"]) == 1
    err = capsys.readouterr().err
    assert (
        err
        == "vlac explode: error: ValueError: /data/x.bin: broken on two lines (value) (--debug shows the traceback)\n"
    )


@pytest.mark.parametrize("argv", [["--debug", "explode"], ["explode", "--debug"]])
def test_debug_before_or_after_the_command_shows_the_traceback(exploding, argv):
    with pytest.raises(ValueError, match="broken"):
        main(argv)


def test_project_errors_are_shown_by_their_message_alone():
    from vlac.cli import one_line
    from vlac_core.config import ConfigError

    assert one_line(ConfigError("a.yaml: bad")) == "a.yaml: bad"
    assert one_line(FileNotFoundError(2, "No such file or directory", "a.yaml")).endswith("'a.yaml'")
    assert one_line(KeyError("x")) == "KeyError: 'x'"


class _ResumeTrainer:
    """A command that loads a trainer checkpoint, as a resumed session does."""

    @staticmethod
    def add_arguments(parser):
        parser.add_argument("root")

    @staticmethod
    def run(args):
        from vlac_trainer.checkpoint_store import load_checkpoint

        load_checkpoint(args.root)
        return 0


def test_trainer_checkpoint_with_a_wrong_sha256_is_one_line_naming_the_file(monkeypatch, tmp_path, capsys):
    import numpy as np

    from vlac_trainer.checkpoint_store import ARRAYS_FILE, save_checkpoint

    save_checkpoint(tmp_path, {"w": np.zeros(4, np.float32)}, {"step": 1})
    (arrays,) = tmp_path.glob(f"gen-*/{ARRAYS_FILE}")
    data = bytearray(arrays.read_bytes())
    data[-1] ^= 0x01  # one flipped bit in the tensor bytes: only the checksum can tell
    arrays.write_bytes(bytes(data))
    monkeypatch.setitem(sys.modules, "vlac_cli_test_commands", types.SimpleNamespace(resume=_ResumeTrainer))
    monkeypatch.setitem(COMMANDS, ("resume",), ("vlac_cli_test_commands:resume", "loads a trainer checkpoint"))
    assert main(["resume", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("vlac resume: error: ") and f"{arrays}: sha256 " in err and "does not match" in err


def _console(body: str) -> subprocess.CompletedProcess:
    """``vlac.cli.console_main()`` in a fresh interpreter, with ``main`` replaced by ``body``'s ``fake_main``."""
    code = f"import os, signal, time, atexit, vlac.cli\n{body}\nvlac.cli.main = fake_main\nvlac.cli.console_main()\n"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(("sig", "status"), [("SIGTERM", 143), ("SIGHUP", 129), ("SIGINT", 130)])
def test_the_vlac_program_stops_on_sigterm_and_sighup_like_ctrl_c_with_128_plus_the_signal(sig, status):
    done = _console(f"def fake_main():\n    os.kill(os.getpid(), signal.{sig})\n    time.sleep(60)\n    return 0")
    assert done.returncode == status, done.stderr


def test_a_stop_signal_during_the_interpreters_exit_does_not_fail_a_finished_command():
    # The command returned 0 with its work written; SIGTERM while the interpreter shuts down (here from an
    # atexit hook; in a session, torch and EGL teardown take seconds) must not turn that into a death by signal.
    # Past Python's own signal teardown only SIG_IGN (not a Python handler) keeps the default (death) away.
    hook = (
        "def at_exit():\n"
        "    print(signal.getsignal(signal.SIGTERM) == signal.SIG_IGN, flush=True)\n"
        "    os.kill(os.getpid(), signal.SIGTERM)"
    )
    done = _console(f"{hook}\ndef fake_main():\n    atexit.register(at_exit)\n    return 0")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True" and "Traceback" not in done.stderr


def test_a_command_interrupted_by_sigterm_reports_143(monkeypatch, capsys):
    class Stopped:
        def add_arguments(self, parser):
            parser.add_argument("bag")

        def run(self, args):
            raise KeyboardInterrupt("SIGTERM")  # what StopSignals raises for SIGTERM (test_session_recovery)

    monkeypatch.setattr("vlac.cli.command_object", lambda target: Stopped())
    assert main(["bag", "info", "x"]) == 143
    assert "interrupted" in capsys.readouterr().err
