"""Docstrings that must not go stale: the CLI's module map; the two ``Conv2d`` classes point
at each other."""
from __future__ import annotations

import re
from pathlib import Path

import devices
import hwsim
import hwsim.cli as cli


def _module_commands() -> dict[str, list[str]]:
    """``{module: [command, ...]}`` from the docstring's ``(``_module``: command, ...; ...)`` list."""
    return {m: [c.strip() for c in cmds.split(",")]
            for m, cmds in re.findall(r"``(_\w+)``: ([a-z, ]+)[;)]", cli.__doc__)}


def test_docstring_names_every_cli_module():
    modules = sorted(p.stem for p in Path(cli.__file__).parent.glob("_cli_*.py"))
    assert "_cli_run" in modules and "_cli_common" in modules
    missing = [m for m in modules if f"``{m}``" not in cli.__doc__]
    assert not missing, f"hwsim/cli.py's docstring does not name {missing}"


def test_docstring_says_which_module_runs_each_command():
    listed = _module_commands()
    commands = [c for cmds in listed.values() for c in cmds]
    assert sorted(commands) == sorted(cli.build_parser().commands)
    for module, cmds in listed.items():
        for command in cmds:
            assert cli._handler(command).__module__ == f"hwsim.{module}", (command, module)


def test_each_conv2d_says_which_it_is_and_names_the_other():
    assert hwsim.Conv2d is not devices.Conv2d
    assert "``hwsim.Conv2d``" in hwsim.Conv2d.__doc__ and "``devices.Conv2d``" in hwsim.Conv2d.__doc__
    assert "``devices.Conv2d``" in devices.Conv2d.__doc__ and "``hwsim.Conv2d``" in devices.Conv2d.__doc__
