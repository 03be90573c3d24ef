"""The `gb28181` command: options -> config -> gb28181.server, or a client of the admin API.
No protocol logic here."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import ssl
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import click

from gb28181 import config as config_mod
from gb28181 import server
from gb28181 import trace as trace_mod
from gb28181.admin.client import AdminClient, AdminError, error_text

DEFAULT_ADMIN = "http://127.0.0.1:18080"


class _Main(click.Group):
    """The command group: a failed admin API call (AdminError) ends any command with click's ``Error: ...``, exit
    code 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except AdminError as exc:
            raise click.ClickException(str(exc)) from exc


@click.group(cls=_Main)
@click.version_option("0.1.0", prog_name="gb28181")
def main() -> None:
    """GB/T 28181 platform: SIP signalling server and device registry."""


# ---------------------------------------------------------------------------------------------- serve
@main.command()
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="TOML config file.")
@click.option("--sip-id", help="Platform SIP ID (20 digits).")
@click.option("--domain", help="SIP domain (default: first 10 digits of the ID).")
@click.option("--listen", multiple=True, help="udp://HOST:PORT or tcp://HOST:PORT (repeatable).")
@click.option("--db", help="Database file (SQLite).")
@click.option("--password", help="Default device password.")
@click.option("--admin-listen", help="Admin API HOST:PORT.")
@click.option("--log-level", default="info", type=click.Choice(["debug", "info", "warning", "error"]))
def serve(config_path: str | None, log_level: str, **flags: object) -> None:
    """Run the platform."""
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        cfg = config_mod.override(config_mod.load(config_path), **flags)
    except config_mod.ConfigError as exc:
        click.echo(f"gb28181: config error: {exc}", err=True)
        sys.exit(2)
    try:
        import uvloop
    except ImportError:  # uvloop does not exist on Windows
        code = asyncio.run(server.run(cfg))
    else:
        code = uvloop.run(server.run(cfg))
    sys.exit(code)


# ---------------------------------------------------------------------------------------------- admin client
class Admin(AdminClient):
    """The admin API's client (gb28181/admin/client.py) with the CLI's TLS trust; its AdminErrors end the command
    as click errors (``_Main``)."""

    def __init__(self, url: str, token: str | None) -> None:
        super().__init__(url, token, _tls_context())



def _tls_context() -> ssl.SSLContext | None:
    """For an https:// admin URL: trust the system CAs, or only ``GB28181_CACERT`` (a PEM file, e.g. the
    admin API's own self-signed certificate) when set."""
    cafile = os.environ.get("GB28181_CACERT")
    return ssl.create_default_context(cafile=cafile) if cafile else None


def _token(db: str) -> str | None:
    token = os.environ.get("GB28181_TOKEN")
    if token:
        return token
    path = server.secrets_path(db)
    try:
        return json.loads(Path(path).read_text(encoding="utf-8")).get("token")
    except (OSError, ValueError):
        return None


admin_option = click.option(
    "--admin",
    "admin_url",
    envvar="GB28181_ADMIN",
    default=DEFAULT_ADMIN,
    show_default=True,
    help="Admin API URL (env GB28181_ADMIN).",
)
db_option = click.option(
    "--db",
    default="./gb28181.db",
    show_default=True,
    help="Database whose secrets file holds the admin token (when GB28181_TOKEN is unset).",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


def _client(admin_url: str, db: str) -> Admin:
    return Admin(admin_url, _token(db))


def _print_rows(rows: list[dict[str, Any]], columns: list[str], as_json: bool) -> None:
    """A listing: the JSON array with --json, else a table of these columns."""
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False))
    else:
        _print_table(rows, columns)


