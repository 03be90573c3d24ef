"""What a simulated device answers to the platform's MANSCDP queries and controls (GB/T 28181-2022 Appendix A),
as body bytes in its profile's style: packet size (App.M), charset, 2016 or 2022 fields.

Pure functions of the device's inventory and the wall time passed in; DeviceControl and DeviceConfig change the
inventory (guard, recording, presets, keepalive settings) and say so in their result.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from gb28181.manscdp import Envelope, ManscdpError
from gb28181.manscdp.codec import decode as decode_message
from gb28181.manscdp.codec import encode, encode_catalog_packets
from gb28181.manscdp.control import (
    AlarmCmd,
    ControlError,
    GuardCmd,
    PtzCmd,
    RecordCmd,
    TeleBoot,
    parse_control_body,
)
from gb28181.manscdp.messages import (
    AlarmNotify,
    AlarmStatusItem,
    BasicParam,
    CatalogItem,
    CatalogNotify,
    ConfigDownloadQuery,
    ConfigDownloadResponse,
    DeviceConfig,
    DeviceConfigResponse,
    DeviceInfoResponse,
    DeviceStatusResponse,
    KeepaliveNotify,
    Message,
    MobilePositionNotify,
    PresetItem,
    PresetResponse,
    RecordInfoQuery,
    RecordInfoResponse,
    RecordItem,
    Unknown,
    VideoParamOpt,
)
from gb28181.manscdp.ptz import PtzOp
from gb28181.simulator.inventory import Inventory

log = logging.getLogger("gb28181.simulator")

CST = timezone(timedelta(hours=8))  # device clocks in the field run on Beijing time, without an offset
MAX_RECORDS = 96
_TIME = "%Y-%m-%dT%H:%M:%S"


def body(inv: Inventory, message: Message) -> bytes:
    """Encode in the profile's charset; ``utf8-declared-gb2312`` writes UTF-8 bytes under a GB2312 declaration."""
    p = inv.profile
    if p.has("utf8-declared-gb2312"):
        return encode(message, charset="UTF-8").replace(b'encoding="UTF-8"', b'encoding="GB2312"', 1)
    return encode(message, charset=p.charset)


def keepalive(inv: Inventory, sn: int) -> bytes:
    """A.2.5.2: Status OK, and the faulty channels (video lost) in Info/DeviceID."""
    faulty = tuple(c.id for c in inv.channels if c.vlost)
    return body(inv, KeepaliveNotify(sn=sn, device_id=inv.device_id, status="OK", info_device_ids=faulty))


def catalog(inv: Inventory, sn: int, server_id: str) -> list[bytes]:
    """A.2.6.4 in serial packets of ``catalog_per_packet`` items (App.M)."""
    items = inv.catalog_items(server_id)
    p = inv.profile
    if p.has("utf8-declared-gb2312"):
        packets = encode_catalog_packets(items, sn, inv.device_id, per_packet=p.catalog_per_packet, charset="UTF-8")
        return [b.replace(b'encoding="UTF-8"', b'encoding="GB2312"', 1) for b in packets]
    return list(encode_catalog_packets(items, sn, inv.device_id, per_packet=p.catalog_per_packet, charset=p.charset))


def catalog_notify(inv: Inventory, sn: int, server_id: str, channel_ids: list[str], event: str) -> bytes:
    """2022 App.N.4.3: a catalog change NOTIFY; status events carry the ID and Event only."""
    items = []
    for cid in channel_ids:
        ch = inv.channel(cid)
        if ch is None:
            continue
        if event in ("ADD", "UPDATE"):
            items.append(inv.item(ch, server_id, event))
        else:
            items.append(CatalogItem(device_id=ch.id, event=event))
    return body(inv, CatalogNotify(sn=sn, device_id=inv.device_id, sum_num=len(items), items=tuple(items)))


