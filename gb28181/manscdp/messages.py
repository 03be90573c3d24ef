"""MANSCDP messages (GB/T 28181-2016/2022 Appendix A) as frozen dataclasses, one per CmdType and kind.

Status -- covered: Query Catalog/DeviceInfo/DeviceStatus/RecordInfo/Alarm/ConfigDownload/PresetQuery/
MobilePosition and the 2022 HomePositionQuery/CruiseTrackListQuery/CruiseTrackQuery/PTZPosition/SDCardStatus;
Control DeviceConfig (BasicParam, VideoParamOpt, SnapShotConfig; other config blocks kept in ``extra``);
Response to all of those plus Alarm and Broadcast, each with Result/Reason; Notify Keepalive, Catalog (items with
Event), Alarm, MediaStatus, Broadcast, MobilePosition (flat 2016 and DeviceList 2022 forms),
UploadSnapShotFinished, VideoUploadNotify, DeviceUpgradeResult; ``Unknown`` for anything else.
Not here: DeviceControl and PTZCmd (ptz.py, control.py); their bodies decode as ``Unknown`` unless registered
with ``codec.register``. The standard's own content of SVACEncodeConfig, VideoRecordPlan, OSDConfig... (not in
the spec digest) is kept as ``extra`` paths. Values are kept as sent, not judged: times stay strings, placeholder
CivilCodes stay, "ParentID = our server ID means no parent" is the catalog layer's rule; Uniview's ConfigDownload
answer under another element name is not matched by structure (it lands in ``extra``).
Tested: encode -> decode of every class (hypothesis), 58 fixtures with written expectations, fuzzing.

Each field carries its XML path in its metadata (``Info/PTZType``; ``DeviceList@Num`` for an attribute), which
codec.py reads both ways: element order and tag case do not matter on input; unknown leaf elements land in
``extra`` by path (``{"StreamNum": "2", "Vendor/Flag": "1"}``) and are written back; a value that does not convert
(``<Port>abc</Port>``, ``<Longitude>NaN</Longitude>``) is None with its text kept in ``extra``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

# Field conversions: str, int, uint (SN: digits only), float (finite only), point (PointType 1/2/3/9),
# ids ("/"-joined tuple), multi (repeated leaf -> tuple), list (container/ItemTag -> tuple of nodes),
# node (one nested node), num (an attribute, int).
SEQUENCES = ("ids", "multi", "list")


def x(path: str, conv: str = "str", *, alt: tuple[str, ...] = (), item: type | None = None) -> Any:
    """A field mapped to the XML ``path`` (relative to its parent element), read also from ``alt`` paths."""
    meta = {"path": path, "conv": conv, "alt": alt, "item": item}
    return field(default=() if conv in SEQUENCES else None, metadata=meta)


class ResultError(Exception):
    """A response said ``<Result>ERROR</Result>`` (or anything but OK): the request failed (A.2.1.5)."""

    def __init__(self, cmd_type: str, result: str, reason: str | None) -> None:
        super().__init__(f"{cmd_type}: {result}" + (f" ({reason})" if reason else ""))
        self.cmd_type, self.result, self.reason = cmd_type, result, reason


_FIXUPS: dict[type, tuple[tuple[str, ...], tuple[tuple[str, str], ...]]] = {}


def _fixups(cls: type) -> tuple[tuple[str, ...], tuple[tuple[str, str], ...]]:
    """(sequence fields, (list field, its Num field) pairs) of a node class, computed once."""
    found = _FIXUPS.get(cls)
    if found is None:
        fs = [f for f in dataclasses.fields(cls) if "conv" in f.metadata]
        seqs = tuple(f.name for f in fs if f.metadata["conv"] in SEQUENCES)
        nums = {f.metadata["path"].split("@")[0].lower(): f.name for f in fs if f.metadata["conv"] == "num"}
        pairs = tuple(
            (f.name, nums[f.metadata["path"].rsplit("/", 1)[0].lower()])
            for f in fs
            if f.metadata["conv"] == "list" and f.metadata["path"].rsplit("/", 1)[0].lower() in nums
        )
        found = _FIXUPS[cls] = (seqs, pairs)
    return found


@dataclass(frozen=True, kw_only=True)
class Node:
    """Any element mapped to a dataclass. ``extra``: unknown leaf elements (and unconvertible values) by path."""

    extra: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        seqs, pairs = _fixups(type(self))
        for name in seqs:  # lists given by the caller become tuples
            value = getattr(self, name)
            if isinstance(value, str):  # one value, not its characters ("BasicParam", not B/a/s/i/c...)
                object.__setattr__(self, name, (value,))
            elif not isinstance(value, tuple):
                object.__setattr__(self, name, tuple(value))
        for items, num in pairs:  # a list built without its Num gets its length (A.2.6: Num = items here)
            if getattr(self, num) is None and getattr(self, items):
                object.__setattr__(self, num, len(getattr(self, items)))


@dataclass(frozen=True, kw_only=True)
class Message(Node):
    """Common header of every body (A.2.3.1.1 / A.2.4.1 / A.2.5.1 / A.2.6.1): CmdType (from the class), SN,
    DeviceID, 2022 repeated ExtraInfo."""

    ROOT: ClassVar[str] = ""
    CMD: ClassVar[str] = ""
    ALIASES: ClassVar[tuple[str, ...]] = ()  # other CmdType spellings answered in the field

    sn: int | None = x("SN", "uint")
    device_id: str | None = x("DeviceID")
    extra_info: tuple[str, ...] = x("ExtraInfo", "multi")

    @property
    def ok(self) -> bool:
        return True

    def raise_for_result(self) -> None:
        """Raise ResultError when this is a response whose Result is not OK."""


@dataclass(frozen=True, kw_only=True)
class Response(Message):
    """A ``<Response>``: Result (resultType OK/ERROR, A.2.1.5) and Reason. Anything but OK is a failure; a
    response without Result (Catalog, RecordInfo...) is an answer, not a failure."""

    ROOT: ClassVar[str] = "Response"
    result: str | None = x("Result")
    reason: str | None = x("Reason")

    @property
    def ok(self) -> bool:
        return self.result is None or self.result.strip().upper() == "OK"

    def raise_for_result(self) -> None:
        if not self.ok:
            raise ResultError(self.CMD, self.result or "", self.reason)


@dataclass(frozen=True, kw_only=True)
class Query(Message):
    ROOT: ClassVar[str] = "Query"


@dataclass(frozen=True, kw_only=True)
class Notify(Message):
    ROOT: ClassVar[str] = "Notify"


@dataclass(frozen=True, kw_only=True)
class Control(Message):
    ROOT: ClassVar[str] = "Control"


# ------------------------------------------------------------------------------------------- Catalog
# A.2.4.3 query, A.2.6.4 response, A.2.1.9 itemType (2016 fields and the 2022 Info extension); catalog
# NOTIFY items carry Event (2022 App.N.4.3.2).

POINT_CLASSES = (1, 2, 3, 9)
STATUS_ON = frozenset({"ON", "ONLINE", "OK"})  # seen in the wild besides ON (spec digest §13 quirk 8)
STATUS_OFF = frozenset({"OFF", "OFFLINE"})
CATALOG_EVENTS = ("ON", "OFF", "VLOST", "DEFECT", "ADD", "DEL", "UPDATE")


@dataclass(frozen=True, kw_only=True)
class CatalogItem(Node):
    device_id: str | None = x("DeviceID")
    event: str | None = x("Event")  # NOTIFY only: ON OFF VLOST DEFECT ADD DEL UPDATE
    name: str | None = x("Name")
    manufacturer: str | None = x("Manufacturer")
    model: str | None = x("Model")
    owner: str | None = x("Owner")  # 2016
    civil_code: str | None = x("CivilCode")  # kept as sent: placeholders ("CivilCode", 10 digits) exist
    block: str | None = x("Block")
    address: str | None = x("Address")
    parental: int | None = x("Parental", "int")  # 1/0; Hikvision sends 65535 (kept; see has_children)
    parent_ids: tuple[str, ...] = x("ParentID", "ids")  # 2022: multi-valued, "/"-separated
    safety_way: int | None = x("SafetyWay", "int")  # 2016
    register_way: int | None = x("RegisterWay", "int")
    security_level_code: str | None = x("SecurityLevelCode")  # 2022
    cert_num: str | None = x("CertNum")  # 2016 certificate fields
    certifiable: int | None = x("Certifiable", "int")
    err_code: int | None = x("ErrCode", "int")
    end_time: str | None = x("EndTime")
    secrecy: int | None = x("Secrecy", "int")
    ip_address: str | None = x("IPAddress")  # a string: Dahua NVRs put an RTSP URL here
    port: int | None = x("Port", "int")
    password: str | None = x("Password")
    status: str | None = x("Status")  # ON/OFF as sent; see is_on
    longitude: float | None = x("Longitude", "float")  # finite only; placeholders such as 0.0 kept
    latitude: float | None = x("Latitude", "float")
    business_group_id: str | None = x("BusinessGroupID")  # 2022 item level
    # Info (A.2.1.9 Table; 2016 subset first). PTZType is also read directly under Item (spec digest §13 q9).
    ptz_type: int | None = x("Info/PTZType", "int", alt=("PTZType",))
    position_type: int | None = x("Info/PositionType", "int")  # 2016
    room_type: int | None = x("Info/RoomType", "int")
    use_type: int | None = x("Info/UseType", "int")  # 2016
    supply_light_type: int | None = x("Info/SupplyLightType", "int")
    direction_type: int | None = x("Info/DirectionType", "int")
    resolution: str | None = x("Info/Resolution")  # "/"-separated f= codes
    download_speed: str | None = x("Info/DownloadSpeed")  # e.g. "1/2/4/8"
    svc_space_support_mode: int | None = x("Info/SVCSpaceSupportMode", "int")
    svc_time_support_mode: int | None = x("Info/SVCTimeSupportMode", "int")
    info_business_group_id: str | None = x("Info/BusinessGroupID")  # 2016 place of BusinessGroupID
    point_class: int | None = x("Info/PointType", "point", alt=("Info/PoType",))  # 2022: 1, 2, 3, 9 = other
    photoelectric_imaging_type: str | None = x("Info/PhotoelectricImagingType")
    capture_position_type: str | None = x("Info/CapturePositionType")
    stream_number_list: str | None = x("Info/StreamNumberList")
    ssvc_ratio_support_list: str | None = x("Info/SSVCRatioSupportList")
    mobile_device_type: int | None = x("Info/MobileDeviceType", "int")
    horizontal_field_angle: float | None = x("Info/HorizontalFieldAngle", "float")
    vertical_field_angle: float | None = x("Info/VerticalFieldAngle", "float")
    max_view_distance: float | None = x("Info/MaxViewDistance", "float")
    grassroots_code: str | None = x("Info/GrassrootsCode")
    point_common_name: str | None = x("Info/PointCommonName")
    mac: str | None = x("Info/MAC")
    function_type: str | None = x("Info/FunctionType")
    encode_type: str | None = x("Info/EncodeType")
    install_time: str | None = x("Info/InstallTime")
    management_unit: str | None = x("Info/ManagementUnit")
    contact_info: str | None = x("Info/ContactInfo")
    record_save_days: int | None = x("Info/RecordSaveDays", "int")
    industrial_classification: str | None = x("Info/IndustrialClassification")

    @property
    def parent_id(self) -> str | None:
        return self.parent_ids[0] if self.parent_ids else None

    @property
    def has_children(self) -> bool | None:
        """Parental as a flag: 0 is none, anything else (1, Hikvision's 65535) has children (§13 quirk 7)."""
        return None if self.parental is None else self.parental != 0

    @property
    def is_on(self) -> bool | None:
        """Status read case-insensitively (ON/ONLINE/OK vs OFF/OFFLINE); None when absent or unreadable."""
        s = (self.status or "").strip().upper()
        return True if s in STATUS_ON else False if s in STATUS_OFF else None

    @property
    def group_id(self) -> str | None:
        """BusinessGroupID wherever the device put it (item level in 2022, Info in 2016)."""
        return self.business_group_id or self.info_business_group_id


@dataclass(frozen=True, kw_only=True)
class CatalogQuery(Query):
    """A.2.4.3; also the body of a catalog SUBSCRIBE (App.N). StartTime/EndTime bound the time items were added."""

    CMD: ClassVar[str] = "Catalog"
    start_time: str | None = x("StartTime")
    end_time: str | None = x("EndTime")


@dataclass(frozen=True, kw_only=True)
class CatalogResponse(Response):
    """A.2.6.4, one packet of many (App.M): SumNum = total items, DeviceList Num = items in this packet."""

    CMD: ClassVar[str] = "Catalog"
    sum_num: int | None = x("SumNum", "int")
    num: int | None = x("DeviceList@Num", "num")
    items: tuple[CatalogItem, ...] = x("DeviceList/Item", "list", item=CatalogItem)


@dataclass(frozen=True, kw_only=True)
class CatalogNotify(Notify):
    """Catalog change NOTIFY (2022 App.N.4.3): items with Event; SumNum equals DeviceList Num."""

    CMD: ClassVar[str] = "Catalog"
    sum_num: int | None = x("SumNum", "int")
    num: int | None = x("DeviceList@Num", "num")
    items: tuple[CatalogItem, ...] = x("DeviceList/Item", "list", item=CatalogItem)


# ------------------------------------------------------------------------------------------- device queries


@dataclass(frozen=True, kw_only=True)
class DeviceInfoQuery(Query):
    CMD: ClassVar[str] = "DeviceInfo"  # A.2.4.4


@dataclass(frozen=True, kw_only=True)
class DeviceInfoResponse(Response):
    """A.2.6.5. DeviceType/MaxCamera/MaxAlarm: 2016-era fields that Dahua and Tiandy still send."""

    CMD: ClassVar[str] = "DeviceInfo"
    device_name: str | None = x("DeviceName")
    manufacturer: str | None = x("Manufacturer")
    model: str | None = x("Model")
    firmware: str | None = x("Firmware")
    channel: int | None = x("Channel", "int")
    device_type: str | None = x("DeviceType")
    max_camera: int | None = x("MaxCamera", "int")
    max_alarm: int | None = x("MaxAlarm", "int")


@dataclass(frozen=True, kw_only=True)
class DeviceStatusQuery(Query):
    CMD: ClassVar[str] = "DeviceStatus"  # A.2.4.2


@dataclass(frozen=True, kw_only=True)
class AlarmStatusItem(Node):
    device_id: str | None = x("DeviceID")
    duty_status: str | None = x("DutyStatus")  # ONDUTY | OFFDUTY | ALARM


@dataclass(frozen=True, kw_only=True)
class DeviceStatusResponse(Response):
    """A.2.6.6. ``Alarmstatus`` with a lower-case s, as the standard spells it (read in any case)."""

    CMD: ClassVar[str] = "DeviceStatus"
    online: str | None = x("Online")  # ONLINE | OFFLINE
    status: str | None = x("Status")  # OK | ERROR
    encode: str | None = x("Encode")  # ON | OFF
    record: str | None = x("Record")  # ON | OFF
    device_time: str | None = x("DeviceTime")
    alarm_status_num: int | None = x("Alarmstatus@Num", "num")
    alarm_status: tuple[AlarmStatusItem, ...] = x("Alarmstatus/Item", "list", item=AlarmStatusItem)


# ------------------------------------------------------------------------------------------- RecordInfo


@dataclass(frozen=True, kw_only=True)
class RecordInfoQuery(Query):
    """A.2.4.5. Send Type (Dahua NVRs require it); IndistinctQuery 0/1; 2022 StreamNumber/AlarmMethod/AlarmType."""

    CMD: ClassVar[str] = "RecordInfo"
    start_time: str | None = x("StartTime")
    end_time: str | None = x("EndTime")
    file_path: str | None = x("FilePath")
    address: str | None = x("Address")
    secrecy: int | None = x("Secrecy", "int")
    type: str | None = x("Type")  # time | alarm | manual | all
    recorder_id: str | None = x("RecorderID")
    indistinct_query: int | None = x("IndistinctQuery", "int")
    stream_number: int | None = x("StreamNumber", "int")
    alarm_method: str | None = x("AlarmMethod")
    alarm_type: str | None = x("AlarmType")


@dataclass(frozen=True, kw_only=True)
class RecordItem(Node):
    """A.2.1.10 itemFileType; FileSize is a common extension; 2022 RecordLocation, StreamNumber."""

    device_id: str | None = x("DeviceID")
    name: str | None = x("Name")
    file_path: str | None = x("FilePath")
    address: str | None = x("Address")
    start_time: str | None = x("StartTime")
    end_time: str | None = x("EndTime")
    secrecy: int | None = x("Secrecy", "int")
    type: str | None = x("Type")
    recorder_id: str | None = x("RecorderID")
    file_size: int | None = x("FileSize", "int")
    record_location: str | None = x("RecordLocation")
    stream_number: int | None = x("StreamNumber", "int")


@dataclass(frozen=True, kw_only=True)
class RecordInfoResponse(Response):
    """A.2.6.7, multi-packet like Catalog; ``SumNum 0`` may come without RecordList."""

    CMD: ClassVar[str] = "RecordInfo"
    name: str | None = x("Name")
    sum_num: int | None = x("SumNum", "int")
    num: int | None = x("RecordList@Num", "num")
    items: tuple[RecordItem, ...] = x("RecordList/Item", "list", item=RecordItem)


# ------------------------------------------------------------------------------------------- configuration


@dataclass(frozen=True, kw_only=True)
class BasicParam(Node):
    """A.2.1.19 (basic parameters); devices answer ConfigDownload with the SIP fields too (Hikvision)."""

    name: str | None = x("Name")
    device_id: str | None = x("DeviceID")
    sip_server_id: str | None = x("SIPServerID")
    sip_server_ip: str | None = x("SIPServerIP")
    sip_server_port: int | None = x("SIPServerPort", "int")
    domain_name: str | None = x("DomainName")
    expiration: int | None = x("Expiration", "int")
    password: str | None = x("Password")
    heart_beat_interval: int | None = x("HeartBeatInterval", "int")
    heart_beat_count: int | None = x("HeartBeatCount", "int")
    position_capability: int | None = x("PositionCapability", "int")


@dataclass(frozen=True, kw_only=True)
class VideoParamOpt(Node):
    download_speed: str | None = x("DownloadSpeed")
    resolution: str | None = x("Resolution")


@dataclass(frozen=True, kw_only=True)
class SnapShotConfig(Node):
    """2022 A.2.3.2: SnapNum 1-10, Interval s, UploadURL (http), SessionID."""

    snap_num: int | None = x("SnapNum", "int")
    interval: int | None = x("Interval", "int")
    upload_url: str | None = x("UploadURL")
    session_id: str | None = x("SessionID")


@dataclass(frozen=True, kw_only=True)
class ConfigDownloadQuery(Query):
    """A.2.4.7: ConfigType, several joined by "/" (BasicParam/VideoParamOpt/...)."""

    CMD: ClassVar[str] = "ConfigDownload"
    config_type: tuple[str, ...] = x("ConfigType", "ids")


@dataclass(frozen=True, kw_only=True)
class ConfigDownloadResponse(Response):
    """A.2.6.8; a device may answer each ConfigType in its own Response with the same SN."""

    CMD: ClassVar[str] = "ConfigDownload"
    basic_param: BasicParam | None = x("BasicParam", "node", item=BasicParam)  # noqa: RUF009 (metadata only)
    video_param_opt: VideoParamOpt | None = x("VideoParamOpt", "node", item=VideoParamOpt)  # noqa: RUF009 (metadata only)
    snap_shot_config: SnapShotConfig | None = x("SnapShotConfig", "node", item=SnapShotConfig)  # noqa: RUF009 (metadata only)


@dataclass(frozen=True, kw_only=True)
class DeviceConfig(Control):
    """A.2.3.2 (send to the device ID, not a channel: spec digest §13 quirk 20)."""

    CMD: ClassVar[str] = "DeviceConfig"
    basic_param: BasicParam | None = x("BasicParam", "node", item=BasicParam)  # noqa: RUF009 (metadata only)
    video_param_opt: VideoParamOpt | None = x("VideoParamOpt", "node", item=VideoParamOpt)  # noqa: RUF009 (metadata only)
    snap_shot_config: SnapShotConfig | None = x("SnapShotConfig", "node", item=SnapShotConfig)  # noqa: RUF009 (metadata only)


@dataclass(frozen=True, kw_only=True)
class DeviceConfigResponse(Response):
    CMD: ClassVar[str] = "DeviceConfig"  # A.2.6.9


# ------------------------------------------------------------------------------------------- PTZ queries


@dataclass(frozen=True, kw_only=True)
class PresetQuery(Query):
    CMD: ClassVar[str] = "PresetQuery"  # A.2.4.8


@dataclass(frozen=True, kw_only=True)
class PresetItem(Node):
    preset_id: int | None = x("PresetID", "int")
    preset_name: str | None = x("PresetName")


@dataclass(frozen=True, kw_only=True)
class PresetResponse(Response):
    CMD: ClassVar[str] = "PresetQuery"  # A.2.6.10; Num 0 when there are none
    sum_num: int | None = x("SumNum", "int")
    num: int | None = x("PresetList@Num", "num")
    items: tuple[PresetItem, ...] = x("PresetList/Item", "list", item=PresetItem)


@dataclass(frozen=True, kw_only=True)
class HomePosition(Node):
    enabled: int | None = x("Enabled", "int")
    reset_time: int | None = x("ResetTime", "int")  # s
    preset_index: int | None = x("PresetIndex", "int")  # 0-255


@dataclass(frozen=True, kw_only=True)
class HomePositionQuery(Query):
    CMD: ClassVar[str] = "HomePositionQuery"  # 2022 A.2.4.10


@dataclass(frozen=True, kw_only=True)
class HomePositionResponse(Response):
    """2022 A.2.6.12. Dahua PTZs answer CmdType ``HomePosition`` (fixtures/manscdp/wild PROVENANCE)."""

    CMD: ClassVar[str] = "HomePositionQuery"
    ALIASES: ClassVar[tuple[str, ...]] = ("HomePosition",)
    home_position: HomePosition | None = x("HomePosition", "node", item=HomePosition)  # noqa: RUF009 (metadata only)


@dataclass(frozen=True, kw_only=True)
class CruiseTrackListQuery(Query):
    CMD: ClassVar[str] = "CruiseTrackListQuery"  # 2022 A.2.4.11


@dataclass(frozen=True, kw_only=True)
class CruiseTrack(Node):
    number: int | None = x("Number", "int")
    name: str | None = x("Name")


@dataclass(frozen=True, kw_only=True)
class CruiseTrackListResponse(Response):
    CMD: ClassVar[str] = "CruiseTrackListQuery"  # 2022 A.2.6.13
    ALIASES: ClassVar[tuple[str, ...]] = ("CruiseTrackList",)
    sum_num: int | None = x("SumNum", "int")
    num: int | None = x("CruiseTrackList@Num", "num")
    tracks: tuple[CruiseTrack, ...] = x("CruiseTrackList/CruiseTrack", "list", item=CruiseTrack)


@dataclass(frozen=True, kw_only=True)
class CruiseTrackQuery(Query):
    CMD: ClassVar[str] = "CruiseTrackQuery"  # 2022 A.2.4.12
    number: int | None = x("Number", "int")  # 0 = the first track


@dataclass(frozen=True, kw_only=True)
class CruisePoint(Node):
    preset_index: int | None = x("PresetIndex", "int")
    stay_time: int | None = x("StayTime", "int")  # s
    speed: int | None = x("Speed", "int")  # 1-15


@dataclass(frozen=True, kw_only=True)
class CruiseTrackResponse(Response):
    CMD: ClassVar[str] = "CruiseTrackQuery"  # 2022 A.2.6.14
    ALIASES: ClassVar[tuple[str, ...]] = ("CruiseTrack",)
    number: int | None = x("Number", "int")
    name: str | None = x("Name")
    sum_num: int | None = x("SumNum", "int")
    num: int | None = x("CruisePointList@Num", "num")
    points: tuple[CruisePoint, ...] = x("CruisePointList/CruisePoint", "list", item=CruisePoint)


@dataclass(frozen=True, kw_only=True)
class PTZPositionQuery(Query):
    CMD: ClassVar[str] = "PTZPosition"  # 2022 A.2.4.13; also a subscription body


@dataclass(frozen=True, kw_only=True)
class PTZPositionResponse(Response):
    CMD: ClassVar[str] = "PTZPosition"  # 2022 A.2.6.15
    pan: float | None = x("Pan", "float")
    tilt: float | None = x("Tilt", "float")
    zoom: float | None = x("Zoom", "float")
    horizontal_field_angle: float | None = x("HorizontalFieldAngle", "float")
    vertical_field_angle: float | None = x("VerticalFieldAngle", "float")
    max_view_distance: float | None = x("MaxViewDistance", "float")


@dataclass(frozen=True, kw_only=True)
class SDCardStatusQuery(Query):
    CMD: ClassVar[str] = "SDCardStatus"  # 2022 A.2.4.14


@dataclass(frozen=True, kw_only=True)
class SDCardInfo(Node):
    id: int | None = x("ID", "int")
    hdd_name: str | None = x("HddName")
    status: str | None = x("Status")  # ok | formatting | unformatted | idle | error
    format_progress: int | None = x("FormatProgress", "int")
    capacity: int | None = x("Capacity", "int")  # MB
    free_space: int | None = x("FreeSpace", "int")  # MB


@dataclass(frozen=True, kw_only=True)
class SDCardStatusResponse(Response):
    CMD: ClassVar[str] = "SDCardStatus"  # 2022 A.2.6.16
    sum_num: int | None = x("SumNum", "int")
    num: int | None = x("SDCardStatusInfo@Num", "num")
    items: tuple[SDCardInfo, ...] = x("SDCardStatusInfo/Item", "list", item=SDCardInfo)


# ------------------------------------------------------------------------------------------- Alarm


@dataclass(frozen=True, kw_only=True)
class AlarmNotify(Notify):
    """A.2.5.3. AlarmMethod 1 phone 2 device 3 SMS 4 GPS 5 video 6 device fault 7 other; Info/AlarmType per
    method; Info/AlarmTypeParam/EventType (intrusion: 1 enter, 2 leave). ``<info>`` (wvp) is read too."""

    CMD: ClassVar[str] = "Alarm"
    alarm_priority: int | None = x("AlarmPriority", "int")  # 1..4
    alarm_method: int | None = x("AlarmMethod", "int")
    alarm_time: str | None = x("AlarmTime")
    alarm_description: str | None = x("AlarmDescription")
    longitude: float | None = x("Longitude", "float")
    latitude: float | None = x("Latitude", "float")
    alarm_type: int | None = x("Info/AlarmType", "int")
    event_type: int | None = x("Info/AlarmTypeParam/EventType", "int")


@dataclass(frozen=True, kw_only=True)
class AlarmQuery(Query):
    """A.2.4.6 (query or subscription): every filter optional; AlarmMethod 0 = all, or "1/2" combinations."""

    CMD: ClassVar[str] = "Alarm"
    start_alarm_priority: int | None = x("StartAlarmPriority", "int")
    end_alarm_priority: int | None = x("EndAlarmPriority", "int")
    alarm_method: str | None = x("AlarmMethod")
    alarm_type: str | None = x("AlarmType")
    start_alarm_time: str | None = x("StartAlarmTime")
    end_alarm_time: str | None = x("EndAlarmTime")


@dataclass(frozen=True, kw_only=True)
class AlarmResponse(Response):
    CMD: ClassVar[str] = "Alarm"  # A.2.6.3: the platform's answer to an alarm notify


# ------------------------------------------------------------------------------------------- other notifies


@dataclass(frozen=True, kw_only=True)
class KeepaliveNotify(Notify):
    """A.2.5.2: Status OK/ERROR; Info lists faulty sub-devices."""

    CMD: ClassVar[str] = "Keepalive"
    status: str | None = x("Status")
    info_device_ids: tuple[str, ...] = x("Info/DeviceID", "multi")


@dataclass(frozen=True, kw_only=True)
class MediaStatusNotify(Notify):
    CMD: ClassVar[str] = "MediaStatus"  # A.2.5.4, NotifyType 121 = end of file (in the INVITE dialog)
    notify_type: int | None = x("NotifyType", "int")


@dataclass(frozen=True, kw_only=True)
class BroadcastNotify(Notify):
    """A.2.5.5: SourceID (platform or voice input), TargetID (a 137 voice output or a device); no DeviceID."""

    CMD: ClassVar[str] = "Broadcast"
    source_id: str | None = x("SourceID")
    target_id: str | None = x("TargetID")


@dataclass(frozen=True, kw_only=True)
class BroadcastResponse(Response):
    CMD: ClassVar[str] = "Broadcast"  # A.2.6.11


@dataclass(frozen=True, kw_only=True)
class MobilePositionQuery(Query):
    CMD: ClassVar[str] = "MobilePosition"  # A.2.4.9 (query or subscription)
    interval: int | None = x("Interval", "int")  # s, default 5


@dataclass(frozen=True, kw_only=True)
class MobilePositionItem(Node):
    device_id: str | None = x("DeviceID")
    capture_time: str | None = x("CaptureTime")
    longitude: float | None = x("Longitude", "float")
    latitude: float | None = x("Latitude", "float")
    speed: float | None = x("Speed", "float")
    direction: float | None = x("Direction", "float")
    altitude: float | None = x("Altitude", "float")
    height: float | None = x("Height", "float")


@dataclass(frozen=True, kw_only=True)
class MobilePositionNotify(Notify):
    """A.2.5.6: the flat 2016 form (Time, Longitude, ...) and the 2022 DeviceList form; both are read."""

    CMD: ClassVar[str] = "MobilePosition"
    time: str | None = x("Time")
    longitude: float | None = x("Longitude", "float")
    latitude: float | None = x("Latitude", "float")
    speed: float | None = x("Speed", "float")  # km/h
    direction: float | None = x("Direction", "float")  # degrees from north
    altitude: float | None = x("Altitude", "float")  # m
    sum_num: int | None = x("SumNum", "int")
    num: int | None = x("DeviceList@Num", "num")
    items: tuple[MobilePositionItem, ...] = x("DeviceList/Item", "list", item=MobilePositionItem)


@dataclass(frozen=True, kw_only=True)
class UploadSnapShotFinishedNotify(Notify):
    """2022 A.2.5.7: file IDs = device ID + "02" + YYYYMMDDhhmmssSSS + 2-digit sequence."""

    CMD: ClassVar[str] = "UploadSnapShotFinished"
    session_id: str | None = x("SessionID")
    snap_shot_file_ids: tuple[str, ...] = x("SnapShotList/SnapShotFileID", "multi")


@dataclass(frozen=True, kw_only=True)
class VideoUploadNotify(Notify):
    CMD: ClassVar[str] = "VideoUploadNotify"  # 2022 A.2.5.8
    time: str | None = x("Time")
    longitude: float | None = x("Longitude", "float")
    latitude: float | None = x("Latitude", "float")


@dataclass(frozen=True, kw_only=True)
class DeviceUpgradeResultNotify(Notify):
    """2022 A.2.5.9: UpgradeResult OK/ERROR; UpgradeFailedReason 01 download timeout, 02 bad package,
    03 system, 99 other."""

    CMD: ClassVar[str] = "DeviceUpgradeResult"
    session_id: str | None = x("SessionID")
    upgrade_result: str | None = x("UpgradeResult")
    firmware: str | None = x("Firmware")
    upgrade_failed_reason: str | None = x("UpgradeFailedReason")


# ------------------------------------------------------------------------------------------- unknown


@dataclass(frozen=True, kw_only=True)
class Unknown(Response):
    """A body whose (root, CmdType) has no class here: its leaves are in ``extra`` (also ``fields``). Result and
    Reason are read whatever the root, so an unknown answer's ERROR is still a failure."""

    root: str = field(default="Response", metadata={})
    cmd_type: str = field(default="", metadata={})

    @property
    def fields(self) -> dict[str, str]:
        return self.extra

    def raise_for_result(self) -> None:
        if not self.ok:
            raise ResultError(self.cmd_type, self.result or "", self.reason)


MESSAGE_TYPES: tuple[type[Message], ...] = (
    CatalogQuery, CatalogResponse, CatalogNotify, DeviceInfoQuery, DeviceInfoResponse, DeviceStatusQuery,
    DeviceStatusResponse, RecordInfoQuery, RecordInfoResponse, ConfigDownloadQuery, ConfigDownloadResponse,
    DeviceConfig, DeviceConfigResponse, PresetQuery, PresetResponse, HomePositionQuery, HomePositionResponse,
    CruiseTrackListQuery, CruiseTrackListResponse, CruiseTrackQuery, CruiseTrackResponse, PTZPositionQuery,
    PTZPositionResponse, SDCardStatusQuery, SDCardStatusResponse, AlarmNotify, AlarmQuery, AlarmResponse,
    KeepaliveNotify, MediaStatusNotify, BroadcastNotify, BroadcastResponse, MobilePositionQuery,
    MobilePositionNotify, UploadSnapShotFinishedNotify, VideoUploadNotify, DeviceUpgradeResultNotify,
)  # fmt: skip


def _short_repr(self: Node) -> str:
    """Only the fields that are set: a catalog item has 60."""
    shown = (
        f"{f.name}={getattr(self, f.name)!r}"
        for f in dataclasses.fields(self)
        if getattr(self, f.name) not in (None, (), {})
    )
    return f"{type(self).__name__}({', '.join(shown)})"


def _all_nodes(cls: type) -> list[type]:
    return [cls, *(c for sub in cls.__subclasses__() for c in _all_nodes(sub))]


for _node in _all_nodes(Node):
    _node.__repr__ = _short_repr  # type: ignore[method-assign]
