"""The media commands' text output and argument checks, with the admin API replaced by canned answers (the real
round trips, --output included, are in tests/e2e/test_media_play.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from click.testing import CliRunner

import cli

CAM = "34020000001320000001"
ROW = {"id": "s1", "consumer": "c2", "channel": CAM, "kind": "play", "transport": "udp", "ssrc": "0000630886",
       "state": "streaming", "consumers": ["c2"], "packets": 10, "bytes": 9000, "lost": 0, "paused": False,
       "scale": 1.0, "media_address": "127.0.0.1:15060", "live": "/live/s1?token=1.x", "filesize": None}


class FakeAdmin:
    calls: list[tuple[str, str, Any]] = []
    answers: dict[tuple[str, str], Any] = {}

    def __init__(self, url: str, token: str | None) -> None:
        self.url = url.rstrip("/")

    def call(self, method: str, path: str, body: Any = None, query: Any = None, timeout: float = 15) -> Any:
        self.calls.append((method, path, body))
        return self.answers[(method, path.rsplit("/", 1)[-1])]


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setattr(cli, "Admin", FakeAdmin)
    FakeAdmin.calls = []

    def invoke(*args: str) -> tuple[int, str]:
        result = CliRunner().invoke(cli.main, [*args, "--admin", "http://127.0.0.1:18080"])
        return result.exit_code, result.output

    return invoke


def test_play_without_output_prints_the_live_url_and_how_to_stop(run) -> None:  # type: ignore[no-untyped-def]
    FakeAdmin.answers = {("POST", "play"): ROW}
    code, out = run("play", CAM, "--transport", "tcp-active")
    assert code == 0 and "session s1 (consumer c2)" in out and "http://127.0.0.1:18080/live/s1?token=1.x" in out
    assert "gb28181 stop c2" in out
    assert FakeAdmin.calls == [("POST", f"/api/channels/{CAM}/play", {"transport": "tcp-active"})]
    code, out = run("play", CAM, "--json")
    assert code == 0 and json.loads(out)["url"] == "http://127.0.0.1:18080/live/s1?token=1.x"
    code, out = run("play", CAM, "--transport", "sctp")
    assert code == 2 and "sctp" in out


def test_playback_speed_sends_a_scale_and_download_needs_a_range(run) -> None:  # type: ignore[no-untyped-def]
    FakeAdmin.answers = {("POST", "playback"): {**ROW, "kind": "playback"},
                         ("POST", "control"): {**ROW, "kind": "playback", "scale": 2.0}}  # fmt: skip
    code, out = run("playback", CAM, "--start", "-1h", "--end", "-30m", "--speed", "2")
    assert code == 0 and "playback" in out
    assert FakeAdmin.calls[1] == ("POST", "/api/sessions/s1/control", {"action": "scale", "scale": 2})
    code, out = run("download", CAM, "--start", "-1h")
    assert code == 2 and "--end" in out


def test_sessions_stop_and_playback_control(run) -> None:  # type: ignore[no-untyped-def]
    FakeAdmin.answers = {("GET", "sessions"): [ROW], ("POST", "stop"): {**ROW, "left": "c2", "consumers": ["c3"]},
                         ("POST", "control"): {**ROW, "paused": True}}  # fmt: skip
    code, out = run("sessions")
    assert code == 0 and "0000630886" in out and "streaming" in out and "127.0.0.1:15060" in out
    code, out = run("stop", "c2")
    assert code == 0 and "consumer c2 left session s1 (1 consumers remain)" in out
    FakeAdmin.answers[("POST", "stop")] = {**ROW, "state": "ended", "reason": "stopped", "consumers": []}
    code, out = run("stop", "s1")
    assert code == 0 and "session s1 ended: stopped" in out
    code, out = run("playback-control", "s1", "pause")
    assert code == 0 and "paused" in out
    code, out = run("playback-control", "s1", "scale")
    assert code == 2 and "scale needs a VALUE" in out
