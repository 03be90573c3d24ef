"""What one simulated device holds: its identity, its catalog tree and the state the platform can change.

IDs follow GB/T 28181-2022 Appendix E: 8-digit centre code + 2-digit industry (the ``--id-prefix``, 10 digits),
a 3-digit type code and a 7-digit serial. A device's own items take serials from a block of 1000 per device
index (``index * 1000 + k``, wrapping at 10^7), so IDs stay unique across up to 10,000 devices of up to 990
channels; the registry keys channels by (device, id), so a wrap past that is harmless.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gb28181.manscdp.messages import CatalogItem
from gb28181.simulator.profile import Profile

BLOCK = 1000


@dataclass
class Channel:
    """One catalog item. ``status`` ON/OFF; ``vlost`` marks a video-lost camera (reported OFF, App.N Event VLOST)."""

    id: str
    name: str
    type_code: int  # 131 camera, 134 alarm input, 215/216 groups, 0 for civil-code regions
    parent_ids: tuple[str, ...] = ()
    civil_code: str = ""
    business_group_id: str = ""
    longitude: float | None = None
    latitude: float | None = None
    status: str = "ON"
    vlost: bool = False
    presets: dict[int, str] = field(default_factory=dict)

    @property
    def is_video(self) -> bool:
        return self.type_code in (131, 132)


def make_id(prefix: str, type_code: int, serial: int) -> str:
    return f"{prefix}{type_code:03d}{serial % 10_000_000:07d}"


@dataclass
class Inventory:
    device_id: str
    name: str
    profile: Profile
    channels: list[Channel]
    guard_armed: bool = False
    recording: bool = False
    alarming: set[str] = field(default_factory=set)  # channel IDs with an active alarm
    settings: dict[str, int] = field(default_factory=dict)  # DeviceConfig overrides of the profile, until reboot

    def setting(self, name: str) -> int:
        """register_expires, keepalive_interval or keepalive_count: as configured, else the profile's."""
        return self.settings.get(name, getattr(self.profile, name))

    def channel(self, channel_id: str) -> Channel | None:
        for ch in self.channels:
            if ch.id == channel_id:
                return ch
        return None

    @property
    def videos(self) -> list[Channel]:
        return [c for c in self.channels if c.is_video]

    def catalog_items(self, server_id: str) -> list[CatalogItem]:
        return [self.item(c, server_id) for c in self.channels]

    def item(self, c: Channel, server_id: str, event: str | None = None) -> CatalogItem:
        """The catalog item as this profile writes it (A.2.1.9; 2022 Info/PointType; §13 placeholders)."""
        p = self.profile
        placeholder = p.has("placeholder-fields")
        if c.type_code == 0:  # a civil-code region node (App.J): ID, name and the enclosing region
            return CatalogItem(device_id=c.id, event=event, name=c.name, parent_ids=c.parent_ids)
        if c.type_code in (215, 216):
            return CatalogItem(
                device_id=c.id, event=event, name=c.name, parent_ids=c.parent_ids,
                business_group_id=c.business_group_id or None,
            )  # fmt: skip
        parents = c.parent_ids
        if p.has("parent-is-server") and c.is_video:
            parents = (server_id,)
        v2022 = p.gb_version == "2022"
        return CatalogItem(
            device_id=c.id,
            event=event,
            name=c.name,
            manufacturer=p.manufacturer,
            model={134: "AlarmIn", 137: "AudioOut"}.get(c.type_code, p.model),
            owner="Owner" if placeholder else ("0" if not v2022 else None),
            civil_code="CivilCode" if placeholder else c.civil_code,
            address="Address" if placeholder else f"{p.area}",
            parental=0,
            parent_ids=parents,
            safety_way=0 if not v2022 else None,
            register_way=1,
            secrecy=0,
            status="OFF" if c.vlost else c.status,
            longitude=c.longitude,
            latitude=c.latitude,
            business_group_id=(c.business_group_id or None) if v2022 else None,
            ptz_type=p.ptz_type if c.is_video else None,
            point_class=(1 if c.type_code == 131 else None) if v2022 else None,
            download_speed="1/2/4/8" if c.is_video and p.kind != "ipc" else None,
        )


