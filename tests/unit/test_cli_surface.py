"""The ``leadflow`` command's surface: --version, help on every flag, a taken port named with PORT=."""

from __future__ import annotations

import argparse
import socket
import warnings

import pytest

from leadflow import __version__
from leadflow.dev.cli import build_parser, port_in_use, quiet_known_warnings

pytestmark = pytest.mark.unit


def _parsers(parser: argparse.ArgumentParser, path: str = "leadflow") -> list[tuple[str, argparse.ArgumentParser]]:
    found = [(path, parser)]
    for action in parser._actions:  # argparse exposes no public walk of sub-commands
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found += _parsers(sub, f"{path} {name}")
    return found


def test_version(capsys):
    with pytest.raises(SystemExit) as stopped:
        build_parser().parse_args(["--version"])
    assert stopped.value.code == 0
    assert capsys.readouterr().out == f"leadflow {__version__}\n"


def test_every_flag_and_argument_of_every_command_has_help():
    missing = [
        f"{path} {action.option_strings[0] if action.option_strings else action.dest}"
        for path, parser in _parsers(build_parser())
        for action in parser._actions
        if not isinstance(action, argparse._SubParsersAction) and not action.help
    ]
    assert missing == []


def test_a_taken_port_is_named_with_the_make_variable():
    # GIVEN something listening on a port
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        # WHEN leadflow dev would start there THEN it stops, naming PORT= and --port
        with pytest.raises(SystemExit) as stopped:
            port_in_use("127.0.0.1", port)
    message = str(stopped.value.code)
    assert f"port {port} is in use" in message
    assert f"make dev PORT={port + 1}" in message and f"--port {port + 1}" in message


def test_a_free_port_and_port_zero_pass():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    port_in_use("127.0.0.1", port)
    port_in_use("127.0.0.1", 0)


def test_start_up_warnings_that_say_nothing_about_the_project_are_hidden():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quiet_known_warnings()
        warnings.warn(
            "Tried to parse AWS::CloudWatch::Alarm but it's not supported by moto's CloudFormation implementation",
            UserWarning,
            stacklevel=1,
        )
        warnings.warn("No application metrics to publish. The cold-start metric may be published", stacklevel=1)
        warnings.warn("something the user should see", UserWarning, stacklevel=1)
    assert [str(w.message) for w in caught] == ["something the user should see"]