def alarm(inv: Inventory, sn: int, channel_id: str, wall: float, *, description: str = "视频动检") -> bytes:
    """A.2.5.3: a video alarm (AlarmMethod 5, AlarmType 2 motion detection), as Hikvision/Dahua send it."""
    return body(
        inv,
        AlarmNotify(
            sn=sn, device_id=channel_id, alarm_priority=4, alarm_method=5, alarm_time=local_time(wall),
            alarm_description=description, alarm_type=2,
        ),
    )  # fmt: skip


def position(inv: Inventory, sn: int, wall: float, tick: int) -> bytes:
    """A.2.5.6 (flat form): the camera drifts a little each report, like a patrol car."""
    cam = inv.videos[0] if inv.videos else None
    lon = (cam.longitude if cam and cam.longitude else 118.38) + tick * 0.0001
    lat = (cam.latitude if cam and cam.latitude else 31.33) + tick * 0.00005
    return body(
        inv,
        MobilePositionNotify(
            sn=sn, device_id=inv.device_id, time=local_time(wall), longitude=round(lon, 6), latitude=round(lat, 6),
            speed=30.0, direction=45.0, altitude=12.0,
        ),
    )  # fmt: skip


def local_time(wall: float) -> str:
    return datetime.fromtimestamp(wall, CST).strftime(_TIME)


@dataclass
class Outcome:
    """What a query or control produced: bodies to MESSAGE back, and effects the device must act on."""

    bodies: list[bytes] = field(default_factory=list)
    reboot: bool = False
    changed: list[str] = field(default_factory=list)  # human-readable state changes, for the log
    error: str | None = None  # unanswerable: the reason (logged; the MESSAGE still got its 200)


def answer(inv: Inventory, env: Envelope, raw: bytes, wall: float, server_id: str) -> Outcome:
    """The device's reaction to a Query or Control MESSAGE (the 200 to the MESSAGE itself is the caller's)."""
    cmd = env.cmd_type.lower()
    sn = env.sn or 0
    target = env.device_id or inv.device_id
    if env.kind == "Query":
        if cmd == "catalog":
            return Outcome(catalog(inv, sn, server_id))
        if cmd == "deviceinfo":
            return Outcome([device_info(inv, sn)])
        if cmd == "devicestatus":
            return Outcome([device_status(inv, sn, wall)])
        if cmd == "configdownload":
            return _config_download(inv, sn, raw)
        if cmd == "presetquery":
            return _presets(inv, sn, target)
        if cmd == "recordinfo":
            return _records(inv, sn, target, raw, wall)
    elif env.kind == "Control":
        if cmd == "devicecontrol":
            return _control(inv, sn, target, raw)
        if cmd == "deviceconfig":
            return _config(inv, sn, raw)
    return Outcome(error=f"{env.kind} {env.cmd_type} is not something this device answers")


def device_info(inv: Inventory, sn: int) -> bytes:
    p = inv.profile
    legacy = p.gb_version == "2016" and p.kind == "nvr"  # Dahua/Tiandy NVRs still send DeviceType/MaxCamera
    return body(
        inv,
        DeviceInfoResponse(
            sn=sn, device_id=inv.device_id, result="OK", device_name=inv.name, manufacturer=p.manufacturer,
            model=p.model, firmware=p.firmware, channel=len(inv.videos),
            device_type="NVR" if legacy else None, max_camera=len(inv.videos) if legacy else None,
            max_alarm=p.alarm_inputs if legacy else None,
        ),
    )  # fmt: skip


def device_status(inv: Inventory, sn: int, wall: float) -> bytes:
    """A.2.6.6: Record follows RecordCmd; each alarm input's DutyStatus follows GuardCmd and active alarms."""
    duty = [
        AlarmStatusItem(
            device_id=c.id,
            duty_status="ALARM" if c.id in inv.alarming else ("ONDUTY" if inv.guard_armed else "OFFDUTY"),
        )
        for c in inv.channels
        if c.type_code == 134
    ]
    return body(
        inv,
        DeviceStatusResponse(
            sn=sn, device_id=inv.device_id, result="OK", online="ONLINE", status="OK", encode="ON",
            record="ON" if inv.recording else "OFF", device_time=local_time(wall), alarm_status=tuple(duty),
        ),
    )  # fmt: skip


