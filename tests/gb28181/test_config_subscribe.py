"""The ``[subscribe]`` section: defaults, loading, and a clear error for every bad value."""

from __future__ import annotations

from pathlib import Path

import pytest

from gb28181.config import ConfigError, SubscribeConfig, load


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_subscribe_nobody_automatically_with_the_app_n_expiry() -> None:
    sub = load(None).subscribe
    assert sub == SubscribeConfig()
    assert (sub.catalog, sub.alarm, sub.position, sub.expires, sub.refresh_margin) == (False, False, False, 600, 60.0)


def test_the_section_loads(tmp_path: Path) -> None:
    text = (
        "[subscribe]\ncatalog = true\nposition = true\nexpires = 3600\nrefresh_margin = 120\n"
        "position_interval = 10\nmax_failures = 3\nretry_base = 1\nretry_max = 60\n"
    )
    cfg = load(write(tmp_path, text))
    sub = cfg.subscribe
    assert (sub.catalog, sub.alarm, sub.position, sub.expires, sub.position_interval) == (True, False, True, 3600, 10)
    assert (sub.refresh_margin, sub.max_failures, sub.retry_base, sub.retry_max) == (120.0, 3, 1.0, 60.0)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("expires = 10", "expires must be between 30"),
        ("refresh_margin = 600", "refresh_margin must be positive and below expires"),
        ("position_interval = 0", "position_interval"),
        ("max_failures = 0", "max_failures"),
        ("retry_base = 100\nretry_max = 10", "retry_base <= retry_max"),
        ("catalog = 1", "must be true or false"),
        ("weather = true", "unknown key 'weather'"),
    ],
)
def test_bad_values_are_clear_errors(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load(write(tmp_path, f"[subscribe]\n{text}\n"))
