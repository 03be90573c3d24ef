"""The 20-digit GB/T 28181 ID (GB/T 28181-2022 Appendix E, Table E.1).

digits 1-8 centre (civil) code, 9-10 industry, 11-13 type, 14 network flag, 15-20 serial.
"""

from __future__ import annotations

from dataclasses import dataclass

# Type codes (digits 11-13) per Table E.1: 111-130 front-end devices, 131-199 peripherals/channels,
# 200-299 platform-side (200 the centre signalling server, 215 business group, 216 virtual organisation).
DEVICE_TYPES = range(111, 200)
PLATFORM_TYPES = range(200, 300)
# Catalog tree nodes inside the platform range: they organise channels and are never SIP peers.
GROUP_TYPES = {215: "business group", 216: "virtual organisation"}


class InvalidId(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class GbId:
    value: str

    @classmethod
    def parse(cls, text: str) -> GbId:
        if len(text) != 20 or not text.isascii() or not text.isdigit():
            raise InvalidId(f"not a 20-digit ID: {text[:40]!r}")
        return cls(text)

    @property
    def centre(self) -> str:
        return self.value[:8]

    @property
    def industry(self) -> str:
        return self.value[8:10]

    @property
    def type_code(self) -> int:
        return int(self.value[10:13])

    @property
    def domain(self) -> str:
        """The SIP domain derived from the ID: its first 10 digits (GB/T 28181-2022 §6.1.2)."""
        return self.value[:10]

    def is_device(self) -> bool:
        return self.type_code in DEVICE_TYPES

    def is_platform(self) -> bool:
        return self.type_code in PLATFORM_TYPES

    def is_group(self) -> bool:
        """A business group (215) or virtual organisation (216): a catalog node, not a device or platform."""
        return self.type_code in GROUP_TYPES

    def __str__(self) -> str:
        return self.value


def check_registrant_id(text: str) -> str | None:
    """Strict-mode check for an ID that REGISTERs: None if acceptable, else the reason it is not.

    Devices (111-199) and platforms (200-299, lower platforms) may register; tree nodes (215 business
    groups, 216 virtual organisations) cannot, although their codes lie in the platform range.
    """
    try:
        gid = GbId.parse(text)
    except InvalidId as exc:
        return str(exc)
    if gid.is_group():
        return f"type code {gid.type_code:03d} ({GROUP_TYPES[gid.type_code]}) cannot register"
    if not (gid.is_device() or gid.is_platform()):
        return f"type code {gid.type_code:03d} cannot register"
    return None