def basic_param(inv: Inventory) -> BasicParam:
    return BasicParam(
        name=inv.name, device_id=inv.device_id, expiration=inv.setting("register_expires"),
        heart_beat_interval=inv.setting("keepalive_interval"), heart_beat_count=inv.setting("keepalive_count"),
        position_capability=0,
    )  # fmt: skip


def _config_download(inv: Inventory, sn: int, raw: bytes) -> Outcome:
    """A.2.6.8: BasicParam and VideoParamOpt; other ConfigTypes are answered Result ERROR."""
    try:
        query = decode_message(raw).message
    except ManscdpError as exc:
        return Outcome(error=f"ConfigDownload unreadable: {exc.reason}")
    wanted = {t.strip() for t in query.config_type} if isinstance(query, ConfigDownloadQuery) else set()
    wanted = wanted or {"BasicParam"}
    known = {"BasicParam", "VideoParamOpt"}
    reply = ConfigDownloadResponse(
        sn=sn,
        device_id=inv.device_id,
        result="OK" if wanted <= known else "ERROR",
        reason=None if wanted <= known else f"unsupported ConfigType {'/'.join(sorted(wanted - known))}",
        basic_param=basic_param(inv) if "BasicParam" in wanted else None,
        video_param_opt=VideoParamOpt(download_speed="1/2/4/8", resolution="5/6")
        if "VideoParamOpt" in wanted
        else None,
    )
    return Outcome([body(inv, reply)])


def _presets(inv: Inventory, sn: int, target: str) -> Outcome:
    ch = inv.channel(target) or (inv.videos[0] if target == inv.device_id and inv.videos else None)
    if ch is None:
        return Outcome([body(inv, PresetResponse(sn=sn, device_id=target, result="ERROR", reason="no such channel"))])
    items = tuple(PresetItem(preset_id=k, preset_name=v) for k, v in sorted(ch.presets.items()))
    return Outcome([body(inv, PresetResponse(sn=sn, device_id=target, sum_num=len(items), items=items))])


def _parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.strip().replace(" ", "T")).replace(tzinfo=None)
    except ValueError:
        return None


def _records(inv: Inventory, sn: int, target: str, raw: bytes, wall: float) -> Outcome:
    """A.2.6.7: a synthetic hour-by-hour recording list over the asked range (up to now, at most 96 files), every
    fourth hour an alarm recording, in ``records_per_packet`` serial packets."""
    try:
        query = decode_message(raw).message
    except ManscdpError as exc:
        return Outcome(error=f"RecordInfo unreadable: {exc.reason}")
    if not isinstance(query, RecordInfoQuery):
        return Outcome(error="RecordInfo query without its fields")
    start, end = _parse_time(query.start_time), _parse_time(query.end_time)
    now = datetime.fromtimestamp(wall, CST).replace(tzinfo=None)
    if start is None or end is None or end <= start:
        bad = RecordInfoResponse(sn=sn, device_id=target, result="ERROR", reason="bad StartTime/EndTime", sum_num=0)
        return Outcome([body(inv, bad)])
    kind = (query.type or "all").lower()
    items: list[RecordItem] = []
    t = start.replace(minute=0, second=0, microsecond=0)
    for _ in range(24 * 366):  # bounded walk over the hours of the range
        if t >= min(end, now) or len(items) >= MAX_RECORDS:
            break
        seg_start, seg_end = max(t, start), min(t + timedelta(hours=1), end, now)
        rtype = "alarm" if t.hour % 4 == 0 else "time"
        if seg_end > seg_start and kind in ("all", rtype):
            items.append(
                RecordItem(
                    device_id=target, name=inv.name, file_path=f"/record/{target}/{seg_start:%Y%m%d%H%M%S}.mp4",
                    address="Address", start_time=seg_start.strftime(_TIME), end_time=seg_end.strftime(_TIME),
                    secrecy=0, type=rtype, file_size=int((seg_end - seg_start).total_seconds()) * 512_000 // 8,
                ),
            )  # fmt: skip
        t += timedelta(hours=1)
    per = inv.profile.records_per_packet
    if not items:
        return Outcome([body(inv, RecordInfoResponse(sn=sn, device_id=target, name=inv.name, sum_num=0))])
    packets = [
        body(inv, RecordInfoResponse(sn=sn, device_id=target, name=inv.name, sum_num=len(items), items=tuple(part)))
        for part in (items[i : i + per] for i in range(0, len(items), per))
    ]
    return Outcome(packets)


