"""The operation commands' text output and argument checks, with the admin API replaced by canned answers (the
real round trips are in tests/e2e/test_operations_e2e.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import cli

CH = "34020000001310000001"
NVR = "34020000001110000001"


class FakeAdmin:
    calls: list[tuple[str, str, Any]] = []
    answers: dict[tuple[str, str], Any] = {}

    def __init__(self, url: str, token: str | None) -> None:
        pass

    def call(self, method: str, path: str, body: Any = None, query: Any = None, timeout: float = 15) -> Any:
        self.calls.append((method, path, body if body is not None else query))
        return self.answers[(method, path.rsplit("/", 1)[-1])]

    def raw(self, method: str, path: str, data: bytes | None = None, content_type: str | None = None,
            query: Any = None, timeout: float = 120) -> bytes:  # fmt: skip
        self.calls.append((method, path, query))
        return self.answers[(method, path.rsplit("/", 1)[-1])]


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setattr(cli, "Admin", FakeAdmin)
    FakeAdmin.calls = []

    def invoke(*args: str) -> tuple[int, str]:
        result = CliRunner().invoke(cli.main, list(args))
        return result.exit_code, result.output

    return invoke


CONTROL = {"device_id": NVR, "target": CH, "command": "PTZCmd", "sn": 1, "result": None}


def test_ptz_preset_record_guard_reboot_print_what_was_sent(run) -> None:  # type: ignore[no-untyped-def]
    FakeAdmin.answers = {
        ("POST", "ptz"): {**CONTROL, "ptz_cmd": "A50F0101808000B6", "stop": "A50F0100000000B5", "duration": 1.5},
        ("GET", "presets"): {"presets": [{"preset": 1, "name": "预置点 1"}]},
        ("POST", "presets"): {**CONTROL, "ptz_cmd": "A50F01820003003A"},
        ("POST", "record"): {**CONTROL, "command": "RecordCmd", "result": "OK"},
        ("POST", "guard"): {**CONTROL, "target": NVR, "command": "GuardCmd", "result": "OK"},
        ("POST", "reboot"): {**CONTROL, "target": NVR, "command": "TeleBoot"},
    }
    code, out = run("ptz", CH, "right", "--duration", "1.5")
    assert code == 0 and "stopped after 1.5 s (A50F0100000000B5)" in out
    assert FakeAdmin.calls[-1] == (
        "POST",
        f"/api/channels/{CH}/ptz",
        {"action": "right", "speed": 128, "duration": 1.5},
    )
    code, out = run("preset", "list", CH)
    assert code == 0 and "预置点 1" in out
    code, out = run("preset", "goto", CH, "3")
    assert code == 0 and "A50F01820003003A" in out
    assert (run("record", "start", CH)[1], run("guard", "arm", NVR)[1]) == (
        f"record start: {CH} answered OK\n", f"guard arm: {NVR} answered OK\n",
    )  # fmt: skip
    assert run("reboot", NVR) == (0, f"reboot sent to {NVR}\n")


def test_bad_arguments_stop_before_the_api(run) -> None:  # type: ignore[no-untyped-def]
    for args in (("ptz", CH, "sideways"), ("ptz", CH, "left", "--speed", "300"), ("ptz", CH, "left", "--duration", "0"),
                 ("preset", "goto", CH), ("preset", "goto", CH, "0"), ("preset", "list", CH, "2"),
                 ("record", "pause", CH), ("guard", "on", NVR), ("records", CH)):  # fmt: skip
        code, _ = run(*args)
        assert code == 2, args
    assert FakeAdmin.calls == []


def test_records_table_and_partial_warning(run) -> None:  # type: ignore[no-untyped-def]
    item = {"start_time": "2024-05-01T00:00:00", "end_time": "2024-05-01T00:59:59", "type": "time",
            "file_size": 1, "name": "通道一", "file_path": "/r/00.mp4"}  # fmt: skip
    FakeAdmin.answers = {("GET", "records"): {"state": "partial", "reason": "inter-packet timeout", "received": 1,
                                              "sum_num": 5, "items": [item]}}  # fmt: skip
    code, out = run("records", CH, "--start", "-1d")
    assert code == 0 and "partial answer (inter-packet timeout): 1 of 5 files" in out and "/r/00.mp4" in out
    assert FakeAdmin.calls[-1][2] == {"start": "-1d", "end": "-0s"}


def test_channels_export_and_import_text(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    FakeAdmin.answers = {
        ("GET", "channels.csv"): b"\xef\xbb\xbfdevice_id,id\r\nA,B\r\nA,C\r\n",
        ("POST", "channels.csv"): b'{"rows": 2, "changed": 1, "encoding": "gbk", "changes": [{"line": 2, "id": "B",'
        b' "before": {"name": "x"}, "after": {"name": "y"}}]}',
    }
    path = tmp_path / "c.csv"
    assert run("channels", "export", str(path)) == (0, f"wrote 2 channels to {path}\n")
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    code, out = run("channels", "import", str(path), "--dry-run")
    assert code == 0 and out == "line 2: B name: 'x' -> 'y'\n2 rows read (gbk); would change 1 channels\n"
    assert FakeAdmin.calls[-1] == ("POST", "/api/channels.csv", {"dry_run": "1"})


def test_catalog_progress_line() -> None:
    from cli import _progress_line

    assert _progress_line([]) == "waiting for the first packet..."
    assert _progress_line([{"received": 5, "sum_num": None, "packets": 2}]) == "5 items in 2 packets"
    line = _progress_line([{"received": 50, "sum_num": 100, "packets": 10}])
    assert line.startswith("[" + "#" * 15 + "." * 15 + "]") and "50/100 items, 10 packets" in line
    assert _progress_line([{"received": 120, "sum_num": 100, "packets": 3}]).startswith("[" + "#" * 30 + "]")
