"""Subject parsing and the 2022 App. K replacement rule (gb28181/invite.py: parse_subject, replaces), used by the
cascade's superior legs and by the simulator's devices."""

from __future__ import annotations

from gb28181.invite import Subject, parse_subject, replaces, subject

CAM, OTHER_CAM = "34020000001320000001", "34020000001320000002"
US, SUPERIOR = "34020000002000000001", "44000000002000000001"


def test_parse_the_forms_seen() -> None:
    assert parse_subject(subject(CAM, "0200001234", US)) == Subject(CAM, "0200001234", US, "0")
    # Dahua's talk INVITE: 19-character hex-like sequences (fixtures-wild dahua/ipc-talk-invite-from-device)
    dahua = "34020000002000000001:03d7a8ef3276a8ef327,34020000001310000001:0552354c54f3354c54f"
    assert parse_subject(dahua) == Subject(US, "03d7a8ef3276a8ef327", "34020000001310000001", "0552354c54f3354c54f")
    assert parse_subject(f" {CAM}:1 , {US} ") == Subject(CAM, "1", US, "")


def test_missing_or_malformed_subjects_have_empty_parts() -> None:
    assert parse_subject(f"{CAM}:1") == Subject(CAM, "1", "", "")  # one part: a sender, no receiver
    for value in (None, "", f"{CAM}:1,{US}:0,{US}:1", f",{US}:0"):
        assert parse_subject(value) == Subject(), value


def test_replacement_needs_both_identities_and_the_receivers_window() -> None:
    old = parse_subject(subject(CAM, "0200000001", SUPERIOR))
    assert replaces(old, parse_subject(subject(CAM, "0200000002", SUPERIOR)))  # the same superior again: new SSRC
    assert not replaces(old, parse_subject(subject(CAM, "0200000001", SUPERIOR, "7")))  # another window of it
    assert not replaces(old, parse_subject(subject(CAM, "0200000002", US)))  # another receiver: never
    assert not replaces(old, parse_subject(subject(OTHER_CAM, "0200000002", SUPERIOR)))
    assert not replaces(old, parse_subject(None)) and not replaces(old, parse_subject(CAM))
