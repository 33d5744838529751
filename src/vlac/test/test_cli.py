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
