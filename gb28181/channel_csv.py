"""Channels as CSV, for operators who fix naming and annotation in a spreadsheet (DECISIONS.md: Overrides).

Export: one row per channel, UTF-8 with a BOM (so Excel shows Chinese names), CRLF. The editable columns ``name,
longitude, latitude, civil_code, point_class`` hold what is shown (local override <- reported); ``reported_*``,
``kind`` and ``status`` are there to read and are ignored on import.

Import: every row is checked before anything is applied, and every problem is reported with its line number (bad
or Excel-mangled ID, bad coordinates, unknown channel, unknown or missing columns, a channel twice); then all
changes go in one transaction. A cell equal to the reported value, or empty, means "no override" (shown = reported);
any other value becomes the override. Columns left out of the file are left alone. UTF-8 with or without a BOM is
read, and GBK/GB18030 (what Excel writes on a Chinese Windows) when the bytes are not UTF-8. Pure: no IO.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from registry.models import Channel

EDITABLE = ("name", "longitude", "latitude", "civil_code", "point_class")
INFORMATIONAL = ("kind", "status", "reported_name", "reported_longitude", "reported_latitude", "reported_civil_code",
                 "reported_point_class")  # fmt: skip
KEYS = ("device_id", "id")
COLUMNS = (*KEYS, "kind", "status", *EDITABLE, *INFORMATIONAL[2:])
# Also read and ignored on import: the ``problem`` column of ``gb28181 stats quality --offenders`` files, so an
# operator fixes the offenders in a spreadsheet and gives the same file back.
ACCEPTED = (*COLUMNS, "problem")
POINT_CLASSES = ("1", "2", "3", "9")
MAX_ROWS = 200_000
MAX_ERRORS = 50  # reported at most; the count says how many there were


class CsvImportError(ValueError):
    """The file cannot be imported; ``errors`` names each problem with its line. Nothing was applied."""

    def __init__(self, errors: list[str], total: int | None = None) -> None:
        total = len(errors) if total is None else total
        super().__init__(f"{total} problem(s) in the CSV, nothing applied:\n" + "\n".join(errors[:MAX_ERRORS]))
        self.errors = errors[:MAX_ERRORS]
        self.total = total


# ------------------------------------------------------------------------------------------- export


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)  # the shortest text that reads back as the same float
    return str(value)


def export_csv(channels: Iterable[Channel]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for c in channels:
        writer.writerow([_cell(v) for v in (
            c.device_id, c.id, c.kind, c.status, c.shown_name, c.shown_longitude, c.shown_latitude,
            c.shown_civil_code, c.shown_point_class, c.name, c.longitude, c.latitude, c.civil_code, c.point_class,
        )])  # fmt: skip
    return out.getvalue().encode("utf-8-sig")


# ------------------------------------------------------------------------------------------- import


def decode_csv(data: bytes) -> tuple[str, str]:
    """(text, encoding): UTF-8 with a BOM, UTF-8, else GB18030 (a superset of GBK and GB2312)."""
    if data.startswith(b"\xef\xbb\xbf"):
        try:
            return data[3:].decode("utf-8"), "utf-8-sig"
        except UnicodeDecodeError as exc:
            raise CsvImportError([f"the file starts with a UTF-8 BOM but is not UTF-8: {exc}"]) from exc
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030"), "gbk"
    except UnicodeDecodeError as exc:
        raise CsvImportError([f"the file is neither UTF-8 nor GBK: {exc}"]) from exc


@dataclass(frozen=True)
class Row:
    line: int  # in the file, the header being line 1
    device_id: str
    id: str
    cells: dict[str, str]  # editable columns present in the file, stripped


@dataclass(frozen=True)
class Change:
    line: int
    device_id: str
    id: str
    overrides: dict[str, object]  # override_* field -> new value (None clears)
    before: dict[str, object]  # shown values of the changed fields
    after: dict[str, object]

    def json(self) -> dict[str, Any]:
        return {"line": self.line, "device_id": self.device_id, "id": self.id, "before": self.before,
                "after": self.after}  # fmt: skip


def _good_id(value: str) -> bool:
    return 0 < len(value) <= 64 and value.isascii() and value.isalnum()


def parse_csv(data: bytes) -> tuple[list[Row], str]:
    """Rows of an import file and the encoding it was read with; CsvImportError for the header, a bad ID, bad
    coordinates (format and range: these need no channel to check) or a channel given twice."""
    text, encoding = decode_csv(data)
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        raise CsvImportError(["the file is empty: expected a header line"]) from None
    except csv.Error as exc:
        raise CsvImportError([f"line 1: {exc}"]) from exc
    unknown = [h for h in header if h not in ACCEPTED]
    missing = [k for k in KEYS if k not in header]
    dupes = sorted({h for h in header if header.count(h) > 1})
    problems = []
    if unknown:
        problems.append(
            f"line 1: unknown column(s) {', '.join(repr(u) for u in unknown)}; columns are {', '.join(COLUMNS)}"
        )
    if missing:
        problems.append(f"line 1: missing column(s) {', '.join(missing)}")
    if dupes:
        problems.append(f"line 1: column(s) given twice: {', '.join(dupes)}")
    if ("longitude" in header) != ("latitude" in header):
        problems.append("line 1: longitude and latitude go together")
    if problems:
        raise CsvImportError(problems)
    rows: list[Row] = []
    errors: list[str] = []
    seen: dict[tuple[str, str], int] = {}
    for record in _records(reader, errors):
        line, values = record
        if len(rows) >= MAX_ROWS:
            errors.append(f"more than {MAX_ROWS} rows")
            break
        if not any(v.strip() for v in values):
            continue  # blank line
        if len(values) != len(header):
            errors.append(f"line {line}: {len(values)} cells, the header has {len(header)}")
            continue
        cells = {h: v.strip() for h, v in zip(header, values, strict=True)}
        device_id, channel_id = cells["device_id"], cells["id"]
        bad = [(k, v) for k, v in (("device_id", device_id), ("id", channel_id)) if not _good_id(v)]
        for key, value in bad:
            hint = (
                " (a spreadsheet turned it into a number: format the column as text)" if "E+" in value.upper() else ""
            )
            errors.append(f"line {line}: bad {key} {value[:40]!r}{hint}")
        coordinate_error = _check_coordinates(cells)
        if coordinate_error:
            errors.append(f"line {line} ({channel_id}): {coordinate_error}")
        if bad or coordinate_error:
            continue
        if (device_id, channel_id) in seen:
            errors.append(
                f"line {line}: channel {channel_id} of {device_id} already on line {seen[(device_id, channel_id)]}"
            )
            continue
        seen[(device_id, channel_id)] = line
        rows.append(Row(line, device_id, channel_id, {k: cells[k] for k in EDITABLE if k in cells}))
    if errors:
        raise CsvImportError(errors)
    return rows, encoding


def _records(reader: Any, errors: list[str]) -> Iterable[tuple[int, list[str]]]:
    while True:
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            errors.append(f"line {reader.line_num}: {exc}")
            return
        yield reader.line_num, values


def _float(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _check_coordinates(cells: dict[str, str]) -> str | None:
    if "longitude" not in cells:
        return None
    lon, lat = cells["longitude"], cells["latitude"]
    if not lon and not lat:
        return None
    if not lon or not lat:
        return "give longitude and latitude together, or neither"
    x, y = _float(lon), _float(lat)
    if x is None or not -180 <= x <= 180:
        return f"longitude {lon[:40]!r} is not a number between -180 and 180"
    if y is None or not -90 <= y <= 90:
        return f"latitude {lat[:40]!r} is not a number between -90 and 90"
    return None


def plan(rows: Iterable[Row], channels: Mapping[tuple[str, str], Channel]) -> list[Change]:
    """The override changes the rows make to the known channels; CsvImportError listing every unknown channel
    and bad civil code or point class (a value equal to the reported one is taken as it is, whatever it is)."""
    changes: list[Change] = []
    errors: list[str] = []
    for row in rows:
        channel = channels.get((row.device_id, row.id))
        if channel is None:
            errors.append(f"line {row.line}: no channel {row.id} on device {row.device_id}")
            continue
        try:
            wanted = _wanted(row.cells, channel)
        except ValueError as exc:
            errors.append(f"line {row.line} ({row.id}): {exc}")
            continue
        changed = {k: v for k, v in wanted.items() if getattr(channel, k) != v}
        if changed:
            fields = sorted({k.removeprefix("override_") for k in changed})
            after = {**{f"override_{f}": getattr(channel, f"override_{f}") for f in fields}, **changed}
            changes.append(Change(
                row.line, row.device_id, row.id, changed,
                {f: getattr(channel, f"shown_{f}") for f in fields},
                {f: _shown(getattr(channel, f), after[f"override_{f}"]) for f in fields},
            ))  # fmt: skip
    if errors:
        raise CsvImportError(errors)
    return changes


def _shown(reported: object, override: object) -> object:
    return reported if override is None else override


def _wanted(cells: dict[str, str], c: Channel) -> dict[str, object]:
    """override_* values the cells ask for: None where the cell is empty or equals the reported value."""
    out: dict[str, object] = {}
    if "name" in cells:
        name = cells["name"]
        out["override_name"] = None if not name or name == c.name else name
    if "longitude" in cells:
        lon, lat = _float(cells["longitude"]), _float(cells["latitude"])  # checked by parse_csv
        same = lon is None or (lon == c.longitude and lat == c.latitude)
        out["override_longitude"] = None if same else lon
        out["override_latitude"] = None if same else lat
    if "civil_code" in cells:
        code = cells["civil_code"]
        if code and code != c.civil_code and not (code.isascii() and code.isdigit() and len(code) in (2, 4, 6, 8)):
            raise ValueError(f"civil code {code[:40]!r} must be 2, 4, 6 or 8 digits")
        out["override_civil_code"] = None if not code or code == c.civil_code else code
    if "point_class" in cells:
        pc = cells["point_class"]
        if pc and pc not in POINT_CLASSES:
            raise ValueError(f"point class {pc[:40]!r} must be 1, 2, 3 or 9")
        value = int(pc) if pc else None
        out["override_point_class"] = None if value is None or value == c.point_class else value
    return out