def _ack(inv: Inventory, sn: int, target: str, ok: bool = True, reason: str | None = None) -> bytes:
    return body(
        inv, Unknown(root="Response", cmd_type="DeviceControl", sn=sn, device_id=target,
                     result="OK" if ok else "ERROR", reason=reason),
    )  # fmt: skip


def _control(inv: Inventory, sn: int, target: str, raw: bytes) -> Outcome:
    """A.2.3.1 DeviceControl, reflected in state. Guard, record and alarm reset are answered with a Response
    (A.2.6.2); PTZ and TeleBoot have none in the standard: the MESSAGE's 200 is their only acknowledgement."""
    try:
        command = parse_control_body(raw)
    except (ManscdpError, ControlError) as exc:
        return Outcome([_ack(inv, sn, target, False, str(exc)[:100])], error=f"DeviceControl refused: {exc}")
    if isinstance(command, GuardCmd):
        inv.guard_armed = command.arm
        return Outcome([_ack(inv, sn, target)], changed=[f"guard {'armed' if command.arm else 'disarmed'}"])
    if isinstance(command, RecordCmd):
        inv.recording = command.start
        return Outcome([_ack(inv, sn, target)], changed=[f"recording {'on' if command.start else 'off'}"])
    if isinstance(command, AlarmCmd):
        inv.alarming.clear()
        return Outcome([_ack(inv, sn, target)], changed=["alarms reset"])
    if isinstance(command, TeleBoot):
        return Outcome(reboot=True, changed=["rebooting (TeleBoot)"])
    if isinstance(command, PtzCmd):
        ch = inv.channel(target) or (inv.videos[0] if inv.videos else None)
        op, number = command.command.op, command.command.preset
        if ch is None:
            return Outcome(error=f"PTZ for unknown channel {target}")
        if op == PtzOp.PRESET_SET:
            ch.presets[number] = command.preset_name or f"预置点{number}"
            return Outcome(changed=[f"{ch.id} preset {number} set"])
        if op == PtzOp.PRESET_DELETE:
            ch.presets.pop(number, None)
            return Outcome(changed=[f"{ch.id} preset {number} deleted"])
        return Outcome(changed=[f"{ch.id} PTZ {op.value}"])
    return Outcome(changed=[f"{type(command).__name__} taken"])


def _config(inv: Inventory, sn: int, raw: bytes) -> Outcome:
    """A.2.3.2 DeviceConfig BasicParam: name, expiry and keepalive settings change (kept until reboot)."""
    try:
        message = decode_message(raw).message
    except ManscdpError as exc:
        return Outcome(error=f"DeviceConfig unreadable: {exc.reason}")
    changed: list[str] = []
    if isinstance(message, DeviceConfig) and message.basic_param is not None:
        bp = message.basic_param
        if bp.name:
            inv.name = bp.name
            changed.append(f"name {bp.name}")
        for attr, value in (("register_expires", bp.expiration), ("keepalive_interval", bp.heart_beat_interval),
                            ("keepalive_count", bp.heart_beat_count)):  # fmt: skip
            if value is not None and 0 < value <= 86400:
                inv.settings[attr] = value
                changed.append(f"{attr} {value}")
    reply = DeviceConfigResponse(sn=sn, device_id=inv.device_id, result="OK")
    return Outcome([body(inv, reply)], changed=changed)