def _print_table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    if not rows:
        click.echo("(none)")
        return
    cells = [[("" if r.get(c) is None else str(r.get(c))) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    click.echo("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)))
    for row in cells:
        click.echo("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)))


@main.command()
@click.option("--status", type=click.Choice(["online", "offline"]))
@json_option
@admin_option
@db_option
def devices(status: str | None, as_json: bool, admin_url: str, db: str) -> None:
    """List devices."""
    rows = _client(admin_url, db).call("GET", "/api/devices", query={"status": status})
    _print_rows(rows, ["id", "name", "status", "transport", "address", "last_keepalive", "expires"], as_json)


@main.group()
def device() -> None:
    """Show, add, remove or change one device."""


@device.command("show")
@click.argument("device_id")
@json_option
@admin_option
@db_option
def device_show(device_id: str, as_json: bool, admin_url: str, db: str) -> None:
    row = _client(admin_url, db).call("GET", f"/api/devices/{urllib.parse.quote(device_id)}")
    if as_json:
        click.echo(json.dumps(row, ensure_ascii=False))
        return
    for key, value in row.items():
        click.echo(f"{key:>20}: {'' if value is None else value}")


def _settings(
    name: str | None,
    password: str | None,
    charset: str | None,
    stream_mode: str | None,
    keepalive_interval: int | None,
    keepalive_count: int | None,
    enabled: bool | None,
) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for key, value in (
        ("name", name),
        ("password", password),
        ("charset", charset),
        ("stream_mode", stream_mode),
        ("keepalive_interval", keepalive_interval),
        ("keepalive_count", keepalive_count),
        ("enabled", enabled),
    ):
        if value is not None:
            body[key] = value
    return body


def settings_options(f: Any) -> Any:
    for opt in reversed(
        [
            click.option("--name"),
            click.option("--password", help="Per-device password (empty string: use the global one)."),
            click.option("--charset", type=click.Choice(["GB2312", "GB18030", "UTF-8"], case_sensitive=False)),
            click.option("--stream-mode", type=click.Choice(["udp", "tcp-passive", "tcp-active"])),
            click.option("--keepalive-interval", type=click.IntRange(1, 86400), help="Seconds between keepalives."),
            click.option("--keepalive-count", type=click.IntRange(1, 100), help="Missed keepalives before offline."),
            click.option("--enabled/--disabled", default=None),
        ]
    ):
        f = opt(f)
    return f


def _query_command(verb: str, what: str) -> None:
    @device.command(verb, help=f"Ask the device for its {what} and print its answer.")
    @click.argument("device_id")
    @json_option
    @admin_option
    @db_option
    def command(device_id: str, as_json: bool, admin_url: str, db: str) -> None:
        row = _client(admin_url, db).call("GET", f"/api/devices/{urllib.parse.quote(device_id)}/{verb}", timeout=660)
        if as_json:
            click.echo(json.dumps(row, ensure_ascii=False))
            return
        _print_tree(row)


def _print_tree(value: Any, indent: int = 0) -> None:
    pad = " " * indent
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, (dict, list)):
                click.echo(f"{pad}{key}:")
                _print_tree(item, indent + 2)
            else:
                click.echo(f"{pad}{key}: {item}")
    elif isinstance(value, list):
        for n, item in enumerate(value, 1):
            click.echo(f"{pad}- #{n}")
            _print_tree(item, indent + 2)
    else:
        click.echo(f"{pad}{value}")


_query_command("info", "identity (DeviceInfo: manufacturer, model, firmware, channels)")
_query_command("status", "status (DeviceStatus: online, recording, alarm inputs)")
_query_command("config", "basic configuration (ConfigDownload BasicParam, incl. its keepalive settings)")


@device.command("add")
@click.argument("device_id")
@settings_options
@json_option
@admin_option
@db_option
def device_add(device_id: str, as_json: bool, admin_url: str, db: str, **settings: Any) -> None:
    """Provision a device (needed when [sip] allow_unknown = false)."""
    body = {"id": device_id, **_settings(**settings)}
    row = _client(admin_url, db).call("POST", "/api/devices", body)
    click.echo(json.dumps(row, ensure_ascii=False) if as_json else f"added {row['id']}")


@device.command("set")
@click.argument("device_id")
@settings_options
@json_option
@admin_option
@db_option
def device_set(device_id: str, as_json: bool, admin_url: str, db: str, **settings: Any) -> None:
    """Change a device's password, charset, stream mode, keepalive window or enabled flag."""
    body = _settings(**settings)
    if "password" in body and body["password"] == "":
        body["password"] = None
    if not body:
        raise click.UsageError("nothing to set: give at least one option")
    row = _client(admin_url, db).call("PATCH", f"/api/devices/{urllib.parse.quote(device_id)}", body)
    click.echo(json.dumps(row, ensure_ascii=False) if as_json else f"updated {row['id']}")


@device.command("remove")
@click.argument("device_id")
@admin_option
@db_option
def device_remove(device_id: str, admin_url: str, db: str) -> None:
    _client(admin_url, db).call("DELETE", f"/api/devices/{urllib.parse.quote(device_id)}")
    click.echo(f"removed {device_id}")


@main.group()
def catalog() -> None:
    """Catalog syncs: what a device or lower platform has."""


@catalog.command("sync")
@click.argument("device_id")
@click.option("--wait", is_flag=True, help="Wait until the sync commits (complete, or partial after silence).")
@json_option
@admin_option
@db_option
def catalog_sync(device_id: str, wait: bool, as_json: bool, admin_url: str, db: str) -> None:
    """Ask DEVICE for its catalog; channels are added and updated, and removed only by a complete answer.

    With --wait, shows items received / SumNum while the answer arrives (on a terminal) and prints the result."""
    path = f"/api/devices/{urllib.parse.quote(device_id)}/catalog"
    client = _client(admin_url, db)
    row = client.call("POST", path, {}, query={"wait": "0"}, timeout=60)
    if wait:
        row = _wait_for_catalog(client, path, row["sn"], show=not as_json and sys.stderr.isatty())
    if as_json:
        click.echo(json.dumps(row, ensure_ascii=False))
    elif not wait:
        click.echo(f"catalog query sent to {device_id} (SN {row['sn']}); see `gb28181 channels --device {device_id}`")
    else:
        click.echo(
            f"{row['state']} ({row['reason']}): {row['received']}/{row['sum_num']} items in {row['packets']} packets; "
            f"added {row['added']}, updated {row['updated']}, removed {row['removed']}"
        )


def _wait_for_catalog(client: Admin, path: str, sn: int, *, show: bool) -> dict[str, Any]:
    """Poll the sync's progress until the platform committed it (it always does: complete, partial after the
    inter-packet timeout, or "no answer" after the first-packet timeout)."""
    deadline = time.monotonic() + 7200
    while time.monotonic() < deadline:
        state = client.call("GET", path, query={"sn": sn})
        if state.get("result") is not None:
            if show:
                click.echo("\r\x1b[K", nl=False, err=True)
            return state["result"]
        if show:
            click.echo("\r" + _progress_line(state.get("in_progress") or []), nl=False, err=True)
        time.sleep(0.25)
    raise click.ClickException(f"the platform did not finish catalog sync SN {sn} within 2 hours")


def _progress_line(staged: list[dict[str, Any]]) -> str:
    if not staged:
        return "waiting for the first packet..."
    p = staged[0]
    received, total = p["received"], p.get("sum_num")
    if not total:
        return f"{received} items in {p['packets']} packets"
    width = 30
    filled = min(width, width * received // total)
    return f"[{'#' * filled}{'.' * (width - filled)}] {received}/{total} items, {p['packets']} packets"


@main.group(invoke_without_command=True)
@click.option("--device", "device_id", help="Only this device's channels.")
@click.option("--status", type=click.Choice(["online", "offline"]))
@click.option("--civil-code", help="Only channels whose civil code starts with this.")
@json_option
@admin_option
@db_option
@click.pass_context
def channels(ctx: click.Context, device_id: str | None, status: str | None, civil_code: str | None, as_json: bool,
             admin_url: str, db: str) -> None:  # fmt: skip
    """List channels (names and coordinates as shown: local overrides first); `channels export|import FILE.csv`."""
    if ctx.invoked_subcommand is not None:
        return
    rows = _client(admin_url, db).call(
        "GET", "/api/channels", query={"device": device_id, "status": status, "civil_code": civil_code}
    )
    _print_rows(rows, ["device_id", "id", "name", "kind", "status", "civil_code", "point_class"], as_json)


@main.group()
def channel() -> None:
    """Fix what a channel reported, locally (names, coordinates, civil code, point class)."""


@channel.command("set")
@click.argument("channel_id")
@click.option("--device", "device_id", help="The channel's device (needed when the ID is on several devices).")
@click.option("--name", help="Name to show (empty string: back to the reported one).")
@click.option("--lon", type=click.FloatRange(-180, 180), help="Longitude (WGS84).")
@click.option("--lat", type=click.FloatRange(-90, 90), help="Latitude (WGS84).")
@click.option("--civil-code", help="Civil (administrative) code, 2 to 8 digits.")
@click.option("--point-class", type=click.Choice(["1", "2", "3", "9"]), help="一类/二类/三类 point, 9 = other.")
@click.option("--clear", multiple=True, type=click.Choice(["name", "coordinates", "civil-code", "point-class"]),
              help="Drop a local override (repeatable).")  # fmt: skip
@json_option
@admin_option
@db_option
def channel_set(channel_id: str, device_id: str | None, name: str | None, lon: float | None, lat: float | None,
                civil_code: str | None, point_class: str | None, clear: tuple[str, ...], as_json: bool,
                admin_url: str, db: str) -> None:  # fmt: skip
    """Override how CHANNEL is shown and reported upwards; the device's own report is kept."""
    client = _client(admin_url, db)
    if device_id is None:
        matches = [c for c in client.call("GET", "/api/channels") if c["id"] == channel_id]
        if not matches:
            raise click.ClickException(f"no channel {channel_id}")
        if len(matches) > 1:
            devices = ", ".join(c["device_id"] for c in matches)
            raise click.ClickException(f"channel {channel_id} is on several devices ({devices}): pass --device")
        device_id = matches[0]["device_id"]
    body: dict[str, Any] = {}
    if name is not None:
        body["name"] = name or None
    if (lon is None) != (lat is None):
        raise click.UsageError("give --lon and --lat together")
    if lon is not None:
        body["longitude"], body["latitude"] = lon, lat
    if civil_code is not None:
        if not (civil_code.isascii() and civil_code.isdigit() and len(civil_code) in (2, 4, 6, 8)):
            raise click.UsageError("--civil-code must be 2, 4, 6 or 8 digits")
        body["civil_code"] = civil_code
    if point_class is not None:
        body["point_class"] = int(point_class)
    for what in clear:
        for key in {"coordinates": ("longitude", "latitude")}.get(what, (what.replace("-", "_"),)):
            body[key] = None
    if not body:
        raise click.UsageError("nothing to set: give at least one option")
    path = f"/api/channels/{urllib.parse.quote(device_id)}/{urllib.parse.quote(channel_id)}"
    row = client.call("PATCH", path, body)
    click.echo(json.dumps(row, ensure_ascii=False) if as_json else f"updated {channel_id}: {row['name']}")


@main.command()
@click.option("--device", "device_id", help="Only this device (or channel, or 'platform').")
@click.option("--since", help="ISO time, epoch seconds, or -1h / -30m / -2d.")
@click.option("--until")
@click.option("--limit", default=1000, show_default=True, type=click.IntRange(1, 100000))
@json_option
@admin_option
@db_option
def events(
    device_id: str | None, since: str | None, until: str | None, limit: int, as_json: bool, admin_url: str, db: str
) -> None:
    """The status event log: registrations, expiries, keepalive timeouts, TCP closes, platform start/stop."""
    rows = _client(admin_url, db).call(
        "GET", "/api/events", query={"device": device_id, "since": since, "until": until, "limit": limit}
    )
    _print_rows(rows, ["at", "subject", "event", "reason"], as_json)


@main.group(invoke_without_command=True)
@json_option
@admin_option
@db_option
@click.pass_context
def stats(ctx: click.Context, as_json: bool, admin_url: str, db: str) -> None:
    """Online/offline counts now, and registration outcomes since start (subcommands: online, quality)."""
    if ctx.invoked_subcommand is not None:
        return
    data = _client(admin_url, db).call("GET", "/api/stats")
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False))
        return
    click.echo(
        f"devices {data['devices']}  online {data['online']}  offline {data['offline']}  "
        f"registered {data['registered']}"
    )
    media = data.get("media") or {}
    if media.get("state") not in (None, "ok"):  # say so when the media server is not (known to be) reachable
        click.echo(f"media backend {media.get('backend')}: {media['state']}"
                   + (f" ({media['error']})" if media.get("error") else ""))  # fmt: skip
    for key, value in data["counters"].items():
        click.echo(f"  {key:<32} {value}")
    storage = data.get("storage")
    if storage and (storage["state"] != "ok" or storage["errors"]):
        errors = ", ".join(f"{k} {v}" for k, v in storage["errors"].items())
        state = "ok now" if storage["state"] == "ok" else f"FAILING ({storage['state']}) for {storage['for_s']:g} s"
        click.echo(f"storage: {state}; write errors: {errors}; episodes {storage['episodes']}")
        if storage["last_error"]:
            click.echo(f"  last error: {storage['last_error']}")



# ---------------------------------------------------------------------------------------------- subscriptions, alarms
@main.command()
@click.argument("kind", type=click.Choice(["catalog", "alarm", "position"]))
@click.argument("device_id")
@json_option
@admin_option
@db_option
def subscribe(kind: str, device_id: str, as_json: bool, admin_url: str, db: str) -> None:
    """Subscribe to DEVICE's catalog changes, alarms or mobile positions (or refresh now); prints the state."""
    path = f"/api/devices/{urllib.parse.quote(device_id)}/subscriptions/{kind}"
    row = _client(admin_url, db).call("POST", path, {}, timeout=60)
    if as_json:
        click.echo(json.dumps(row, ensure_ascii=False))
    else:
        click.echo(f"{kind} subscription to {device_id}: {row['state']}, expires in {row['expires_in']} s "
                   f"(refresh in {row['next_in']} s)")  # fmt: skip


@main.command()
@click.option("--device", "device_id", help="Only this device's subscriptions.")
@json_option
@admin_option
@db_option
def subscriptions(device_id: str | None, as_json: bool, admin_url: str, db: str) -> None:
    """List subscriptions: state (pending/active/failed), expiry, failures, last error."""
    rows = _client(admin_url, db).call("GET", "/api/subscriptions", query={"device": device_id})
    columns = ["device_id", "kind", "state", "expires_in", "next_in", "failures", "notifies", "last_error"]
    _print_rows(rows, columns, as_json)


@main.command()
@click.option("--device", "device_id", help="Only alarms of this device (reporting device or alarm source).")
@click.option("--since", help="ISO time, epoch seconds, or -1h / -30m / -2d.")
@click.option("--limit", default=1000, show_default=True, type=click.IntRange(1, 100000))
@json_option
@admin_option
@db_option
def alarms(device_id: str | None, since: str | None, limit: int, as_json: bool, admin_url: str, db: str) -> None:
    """Alarms devices reported (oldest first), with acknowledgements and resets."""
    rows = _client(admin_url, db).call("GET", "/api/alarms", query={"device": device_id, "since": since,
                                                                    "limit": limit})  # fmt: skip
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False))
        return
    _print_table(rows, ["id", "received_at", "device_id", "source_id", "priority", "method", "type", "description",
                        "acked_by", "reset_at"])  # fmt: skip


