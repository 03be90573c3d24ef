"""The control channel's command parser: what it accepts, and what it says when it refuses."""

from __future__ import annotations

import pytest

from gb28181.simulator.control import Command, CommandError, parse_command, select

IDS = ["34020000001320000001", "34020000001180000002", "34020000002000000103"]


def test_commands_parse() -> None:
    assert parse_command("power-off all") == Command("power-off", ("all",))
    assert parse_command("  ALARM #1 34020000001310001001 ") == Command("alarm", ("#1", "34020000001310001001"))
    assert parse_command("vlost 34020000001310001001") == Command("vlost", ("34020000001310001001",))
    assert parse_command("status") == Command("status")
    assert parse_command("") is None and parse_command("# a comment") is None


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("explode all", "unknown command 'explode'"),
        ("reboot", "reboot takes 1 argument, got 0"),
        ("status now", "status takes 0 arguments, got 1"),
        ("vlost cam1", "vlost needs a 20-digit channel ID"),
        ("alarm all chan", "alarm: channel must be a 20-digit ID"),
    ],
)
def test_bad_commands_say_why(line: str, message: str) -> None:
    with pytest.raises(CommandError, match=message):
        parse_command(line)


def test_targets() -> None:
    assert select("all", IDS) == [0, 1, 2]
    assert select("#2", IDS) == [2]
    assert select("34020000001180000002", IDS) == [1]
    for bad, message in (("#3", "no device #3"), ("#x", "no device #x"), ("3402", "no device '3402'")):
        with pytest.raises(CommandError, match=message):
            select(bad, IDS)
