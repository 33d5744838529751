"""The `vlac` command routes to the modules that own each command."""

import importlib
import subprocess
import sys

import pytest

from vlac.cli import COMMANDS, build_parser, main


@pytest.mark.parametrize("words", sorted(COMMANDS))
def test_every_registered_command_module_has_the_cli_contract(words):
    module = importlib.import_module(COMMANDS[words][0])
    assert callable(module.add_arguments) and callable(module.run)


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