def build(profile: Profile, index: int, prefix: str, channels: int | None = None, audio_outputs: int = 0) -> Inventory:
    """Device ``index`` (0-based) of this profile: its ID, name and catalog tree, plus ``audio_outputs`` voice
    outputs (type 137, ParentID the device: what a device that takes voice broadcast lists, §9.12.1.1)."""
    inv = _build(profile, index, prefix, channels)
    for n in range(1, audio_outputs + 1):
        inv.channels.append(Channel(make_id(prefix, 137, index * BLOCK + n), f"语音输出{n}", 137, (inv.device_id,),
                                    profile.civil_code))  # fmt: skip
    return inv


def _build(profile: Profile, index: int, prefix: str, channels: int | None) -> Inventory:
    serial = index + 1
    # Platforms (200-299) start at serial 101: ...2000000001 is the usual ID of the platform we register to.
    device_id = make_id(prefix, profile.device_type, serial + (100 if profile.device_type >= 200 else 0))
    name = profile.device_name.format(serial=serial)
    base = index * BLOCK
    count = profile.channels if channels is None or profile.kind == "ipc" else channels
    inv = Inventory(device_id, name, profile, [])
    if profile.kind == "ipc":
        if profile.has("self-item"):
            inv.channels.append(_camera(profile, device_id, serial, name, device_id, profile.civil_code, (), index))
        else:
            ch_id = make_id(prefix, 131, base + 1)
            parents = (device_id,)
            inv.channels.append(_camera(profile, ch_id, serial, name, device_id, profile.civil_code, parents, index))
        return inv
    if profile.kind == "nvr":
        for n in range(1, count + 1):
            ch_id = make_id(prefix, 131, base + n)
            inv.channels.append(_camera(profile, ch_id, n, name, device_id, profile.civil_code, (device_id,), index))
        for n in range(1, profile.alarm_inputs + 1):
            inv.channels.append(
                Channel(make_id(prefix, 134, base + 900 + n), f"报警输入{n}", 134, (device_id,), profile.civil_code)
            )
        return inv
    # A lower platform: regions (App.J civil-code nodes), 215 groups each with one 216 organisation, cameras
    # spread over the organisations and the deepest regions.
    for code, region_name in profile.regions:
        above = [c for c, _ in profile.regions if len(c) < len(code) and code.startswith(c)]
        parent = max(above, key=len) if above else None  # the nearest enclosing region
        inv.channels.append(Channel(code, region_name, 0, (parent,) if parent else ()))
    leaves = [c for c, _ in profile.regions if not any(o != c and o.startswith(c) for o, _ in profile.regions)]
    orgs: list[tuple[str, str]] = []  # (216 id, its group id)
    for g, group_name in enumerate(profile.groups, start=1):
        group_id = make_id(prefix, 215, base + 950 + g)
        org_id = make_id(prefix, 216, base + 970 + g)
        inv.channels.append(Channel(group_id, group_name, 215, (device_id,)))
        inv.channels.append(Channel(org_id, f"{group_name}监控中心", 216, (group_id,), business_group_id=group_id))
        orgs.append((org_id, group_id))
    for n in range(1, count + 1):
        ch_id = make_id(prefix, 131, base + n)
        civil = leaves[(n - 1) % len(leaves)]
        parents: tuple[str, ...] = (civil,)
        group = ""
        if orgs:
            org_id, group = orgs[(n - 1) % len(orgs)]
            parents = (org_id, civil)
        cam = _camera(profile, ch_id, n, name, device_id, civil, parents, index)
        cam.business_group_id = group
        inv.channels.append(cam)
    return inv


def _camera(
    p: Profile, ch_id: str, n: int, device_name: str, device_id: str, civil: str, parents: tuple[str, ...], index: int
) -> Channel:
    name = p.channel_name.format(n=n, device=device_name, area=p.area)
    # Deterministic positions around Wuhu (118.38 E, 31.33 N), a few hundred metres apart.
    lon = round(118.38 + (index % 100) * 0.003 + n * 0.0005, 6)
    lat = round(31.33 + (index // 100 % 100) * 0.003 + n * 0.0003, 6)
    return Channel(ch_id, name, 131, parents, civil, longitude=lon, latitude=lat)