@main.group()
def alarm() -> None:
    """Act on alarms: acknowledge one, reset a device's."""


@alarm.command("ack")
@click.argument("alarm_id", type=click.IntRange(1))
@json_option
@admin_option
@db_option
def alarm_ack(alarm_id: int, as_json: bool, admin_url: str, db: str) -> None:
    """Acknowledge alarm ALARM_ID (recorded with who and when)."""
    row = _client(admin_url, db).call("POST", f"/api/alarms/{alarm_id}/ack", {})
    click.echo(json.dumps(row, ensure_ascii=False) if as_json else f"alarm {alarm_id} acknowledged by "
               f"{row['acked_by']} at {row['acked_at']}")  # fmt: skip


@alarm.command("reset")
@click.argument("device_id")
@click.option("--type", "alarm_type", help="AlarmType to reset (2022 Info; digits).")
@click.option("--method", "alarm_method", help="AlarmMethod to reset (2022 Info; digits).")
@json_option
@admin_option
@db_option
def alarm_reset(device_id: str, alarm_type: str | None, alarm_method: str | None, as_json: bool, admin_url: str,
                db: str) -> None:  # fmt: skip
    """Send DeviceControl AlarmCmd ResetAlarm to DEVICE and wait for its answer."""
    body = {k: v for k, v in (("type", alarm_type), ("method", alarm_method)) if v is not None}
    row = _client(admin_url, db).call("POST", f"/api/devices/{urllib.parse.quote(device_id)}/alarm-reset", body,
                                      timeout=60)  # fmt: skip
    click.echo(json.dumps(row, ensure_ascii=False) if as_json else f"{device_id} reset its alarm ({row['result']}); "
               f"{row['reset']} alarm(s) marked reset")  # fmt: skip


