"""What a conformance run produces: one verdict per clause with why and the evidence, and the observations the
clauses judge (issue 11). Pure data."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gb28181.conformance.trace import TraceEntry

PASS, WARN, FAIL, SKIP = "PASS", "WARN", "FAIL", "SKIP"
VERDICTS = (PASS, WARN, FAIL, SKIP)
MEDIA_UNAVAILABLE = "media sessions not available in this build"


@dataclass(frozen=True)
class Result:
    clause: str  # e.g. "catalog.sumnum"
    title: str
    reference: str  # GB/T 28181 clause (spec digest section)
    verdict: str  # one of VERDICTS
    why: str
    evidence: tuple[str, ...] = ()

    def json(self) -> dict[str, Any]:
        return {"clause": self.clause, "title": self.title, "reference": self.reference, "verdict": self.verdict,
                "why": self.why, "evidence": list(self.evidence)}  # fmt: skip


@dataclass(frozen=True)
class Probe:
    """One active probe the run performed through the platform's API: when, how long, and its outcome."""

    name: str  # "catalog", "info", "status", "config", "presets", "records", "ptz", "record", "guard", ...
    started: float  # monotonic
    elapsed: float
    ok: bool
    error: str = ""
    kind: str = ""  # the QueryError kind when not ok: timeout, refused, transport, error
    value: Any = None  # what the API returned

    @property
    def timed_out(self) -> bool:
        return not self.ok and self.kind == "timeout"


@dataclass
class Observations:
    """Everything the clauses look at. ``now``/``started`` are the platform's monotonic clock; ``wall`` its wall
    clock at the end of the run; ``utc_offset`` the platform timezone's offset in seconds (devices send local
    time, spec digest §4.4)."""

    device_id: str
    platform_id: str
    entries: list[TraceEntry] = field(default_factory=list)
    probes: dict[str, Probe] = field(default_factory=dict)
    started: float = 0.0
    ended: float = 0.0
    wall: float = 0.0
    utc_offset: float = 8 * 3600.0
    gb_version: str = ""  # the X-GB-ver the device registered with ("" for 2016 devices that send none)
    min_expires: int = 3600  # the platform's [sip] min_expires
    media: Any = None  # media session observations: None until the platform has INVITE (branch invite)

    def probe(self, name: str) -> Probe | None:
        return self.probes.get(name)
