"""Record search assembly (gb28181/records.py) with the made multi-packet fixtures; no sockets, time stepped by hand."""

from __future__ import annotations

import zoneinfo
from pathlib import Path

import pytest

from gb28181.manscdp.codec import decode
from gb28181.manscdp.messages import RecordInfoQuery, RecordInfoResponse, RecordItem
from gb28181.records import RecordAssembler, RecordSearchError, build_query, device_time, result_json

MADE = Path(__file__).resolve().parents[2] / "fixtures" / "manscdp" / "made"
NVR = "34020000001110000001"
CHANNEL = "34020000001310000001"
TZ = zoneinfo.ZoneInfo("Asia/Shanghai")


def response(name: str) -> RecordInfoResponse:
    message = decode((MADE / name).read_bytes()).message
    assert isinstance(message, RecordInfoResponse)
    return message


PACKETS = [response(f"recordinfo-{n}of3-duplicates.xml") for n in (1, 2, 3)]


def feed(asm: RecordAssembler, packets: list[RecordInfoResponse], now: float = 1.0):
    out = None
    for n, p in enumerate(packets):
        out = asm.packet(NVR, p.sn, p.sum_num, p.items, now + n)
        if out is not None:
            assert n == len(packets) - 1, "completed before the last packet"
    return out


def test_three_packets_with_duplicates_give_five_files_sorted_by_start_time() -> None:
    asm = RecordAssembler()
    asm.expect(NVR, 4004, 0.0)
    result = feed(asm, PACKETS)
    assert result is not None and result.complete and result.reason == "complete"
    assert (result.sum_num, result.packets, result.duplicates, len(result.items)) == (5, 3, 2, 5)
    assert [i.file_path for i in result.items] == [f"/record/ch1/0{n}.mp4" for n in range(5)]
    assert result.items[0].name == "通道一" and result.items[0].address == "地址1"
    assert len(asm) == 0 and asm.next_deadline() is None


def test_packets_out_of_order_still_sort_by_start_time() -> None:
    asm = RecordAssembler()
    asm.expect(NVR, 4004, 0.0)
    result = feed(asm, [PACKETS[2], PACKETS[1], PACKETS[0]])
    assert result is not None and result.complete
    assert [i.start_time[11:13] for i in result.items] == ["00", "01", "02", "03", "04"]


def test_silence_after_some_packets_gives_a_partial_result_flagged_as_such() -> None:
    asm = RecordAssembler(inter_packet_timeout=5.0, first_packet_timeout=30.0)
    asm.expect(NVR, 4004, 0.0)
    assert feed(asm, PACKETS[:2], now=1.0) is None
    assert asm.next_deadline() == 7.0
    assert asm.due(6.9) == []
    (partial,) = asm.due(7.0)
    assert (partial.complete, partial.reason, len(partial.items), partial.sum_num) == (
        False, "inter-packet timeout", 3, 5,
    )  # fmt: skip
    with pytest.raises(KeyError):  # the late third packet answers nothing any more
        asm.packet(NVR, 4004, 5, PACKETS[2].items, 8.0)


def test_no_answer_at_all_ends_after_the_first_packet_timeout() -> None:
    asm = RecordAssembler(inter_packet_timeout=5.0, first_packet_timeout=30.0)
    asm.expect(NVR, 7, 0.0)
    assert asm.due(29.0) == []
    (result,) = asm.due(30.0)
    assert (result.complete, result.reason, result.items, result.packets) == (False, "no answer", (), 0)


def test_sumnum_zero_without_a_list_is_an_empty_complete_answer() -> None:
    empty = response("recordinfo-empty-no-list.xml")
    asm = RecordAssembler()
    asm.expect(NVR, 4005, 0.0)
    result = asm.packet(NVR, empty.sn, empty.sum_num, empty.items, 1.0)
    assert result is not None and (result.complete, result.items, result.sum_num) == (True, (), 0)


def test_packets_of_another_sn_or_device_are_not_ours() -> None:
    asm = RecordAssembler()
    asm.expect(NVR, 4004, 0.0)
    with pytest.raises(KeyError):
        asm.packet(NVR, 4005, 5, PACKETS[0].items, 1.0)
    with pytest.raises(KeyError):
        asm.packet("34020000001110000002", 4004, 5, PACKETS[0].items, 1.0)
    with pytest.raises(KeyError):
        asm.packet(NVR, None, 5, PACKETS[0].items, 1.0)
    asm.cancel(NVR, 4004)
    assert len(asm) == 0


def test_same_hour_on_two_streams_is_two_files() -> None:
    main = RecordItem(device_id=CHANNEL, start_time="2024-05-01T00:00:00", end_time="2024-05-01T00:59:59",
                      stream_number=0)  # fmt: skip
    sub = RecordItem(device_id=CHANNEL, start_time="2024-05-01T00:00:00", end_time="2024-05-01T00:59:59",
                     stream_number=1)  # fmt: skip
    asm = RecordAssembler()
    asm.expect(NVR, 1, 0.0)
    result = asm.packet(NVR, 1, 2, [main, sub, main], 1.0)
    assert result is not None and len(result.items) == 2 and result.duplicates == 1


def test_the_query_asks_for_all_types_in_device_local_time() -> None:
    start, end = 1714492800.0, 1714579199.0  # 2024-05-01 00:00:00 .. 23:59:59 in Asia/Shanghai
    body = build_query(42, CHANNEL, start, end, TZ, "GB2312")
    assert body.startswith(b'<?xml version="1.0" encoding="GB2312"?>')
    query = decode(body).message
    assert isinstance(query, RecordInfoQuery)
    assert (query.sn, query.device_id, query.start_time, query.end_time, query.type, query.secrecy) == (
        42, CHANNEL, "2024-05-01T00:00:00", "2024-05-01T23:59:59", "all", 0,
    )  # fmt: skip
    assert device_time(start, zoneinfo.ZoneInfo("UTC")) == "2024-04-30T16:00:00"
    with pytest.raises(RecordSearchError, match="before"):
        build_query(1, CHANNEL, end, start, TZ, "GB2312")


def test_result_json_lists_the_files() -> None:
    asm = RecordAssembler()
    asm.expect(NVR, 4004, 0.0)
    out = result_json(feed(asm, PACKETS), CHANNEL)
    assert (out["state"], out["received"], out["sum_num"], out["duplicates"]) == ("complete", 5, 5, 2)
    assert out["items"][4] == {
        "device_id": CHANNEL, "name": "通道一", "start_time": "2024-05-01T04:00:00", "end_time": "2024-05-01T04:59:59",
        "type": "time", "file_path": "/record/ch1/04.mp4", "file_size": 262144004, "address": "地址1", "secrecy": 0,
        "recorder_id": None, "stream_number": None, "record_location": None,
    }  # fmt: skip