@main.command()
@click.option("--device", "device_id", help="Only this device's positions.")
@json_option
@admin_option
@db_option
def positions(device_id: str | None, as_json: bool, admin_url: str, db: str) -> None:
    """The latest mobile position of each device or channel (MobilePosition notifications)."""
    rows = _client(admin_url, db).call("GET", "/api/positions", query={"device": device_id})
    _print_rows(rows, ["device_id", "id", "time", "longitude", "latitude", "speed", "direction"], as_json)
# ---------------------------------------------------------------------------------------------- operations
PTZ_ACTIONS = ["left", "right", "up", "down", "zoom-in", "zoom-out", "focus-near", "focus-far", "iris-open",
               "iris-close", "stop"]  # fmt: skip


def _channel_path(channel_id: str, what: str) -> str:
    return f"/api/channels/{urllib.parse.quote(channel_id)}/{what}"


def _done(row: dict[str, Any], as_json: bool, text: str) -> None:
    click.echo(json.dumps(row, ensure_ascii=False) if as_json else text)


@main.command()
@click.argument("channel_id", metavar="CHANNEL")
@click.argument("action", type=click.Choice(PTZ_ACTIONS))
@click.option("--speed", type=click.IntRange(0, 255), default=128, show_default=True, help="0-255 for every action.")
@click.option("--duration", type=click.FloatRange(0, 300, min_open=True), help="Seconds; then the platform stops it.")
@json_option
@admin_option
@db_option
def ptz(channel_id: str, action: str, speed: int, duration: float | None, as_json: bool, admin_url: str,
        db: str) -> None:  # fmt: skip
    """Move, zoom, focus or stop a camera (PTZCmd, GB/T 28181 A.3); without --duration it moves until `stop`."""
    body: dict[str, Any] = {"action": action, "speed": speed}
    if duration is not None:
        body["duration"] = duration
    row = _client(admin_url, db).call("POST", _channel_path(channel_id, "ptz"), body, timeout=(duration or 0) + 660)
    text = f"{action} sent to {row['target']} via {row['device_id']} ({row['ptz_cmd']})"
    if row.get("superseded"):
        text += "; a later PTZ command replaced its timed stop"
    elif row.get("stop"):
        text += f", stopped after {row['duration']:g} s ({row['stop']})"
    _done(row, as_json, text)


@main.command()
@click.argument("action", type=click.Choice(["list", "goto", "set", "delete"]))
@click.argument("channel_id", metavar="CHANNEL")
@click.argument("number", type=click.IntRange(1, 255), required=False)
@json_option
@admin_option
@db_option
def preset(action: str, channel_id: str, number: int | None, as_json: bool, admin_url: str, db: str) -> None:
    """List a camera's presets, or go to, set or delete preset N (1-255)."""
    client = _client(admin_url, db)
    if action == "list":
        if number is not None:
            raise click.UsageError("preset list takes no number")
        rows = client.call("GET", _channel_path(channel_id, "presets"), timeout=660)["presets"]
        if as_json:
            click.echo(json.dumps(rows, ensure_ascii=False))
        else:
            _print_table(rows, ["preset", "name"])
        return
    if number is None:
        raise click.UsageError(f"preset {action} needs the preset number N")
    row = client.call("POST", _channel_path(channel_id, "presets"), {"action": action, "number": number}, timeout=660)
    _done(row, as_json, f"preset {action} {number} sent to {row['target']} ({row['ptz_cmd']})")


@main.command()
@click.argument("channel_id", metavar="CHANNEL")
@click.option("--start", required=True, help="ISO time (platform timezone unless an offset is given), or -1h/-2d.")
@click.option("--end", default="-0s", show_default=True, help="ISO time, epoch seconds, or -1h/-2d.")
@json_option
@admin_option
@db_option
def records(channel_id: str, start: str, end: str, as_json: bool, admin_url: str, db: str) -> None:
    """Search a channel's recordings (RecordInfo); a partial answer says so on stderr."""
    result = _client(admin_url, db).call(
        "GET", _channel_path(channel_id, "records"), query={"start": start, "end": end}, timeout=660
    )
    if result["state"] != "complete":
        click.echo(f"partial answer ({result['reason']}): {result['received']} of {result['sum_num']} files", err=True)
    if as_json:
        click.echo(json.dumps(result["items"], ensure_ascii=False))
        return
    _print_table(result["items"], ["start_time", "end_time", "type", "file_size", "name", "file_path"])


@main.command()
@click.argument("action", type=click.Choice(["start", "stop"]))
@click.argument("channel_id", metavar="CHANNEL")
@json_option
@admin_option
@db_option
def record(action: str, channel_id: str, as_json: bool, admin_url: str, db: str) -> None:
    """Start or stop recording on the device (RecordCmd); waits for the device's Result."""
    row = _client(admin_url, db).call("POST", _channel_path(channel_id, "record"), {"action": action}, timeout=660)
    _done(row, as_json, f"record {action}: {row['target']} answered {row['result']}")


@main.command()
@click.argument("device_id", metavar="DEVICE")
@json_option
@admin_option
@db_option
def reboot(device_id: str, as_json: bool, admin_url: str, db: str) -> None:
    """Reboot a device (TeleBoot); the device answers only with SIP 200, then re-registers."""
    row = _client(admin_url, db).call("POST", f"/api/devices/{urllib.parse.quote(device_id)}/reboot", {}, timeout=660)
    _done(row, as_json, f"reboot sent to {row['device_id']}")


@main.command()
@click.argument("action", type=click.Choice(["arm", "disarm"]))
@click.argument("device_id", metavar="DEVICE")
@json_option
@admin_option
@db_option
def guard(action: str, device_id: str, as_json: bool, admin_url: str, db: str) -> None:
    """Arm or disarm a device's alarm inputs (GuardCmd); waits for the device's Result."""
    path = f"/api/devices/{urllib.parse.quote(device_id)}/guard"
    row = _client(admin_url, db).call("POST", path, {"action": action}, timeout=660)
    _done(row, as_json, f"guard {action}: {row['target']} answered {row['result']}")


@channels.command("export")
@click.argument("path", metavar="FILE.csv", type=click.Path(dir_okay=False, writable=True))
@json_option
@admin_option
@db_option
def channels_export(path: str, as_json: bool, admin_url: str, db: str) -> None:
    """Write every channel with its local overrides to FILE.csv (UTF-8 with BOM, opens in Excel)."""
    data = _client(admin_url, db).raw("GET", "/api/channels.csv")
    Path(path).write_bytes(data)
    rows = max(0, data.count(b"\n") - 1)
    _done({"path": path, "rows": rows}, as_json, f"wrote {rows} channels to {path}")


@channels.command("import")
@click.argument("path", metavar="FILE.csv", type=click.Path(exists=True, dir_okay=False))
@click.option("--dry-run", is_flag=True, help="Check the file and show what would change; change nothing.")
@json_option
@admin_option
@db_option
def channels_import(path: str, dry_run: bool, as_json: bool, admin_url: str, db: str) -> None:
    """Apply names, coordinates, civil codes and point classes from FILE.csv as local overrides, all or nothing
    (every row is checked first; an empty cell or the reported value means no override)."""
    query = {"dry_run": "1"} if dry_run else None
    data = _client(admin_url, db).raw("POST", "/api/channels.csv", Path(path).read_bytes(), "text/csv", query)
    result = json.loads(data)
    if as_json:
        click.echo(json.dumps(result, ensure_ascii=False))
        return
    for change in result["changes"]:
        for field_name, after in change["after"].items():
            before = change["before"].get(field_name)
            click.echo(f"line {change['line']}: {change['id']} {field_name}: {before!r} -> {after!r}")
    verb = "would change" if dry_run else "changed"
    click.echo(f"{result['rows']} rows read ({result['encoding']}); {verb} {result['changed']} channels")
