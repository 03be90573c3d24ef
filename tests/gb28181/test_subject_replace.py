"""Subject parsing and the 2022 App. K replacement rule (gb28181/invite.py: parse_subject, replaces)."""

from __future__ import annotations

from gb28181.invite import Subject, parse_subject, replaces, subject

CAM, OTHER_CAM = "34020000001320000001", "34020000001320000002"
US, SUPERIOR = "34020000002000000001", "44000000002000000001"


def test_parse_the_forms_seen() -> None:
    assert parse_subject(subject(CAM, "0200001234", US)) == Subject(CAM, "0200001234", US, "0")
    # Dahua's talk INVITE: 19-character hex-like sequences (fixtures-wild dahua/ipc-talk-invite-from-device)
    dahua = "34020000002000000001:03d7a8ef3276a8ef327,34020000001310000001:0552354c54f3354c54f"
    assert parse_subject(dahua) == Subject(US, "03d7a8ef3276a8ef327", "34020000001310000001", "0552354c54f3354c54f")
    assert parse_subject(f" {CAM} : 1 , {US} ") == Subject(CAM, "1", US, "")


def test_missing_or_one_part_subjects_are_none() -> None:
    for value in (None, "", CAM, f"{CAM}:1", f"{CAM}:1,", f",{US}:0", f"{CAM}:1,{US}:0,{US}:1"):
        assert parse_subject(value) is None, value


def test_replacement_needs_both_identities() -> None:
    old = subject(CAM, "0200000001", SUPERIOR)
    assert replaces(old, subject(CAM, "0200000002", SUPERIOR))  # the same superior re-inviting: new SSRC
    assert replaces(old, subject(CAM, "0200000001", SUPERIOR, "7"))  # the sequence parts are not identities
    assert not replaces(old, subject(CAM, "0200000002", US))  # another receiver never ends the first one's stream
    assert not replaces(old, subject(OTHER_CAM, "0200000002", SUPERIOR))
    assert not replaces(old, None) and not replaces(None, old) and not replaces(old, CAM)