# ---------------------------------------------------------------------------------------------- cascade
@main.group()
def upstream() -> None:
    """Superior platforms we register to ([[upstream]] in the config)."""


_UPSTREAM_COLUMNS = ["id", "host", "port", "transport", "state", "since", "next_attempt", "last_error", "shares"]


@upstream.command("list")
@json_option
@admin_option
@db_option
def upstream_list(as_json: bool, admin_url: str, db: str) -> None:
    """List superiors with their registration state."""
    rows = _client(admin_url, db).call("GET", "/api/upstreams")
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False))
        return
    _print_table(rows, _UPSTREAM_COLUMNS)


@upstream.command("status")
@click.argument("upstream_id", required=False)
@json_option
@admin_option
@db_option
def upstream_status(upstream_id: str | None, as_json: bool, admin_url: str, db: str) -> None:
    """Registration state of one superior (or all): since when, last error, next attempt, keepalives."""
    client = _client(admin_url, db)
    path = f"/api/upstreams/{upstream_id}" if upstream_id else "/api/upstreams"
    found = client.call("GET", path)
    rows = [found] if upstream_id else found
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False))
        return
    for row in rows:
        _print_tree(row)
        click.echo("")


@main.group()
def share() -> None:
    """What each superior sees: shared devices, channels, groups and civil codes, with per-superior IDs/names."""


@share.command("add")
@click.argument("upstream_id")
@click.argument("items", nargs=-1, required=True)
@click.option("--as", "as_id", help="The ID this superior is told instead of the item's own (one item only).")
@click.option("--name", help="The name this superior is told (one item only).")
@json_option
@admin_option
@db_option
def share_add(upstream_id: str, items: tuple[str, ...], as_id: str | None, name: str | None, as_json: bool,
              admin_url: str, db: str) -> None:  # fmt: skip
    """Share ITEMS ("all", device/channel/group IDs, civil codes) with UPSTREAM."""
    if (as_id is not None or name is not None) and len(items) != 1:
        raise click.UsageError("--as and --name apply to one item at a time")
    body = {"items": list(items), "as": as_id, "name": name}
    rows = _client(admin_url, db).call("POST", f"/api/upstreams/{upstream_id}/shares", body=body)
    _print_rows(rows, ["item", "as", "name", "created_at"], as_json)


@share.command("remove")
@click.argument("upstream_id")
@click.argument("items", nargs=-1, required=True)
@json_option
@admin_option
@db_option
def share_remove(upstream_id: str, items: tuple[str, ...], as_json: bool, admin_url: str, db: str) -> None:
    """Stop sharing ITEMS with UPSTREAM."""
    client = _client(admin_url, db)
    done = [client.call("DELETE", f"/api/upstreams/{upstream_id}/shares/{urllib.parse.quote(i, safe='')}")
            for i in items]  # fmt: skip
    if as_json:
        click.echo(json.dumps(done, ensure_ascii=False))
        return
    for row in done:
        click.echo(f"{row['removed']}: no longer shared with {row['upstream']}")


@share.command("list")
@click.argument("upstream_id")
@click.option("--catalog", is_flag=True, help="Show the catalog the superior would get (overrides applied).")
@json_option
@admin_option
@db_option
def share_list(upstream_id: str, catalog: bool, as_json: bool, admin_url: str, db: str) -> None:
    """What is shared with UPSTREAM."""
    path = f"/api/upstreams/{upstream_id}/" + ("catalog" if catalog else "shares")
    rows = _client(admin_url, db).call("GET", path)
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False))
        return
    columns = ["id", "name", "status", "civil_code", "device_id", "channel_id"] if catalog else [
        "item", "as", "name", "created_at"]  # fmt: skip
    _print_table(rows, columns)
# ---------------------------------------------------------------------------------------------- reports (issue 10)
def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f} %"


def _write(text: str, output: str | None) -> None:
    if output is None:
        click.echo(text, nl=not text.endswith("\n"))
        return
    try:
        Path(output).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise click.ClickException(f"cannot write {output}: {exc}") from exc
    click.echo(f"wrote {output}", err=True)


@stats.command("online")
@click.option("--by", type=click.Choice(["civil-code", "point-class", "type", "manufacturer", "platform"]),
              help="Group the rates.")  # fmt: skip
@click.option("--level", type=click.IntRange(1, 4), default=3, show_default=True,
              help="Civil code level for --by civil-code: 1 province, 2 city, 3 county, 4 grassroots.")  # fmt: skip
@click.option("--since", help="Start (ISO time, epoch seconds, -1h / -2d); default: local midnight today.")
@click.option("--until", help="End (default: now).")
@json_option
@admin_option
@db_option
def stats_online(by: str | None, level: int, since: str | None, until: str | None, as_json: bool, admin_url: str,
                 db: str) -> None:  # fmt: skip
    """Time-weighted online rates of video channels and devices, from the status event log."""
    query = {"by": by, "level": level, "since": since, "until": until}
    data = _client(admin_url, db).call("GET", "/api/reports/online", query=query, timeout=300)
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False))
        return
    p, total, down = data["period"], data["total"], data["platform"]
    click.echo(f"{p['start']} .. {p['until']}")
    if total is None:
        click.echo("no channels or devices in this period")
    else:
        click.echo(
            f"video channels {total['channels']} (online now {total['channels_online']}): "
            f"{_rate(total['channel_rate'])}; devices {total['devices']} (online now {total['devices_online']}): "
            f"{_rate(total['device_rate'])}"
        )
    click.echo(f"platform down {down['downtime_s']:.0f} s (excluded), restarts {down['restarts']}")
    if data["groups"]:
        rows = []
        for g in data["groups"]:
            target = "" if g["target"] is None else f"{_rate(g['target'])} {'met' if g['meets_target'] else 'MISSED'}"
            rows.append({"group": g["label"], "channels": g["channels"], "online_now": g["channels_online"],
                         "channel_rate": _rate(g["channel_rate"]), "devices": g["devices"],
                         "device_rate": _rate(g["device_rate"]), "target": target})  # fmt: skip
        _print_table(rows, ["group", "channels", "online_now", "channel_rate", "devices", "device_rate", "target"])


@stats.command("quality")
@click.option("--offenders", "offenders", type=click.Path(dir_okay=False),
              help="Write the offending channels as CSV that `channels import` reads back after fixing.")  # fmt: skip
@json_option
@admin_option
@db_option
def stats_quality(offenders: str | None, as_json: bool, admin_url: str, db: str) -> None:
    """Annotation (coordinates, civil code), naming and ID compliance of the channels."""
    client = _client(admin_url, db)
    if offenders is not None:
        _write(client.text("/api/reports/quality", {"format": "csv"}), offenders)
    data = client.call("GET", "/api/reports/quality", timeout=300)
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False))
        return
    a = data["annotation"]
    click.echo(f"video channels {a['channels']}, compliant {a['compliant']}, offenders {a['offenders']}")
    for rule, share in a["share"].items():
        click.echo(f"  {rule:<12} {_rate(share)}")
    if a["class1"]:
        click.echo(f"  class-1 points with plausible coordinates: {a['class1_coordinates_ok']}/{a['class1']}")
    click.echo(f"ID problems: {len(data['ids'])}")
    for p in data["ids"][:50]:
        click.echo(f"  {p['id']} ({p['role']} on {p['device_id']}): {p['problem']}")


@main.command()
@click.option("--period", type=click.Choice(["day", "week"]), default="day", show_default=True)
@click.option("--date", "day", default="today", show_default=True,
              help="YYYY-MM-DD, today or yesterday (platform timezone); a week is the ISO week of it.")  # fmt: skip
@click.option("--format", "fmt", type=click.Choice(["text", "csv", "html"]), default="text", show_default=True)
@click.option("--level", type=click.IntRange(1, 4), default=3, show_default=True, help="Civil code level of the "
              "by-region chart.")  # fmt: skip
@click.option("--output", type=click.Path(dir_okay=False), help="Write to this file instead of standard output.")
@click.option("--json", "as_json", is_flag=True, help="Print the report's data as JSON (instead of --format).")
@admin_option
@db_option
def report(period: str, day: str, fmt: str, level: int, output: str | None, as_json: bool, admin_url: str,
           db: str) -> None:  # fmt: skip
    """The daily or weekly operator report: online rates (by point class, region, hour or day), worst channels,
    annotation, naming and ID compliance. The HTML page has inline SVG charts and opens offline."""
    query = {"period": period, "date": day, "level": level, "format": "json" if as_json else fmt}
    text = _client(admin_url, db).text("/api/reports/report", query, timeout=300)
    _write(text, output)
# ---------------------------------------------------------------------------------------------- simulator
@main.command()
@click.option("--server", required=True, help="The platform's SIP address, HOST:PORT.")
@click.option("--transport", type=click.Choice(["udp", "tcp"]), help="Override every profile's transport.")
@click.option("--devices", type=click.IntRange(1, 1_000_000), default=1, show_default=True)
@click.option("--channels", type=click.IntRange(0, 990), help="Cameras per NVR / lower platform (profile's default).")
@click.option("--profile", default="mixed", show_default=True, help="A profile in fixtures/profiles, or mixed.")
@click.option("--password", default="12345678", show_default=True, help="The devices' SIP password.")
@click.option("--id-prefix", default="3402000000", show_default=True, help="First 10 digits of every ID.")
@click.option("--server-id", default="34020000002000000001", show_default=True, help="The platform's SIP ID.")
@click.option("--domain", default="", help="SIP domain (default: first 10 digits of --server-id).")
@click.option("--duration", type=click.FloatRange(min=0.1), help="Seconds to run (default: until quit or Ctrl-C).")
@click.option("--rate", type=click.FloatRange(min=0.1), default=200.0, show_default=True, help="Devices started/s.")
@click.option("--keepalive", type=click.FloatRange(min=0.1), help="Keepalive interval in s (profile's default).")
@click.option("--expires", type=click.IntRange(1, 86400), help="REGISTER expiry asked for (profile's default).")
@click.option("--control", "control_port", type=click.IntRange(0, 65535), help="Also take commands on 127.0.0.1:PORT.")
@click.option("--shared-socket", is_flag=True, help="All UDP devices on one socket (no fd limit; one address).")
@click.option("--bind", help="Local address for the devices' sockets (default: loopback for a loopback server).")
@click.option("--no-progress", is_flag=True, help="No progress line.")
@click.option("--audio-outputs", type=click.IntRange(0, 9), default=0, show_default=True,
              help="Voice outputs (137 channels, voice broadcast) per device.")
@click.option("--max-streams", type=click.IntRange(0, 64), default=0, show_default=True,
              help="Media streams a channel sends at once; beyond, INVITEs get 486 (0: no limit).")
@json_option
@click.option("--log-level", default="warning", type=click.Choice(["debug", "info", "warning", "error"]))
def simulate(server: str, transport: str | None, as_json: bool, log_level: str, no_progress: bool, **opts: Any) -> None:
    """Run simulated devices against a platform; commands on stdin (help lists them)."""
    from gb28181 import simulator

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    host, _, port = server.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise click.BadParameter(f"{server!r} is not HOST:PORT", param_hint="--server")
    cfg = simulator.SimConfig(
        server_host=host.strip("[]"), server_port=int(port), transport=transport.upper() if transport else None,
        progress=not no_progress, **opts,
    )  # fmt: skip
    try:
        try:
            import uvloop
        except ImportError:  # uvloop does not exist on Windows
            summary = asyncio.run(simulator.simulate(cfg))
        else:
            summary = uvloop.run(simulator.simulate(cfg))
    except (simulator.ProfileError, simulator.SimulatorError) as exc:
        click.echo(f"gb28181 simulate: {exc}", err=True)
        sys.exit(2)
    if as_json:
        click.echo(json.dumps(summary, ensure_ascii=False))
        return
    click.echo(
        f"{summary['devices']} devices: {summary['registered']} registered, {summary['online']} online, "
        f"{summary['off']} powered off, after {summary['elapsed']} s"
    )
    for name, row in summary["by_profile"].items():
        click.echo(f"  {name:<24} {row['registered']}/{row['devices']} registered, {row['channels']} catalog items")
    for key in ("register-sent", "keepalive-sent", "keepalive-ok", "messages-sent", "notify-sent"):
        click.echo(f"  {key:<24} {summary['stats'].get(key, 0)}")



# ---------------------------------------------------------------------------------------------- media sessions
TRANSPORTS = ["udp", "tcp-passive", "tcp-active"]
transport_option = click.option("--transport", type=click.Choice(TRANSPORTS), default="udp", show_default=True,
                                help="Media transport, named from the platform's side (tcp-passive: we listen).")
output_option = click.option("--output", type=click.Path(dir_okay=False, writable=True),
                             help="Write the PS stream to FILE (else print the live URL and return).")


def _stream_to(client: Admin, live: str, output: str, seconds: float | None, progress: int | None = None) -> int:
    """Read the session's live PS stream into ``output`` for ``seconds`` (from the first byte), or until the
    platform ends it; returns the bytes written. ``progress``: expected size, for a progress line on stderr."""
    import time

    req = urllib.request.Request(client.url + live)
    written = 0
    try:
        with urllib.request.urlopen(req, timeout=60) as resp, open(output, "wb") as out:
            first: float | None = None
            shown = 0.0
            for _ in range(10**9):  # bounded by --seconds or by the end of the stream
                chunk = resp.read1(65536)
                if not chunk:
                    break
                now = time.monotonic()
                first = now if first is None else first
                out.write(chunk)
                written += len(chunk)
                if progress is not None and now - shown >= 1:
                    shown = now
                    pct = f" ({100 * written / progress:.0f}%)" if progress else ""
                    click.echo(f"\r{written / 1e6:.1f} MB{pct}", nl=False, err=True)
                if seconds is not None and now - first >= seconds:
                    break
    except urllib.error.HTTPError as exc:
        raise click.ClickException(f"live stream: {exc.code} {error_text(exc)}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise click.ClickException(f"live stream: {getattr(exc, 'reason', exc)}") from exc
    if progress is not None:
        click.echo("", err=True)
    return written


def _run_session(client: Admin, row: dict[str, Any], output: str | None, seconds: float | None, as_json: bool,
                 progress: bool = False) -> None:
    url = client.url + row["live"]
    if output is None:
        _done({**row, "url": url}, as_json, f"session {row['id']} (consumer {row['consumer']}): {row['kind']} of "
              f"{row['channel']} over {row['transport']}, SSRC {row['ssrc']}\n{url}\n"
              f"stop it with: gb28181 stop {row['consumer']}")  # fmt: skip
        return
    try:
        size = _stream_to(client, row["live"], output, seconds, (row.get("filesize") or 0) if progress else None)
    finally:
        try:
            final = client.call("POST", f"/api/sessions/{urllib.parse.quote(row['consumer'])}/stop", {}, timeout=120)
        except AdminError:  # the session already ended (download complete, device BYE)
            final = row
    _done({**final, "output": output, "written": size}, as_json,
          f"{size} bytes of {row['kind']} of {row['channel']} written to {output} (session {row['id']})")


@main.command()
@click.argument("channel_id", metavar="CHANNEL")
@click.option("--seconds", type=click.FloatRange(0, min_open=True), help="With --output: stop after N seconds.")
@output_option
@transport_option
@json_option
@admin_option
@db_option
def play(channel_id: str, seconds: float | None, output: str | None, transport: str, as_json: bool, admin_url: str,
         db: str) -> None:  # fmt: skip
    """Live video of CHANNEL (GB/T 28181 §9.2): a viewer of its one shared stream."""
    client = _client(admin_url, db)
    row = client.call("POST", _channel_path(channel_id, "play"), {"transport": transport}, timeout=120)
    _run_session(client, row, output, seconds, as_json)


def _history_command(kind: str, doc: str) -> None:
    @main.command(kind, help=doc)
    @click.argument("channel_id", metavar="CHANNEL")
    @click.option("--start", required=True, help="ISO 8601 (platform timezone), epoch seconds or -1h.")
    @click.option("--end", required=True, help="Same forms as --start.")
    @click.option("--speed", type=click.IntRange(1, 32), default=1, show_default=True,
                  help="Download speed factor (download) or playback scale (playback: 1, 2, 4).")
    @click.option("--seconds", type=click.FloatRange(0, min_open=True), help="With --output: stop after N seconds.")
    @output_option
    @transport_option
    @json_option
    @admin_option
    @db_option
    def command(channel_id: str, start: str, end: str, speed: int, seconds: float | None, output: str | None,
                transport: str, as_json: bool, admin_url: str, db: str) -> None:  # fmt: skip
        client = _client(admin_url, db)
        body: dict[str, Any] = {"transport": transport, "start": start, "end": end}
        if kind == "download":
            body["speed"] = speed
        row = client.call("POST", _channel_path(channel_id, kind), body, timeout=120)
        if kind == "playback" and speed != 1:
            row = {**row, **client.call("POST", f"/api/sessions/{row['id']}/control",
                                        {"action": "scale", "scale": speed}, timeout=60)}  # fmt: skip
        _run_session(client, row, output, seconds, as_json, progress=kind == "download" and not as_json)


_history_command("playback", "Recorded video of CHANNEL between --start and --end (§9.8), as a stream.")
_history_command("download", "Download CHANNEL's recording between --start and --end (§9.9) into --output.")


@main.command()
@json_option
@admin_option
@db_option
def sessions(as_json: bool, admin_url: str, db: str) -> None:
    """Media sessions: live, playback and download streams the platform receives, with their consumers."""
    rows = _client(admin_url, db).call("GET", "/api/sessions")
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False))
        return
    for row in rows:
        row["consumers"] = len(row["consumers"])
    _print_table(rows, ["id", "channel", "kind", "transport", "ssrc", "state", "consumers", "packets", "bytes", "lost",
                        "media_address"])  # fmt: skip


@main.command()
@click.argument("ident", metavar="SESSION")
@json_option
@admin_option
@db_option
def stop(ident: str, as_json: bool, admin_url: str, db: str) -> None:
    """End SESSION (for every consumer), or remove one consumer (the stream ends with its last consumer)."""
    row = _client(admin_url, db).call("POST", f"/api/sessions/{urllib.parse.quote(ident)}/stop", {}, timeout=120)
    text = (f"consumer {row['left']} left session {row['id']} ({len(row['consumers'])} consumers remain)"
            if row.get("left") else f"session {row['id']} ended: {row.get('reason') or row['state']}")
    _done(row, as_json, text)


@main.command("playback-control")
@click.argument("ident", metavar="SESSION")
@click.argument("action", type=click.Choice(["pause", "resume", "scale", "seek"]))
@click.argument("value", type=float, required=False)
@json_option
@admin_option
@db_option
def playback_control(ident: str, action: str, value: float | None, as_json: bool, admin_url: str, db: str) -> None:
    """Pause, resume, change the speed (scale VALUE) of, or seek (VALUE seconds) a playback (MANSRTSP INFO)."""
    body: dict[str, Any] = {"action": action}
    if action in ("scale", "seek"):
        if value is None:
            raise click.UsageError(f"{action} needs a VALUE")
        body["scale" if action == "scale" else "position"] = value
    row = _client(admin_url, db).call("POST", f"/api/sessions/{urllib.parse.quote(ident)}/control", body, timeout=60)
    _done(row, as_json, f"{action} sent to session {row['id']} ({'paused' if row['paused'] else 'playing'}, "
          f"scale {row['scale']:g})")  # fmt: skip



@main.command()
@click.argument("device_id", metavar="DEVICE")
@click.argument("wav", metavar="FILE.wav", type=click.Path(exists=True, dir_okay=False, readable=True))
@click.option("--channel", help="The 137 voice output, or DEVICE itself for all its outputs (default: its only one).")
@click.option("--transport", type=click.Choice(TRANSPORTS),
              help="Refuse the device's audio INVITE unless it offers this (platform's side); default: as it offers.")
@click.option("--no-wait", is_flag=True, help="Return once the audio flows (end it with: gb28181 stop SESSION).")
@json_option
@admin_option
@db_option
def broadcast(device_id: str, wav: str, channel: str | None, transport: str | None, no_wait: bool, as_json: bool,
              admin_url: str, db: str) -> None:  # fmt: skip
    """Voice broadcast of FILE.wav to DEVICE (GB/T 28181 §9.12): Notify Broadcast, the device INVITEs us for audio,
    G.711 A-law RTP in real time, BYE at the end. FILE.wav: PCM 8- or 16-bit, mono or stereo, 8000 Hz."""
    try:
        data = Path(wav).read_bytes()
    except OSError as exc:
        raise click.ClickException(f"cannot read {wav}: {exc.strerror}") from exc
    query = {k: v for k, v in {"channel": channel, "transport": transport, "wait": "0" if no_wait else "1"}.items()
             if v is not None}  # fmt: skip
    # the platform answers when the file has been sent (an hour at most, gb28181/media/wav.py) or once it flows
    answer = _client(admin_url, db).raw("POST", f"/api/devices/{urllib.parse.quote(device_id)}/broadcast", data,
                                        "audio/wav", query, timeout=120 if no_wait else 3720)  # fmt: skip
    row = json.loads(answer)
    if row.get("error"):
        raise click.ClickException(f"broadcast {row['id']} to {row['channel']}: {row['reason']}")
    if no_wait:
        text = (f"broadcast {row['id']} to {row['channel']} of {row['device_id']}: {row['seconds']:g} s over "
                f"{row['transport']}, SSRC {row['ssrc']}\nstop it with: gb28181 stop {row['id']}")
    else:
        text = (f"broadcast {row['id']} to {row['channel']} of {row['device_id']}: {row['sent_seconds']:g} of "
                f"{row['seconds']:g} s sent ({row['packets']} packets over {row['transport']}, SSRC {row['ssrc']}); "
                f"{row['reason'] or row['state']}")
    _done(row, as_json, text)

# ---------------------------------------------------------------------------------------------- hardening (issue 9)
@main.command()
@click.option("--since", help="ISO time, epoch seconds, or -1h / -30m / -2d.")
@click.option("--limit", default=1000, show_default=True, type=click.IntRange(1, 100000))
@json_option
@admin_option
@db_option
def audit(since: str | None, limit: int, as_json: bool, admin_url: str, db: str) -> None:
    """The audit log of operator actions: who did what, when, and how it ended (HTTP status)."""
    rows = _client(admin_url, db).call("GET", "/api/audit", query={"since": since, "limit": limit})
    _print_rows(rows, ["at", "who", "action", "target", "status", "detail"], as_json)


@main.command()
@json_option
@admin_option
@db_option
def lockouts(as_json: bool, admin_url: str, db: str) -> None:
    """(source IP, device ID) pairs locked out after failed digests, and for how long."""
    rows = _client(admin_url, db).call("GET", "/api/lockouts")
    _print_rows(rows, ["source", "device_id", "seconds_left", "until", "lockouts"], as_json)


@main.command()
@click.argument("device_id")
@click.option("--format", "fmt", type=click.Choice(["text", "html", "json"]), default="text", show_default=True)
@click.option("--output", type=click.Path(dir_okay=False, writable=True), help="Write the report here (else stdout).")
@click.option("--only", "only", help="Comma-separated clause IDs or prefixes (register, catalog.sumnum, ...).")
@click.option("--timeout", type=click.FloatRange(1, 3600), default=60, show_default=True, help="Run budget in s.")
@admin_option
@db_option
def conformance(
    device_id: str, fmt: str, output: str | None, only: str | None, timeout: float, admin_url: str, db: str
) -> None:
    """Judge DEVICE against the GB/T 28181 clauses (issue 11): its traced traffic and answers to probes, each clause
    PASS / WARN / FAIL / SKIP with why and evidence. Start it before the device registers to judge registration too.
    Exit status 1 when a clause FAILs."""
    from gb28181.conformance.render import render  # the CLI's own rendering of the API's JSON report

    path = f"/api/devices/{urllib.parse.quote(device_id)}/conformance"
    clauses = [c.strip() for c in (only or "").split(",") if c.strip()]
    report = _client(admin_url, db).call("POST", path, {"timeout": timeout, "only": clauses}, timeout=timeout + 60)
    text = render(report, fmt)
    if output:
        try:
            Path(output).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise click.ClickException(f"cannot write {output}: {exc}") from exc
        click.echo(report["summary"], err=True)
    else:
        click.echo(text, nl=False)
    if report["counts"].get("FAIL"):
        sys.exit(1)
@main.command()
@click.option("--keep", is_flag=True, help="Leave the platform and the devices running (Ctrl-C stops them).")
@click.option("--seconds", type=click.IntRange(1, 60), default=5, show_default=True, help="Length of the recording.")
@click.option("--dir", "workdir", type=click.Path(file_okay=False), help="Work directory (default: a new temp dir).")
def demo(keep: bool, seconds: int, workdir: str | None) -> None:
    """A platform and a small county of simulated devices: registration, catalogs, one recorded channel."""
    from gb28181.simulator import SimulatorError
    from gb28181.simulator import demo as demo_

    try:
        status = asyncio.run(demo_.run_demo(Path(workdir) if workdir else None, keep=keep, seconds=seconds))
    except SimulatorError as exc:
        click.echo(f"gb28181 demo: {exc}", err=True)
        sys.exit(demo_.EXIT_FAILED)
    sys.exit(status)




@main.command()
@click.argument("device_id")
@click.option("--seconds", type=click.FloatRange(min=0, min_open=True, max=86400), help="Stop after N seconds.")
@json_option
@admin_option
@db_option
def trace(device_id: str, seconds: float | None, as_json: bool, admin_url: str, db: str) -> None:
    """Print DEVICE's SIP exchanges live as a ladder (until Ctrl-C or --seconds): time, direction, method or status,
    Call-ID, CSeq and the platform's reason for a refusal. --json prints the NDJSON stream as received."""
    client = _client(admin_url, db)
    query = {"seconds": seconds} if seconds else None
    try:
        for row in client.stream(f"/api/devices/{urllib.parse.quote(device_id)}/trace", query=query):
            if as_json:
                click.echo(json.dumps(row, ensure_ascii=False))
            elif row.get("type") == "sip":
                click.echo(trace_mod.ladder(row, str(row.get("time", ""))[11:23]))
            elif row.get("type") == "start":
                where = f" at {row['address']}" if row.get("address") else ""
                state = "registered" if row.get("registered") else ("known, not registered" if row.get("known")
                                                                     else "not known to the platform")  # fmt: skip
                click.echo(f"tracing {device_id} ({state}{where}); Ctrl-C to stop", err=True)
            elif row.get("type") == "dropped":
                click.echo(f"... {row.get('count')} exchanges dropped (output too slow)", err=True)
    except KeyboardInterrupt:
        pass


@main.command()
@click.argument("target", type=click.Path(dir_okay=False))
@click.option("--db", default="./gb28181.db", show_default=True, help="The registry database to copy.")
@json_option
def backup(target: str, db: str, as_json: bool) -> None:
    """Copy the registry database to TARGET, consistently, while the server runs (SQLite online backup), and
    check the copy (integrity_check). TARGET must not exist."""
    from registry.sqlite import backup as backup_db
    from registry.store import StoreError

    try:
        result = backup_db(db, target)
    except StoreError as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(json.dumps(result))
    else:
        click.echo(f"{result['path']}: {result['bytes']} bytes, schema version {result['schema_version']}, "
                   "integrity ok")  # fmt: skip


if __name__ == "__main__":
    main()
