"""The subscription manager on a fake clock: refresh timing, backoff, give-up, re-subscribe after re-register."""

from __future__ import annotations

import pytest

from gb28181.manscdp.codec import decode, encode
from gb28181.manscdp.messages import AlarmQuery, CatalogQuery, MobilePositionQuery
from gb28181.subscribe import (
    ACTIVE,
    FAILED,
    PENDING,
    SubscribeSettings,
    SubscriptionManager,
    event_header,
    subscribe_body,
    subscription_json,
)

DEV = "34020000001110000001"
SETTINGS = SubscribeSettings(expires=600, refresh_margin=60, max_failures=3, retry_base=5, retry_max=12)


def manager() -> SubscriptionManager:
    return SubscriptionManager(SETTINGS)


def test_a_wanted_subscription_is_sent_once_and_refreshed_in_its_dialog_before_expiry() -> None:
    m = manager()
    m.want(DEV, "catalog", now=0)
    (send,) = m.due(0)
    assert (send.kind, send.expires, send.dialog) == ("catalog", 600, None)
    assert m.due(1) == []  # in flight: not sent twice
    m.succeeded(DEV, "catalog", 600, dialog="D1", now=2)
    sub = m.get(DEV, "catalog")
    assert sub is not None and sub.state == ACTIVE and sub.expires_at == 602
    assert m.next_deadline() == 542  # refresh_margin before expiry
    assert m.due(541.9) == []
    (refresh,) = m.due(542)
    assert refresh.dialog == "D1"  # RFC 6665 §4.1.2.1: a refresh stays in the dialog
    m.succeeded(DEV, "catalog", 600, dialog="D1", now=543)
    assert m.next_deadline() == 543 + 540


def test_a_short_grant_is_refreshed_at_half_its_time() -> None:
    m = manager()
    m.want(DEV, "alarm", now=0)
    m.due(0)
    m.succeeded(DEV, "alarm", 60, dialog="D", now=0)  # the device shortened 600 to 60
    assert m.next_deadline() == 30


def test_failures_back_off_exponentially_then_give_up_until_the_device_registers_again() -> None:
    m = manager()
    m.want(DEV, "position", now=0)
    m.due(0)
    m.failed(DEV, "position", "timeout", now=1)
    assert m.get(DEV, "position").state == PENDING and m.next_deadline() == 6  # type: ignore[union-attr]
    assert m.due(5.9) == []
    m.due(6)
    m.failed(DEV, "position", "489 Bad Event", now=7)
    assert m.next_deadline() == 7 + 10
    m.due(17)
    m.failed(DEV, "position", "timeout", now=18)  # third failure = max_failures
    sub = m.get(DEV, "position")
    assert sub is not None and (sub.state, sub.last_error, sub.next_at) == (FAILED, "timeout", None)
    assert m.due(10_000) == [] and m.next_deadline() is None
    m.device_registered(DEV, now=20_000)
    assert (sub.state, sub.failures) == (PENDING, 0)
    (send,) = m.due(20_000)
    assert send.dialog is None


def test_backoff_is_capped() -> None:
    m = SubscriptionManager(SubscribeSettings(max_failures=10, retry_base=5, retry_max=12))
    m.want(DEV, "catalog", now=0)
    for n in range(5):
        m.due(1000 * n)
        m.failed(DEV, "catalog", "x", now=1000 * n)
    assert m.next_deadline() == 4000 + 12


def test_a_failed_refresh_starts_a_new_dialog() -> None:
    m = manager()
    m.want(DEV, "catalog", now=0)
    m.due(0)
    m.succeeded(DEV, "catalog", 600, dialog="D1", now=0)
    (refresh,) = m.due(540)
    assert refresh.dialog == "D1"
    m.failed(DEV, "catalog", "481 Call/Transaction Does Not Exist", now=541)
    (again,) = m.due(546)
    assert again.dialog is None


def test_re_registration_resubscribes_at_once_in_a_new_dialog_and_adds_auto_kinds() -> None:
    m = manager()
    m.want(DEV, "catalog", now=0)
    m.due(0)
    m.succeeded(DEV, "catalog", 600, dialog="D1", now=0)
    m.device_registered(DEV, now=100, auto=("alarm",))
    sends = {s.kind: s for s in m.due(100)}
    assert set(sends) == {"catalog", "alarm"} and sends["catalog"].dialog is None


def test_a_device_that_goes_away_is_not_subscribed_until_it_returns() -> None:
    m = manager()
    m.want(DEV, "catalog", now=0)
    m.due(0)
    m.succeeded(DEV, "catalog", 600, dialog="D1", now=0)
    m.device_gone(DEV, "registration expired")
    sub = m.get(DEV, "catalog")
    assert sub is not None and (sub.state, sub.next_at, sub.last_error) == (PENDING, None, "registration expired")
    assert m.due(10_000) == []
    m.device_registered(DEV, now=10_001)
    assert len(m.due(10_001)) == 1


def test_termination_by_the_device_resubscribes_and_counts_as_a_failure() -> None:
    m = manager()
    m.want(DEV, "catalog", now=0)
    m.due(0)
    m.succeeded(DEV, "catalog", 600, dialog="D1", now=0)
    m.terminated(DEV, "catalog", "noresource", now=10)
    sub = m.get(DEV, "catalog")
    assert sub is not None and sub.state == PENDING and sub.failures == 1 and sub.next_at == 15
    (send,) = m.due(15)
    assert send.dialog is None


def test_expires_zero_in_the_answer_is_a_failure_and_unknown_kinds_are_refused() -> None:
    m = manager()
    m.want(DEV, "catalog", now=0)
    m.due(0)
    m.succeeded(DEV, "catalog", 0, dialog="D", now=0)
    assert m.get(DEV, "catalog").failures == 1  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="unknown subscription kind"):
        m.want(DEV, "weather", now=0)


def test_an_operator_ask_after_give_up_starts_over() -> None:
    m = SubscriptionManager(SubscribeSettings(max_failures=1))
    m.want(DEV, "alarm", now=0)
    m.due(0)
    m.failed(DEV, "alarm", "timeout", now=0)
    assert m.get(DEV, "alarm").state == FAILED  # type: ignore[union-attr]
    m.want(DEV, "alarm", now=5)
    assert len(m.due(5)) == 1


def test_a_subscription_that_expired_before_its_refresh_went_out_is_renewed_in_a_new_dialog() -> None:
    m = manager()
    m.want(DEV, "catalog", now=0)
    m.due(0)
    m.succeeded(DEV, "catalog", 600, dialog="D1", now=0)
    (send,) = m.due(700)  # the loop was stalled past expiry
    assert send.dialog is None


def test_bodies_event_headers_and_json() -> None:
    assert event_header("catalog", 7) == "Catalog;id=7" and event_header("position", 8) == "presence;id=8"
    catalog = decode(encode(subscribe_body("catalog", 1, DEV, SETTINGS))).message
    assert isinstance(catalog, CatalogQuery) and catalog.device_id == DEV
    alarm = decode(encode(subscribe_body("alarm", 2, DEV, SETTINGS))).message
    assert isinstance(alarm, AlarmQuery) and alarm.alarm_method == "0"
    position = decode(encode(subscribe_body("position", 3, DEV, SETTINGS))).message
    assert isinstance(position, MobilePositionQuery) and position.interval == 5
    m = manager()
    sub = m.want(DEV, "catalog", now=0)
    m.due(0)
    m.succeeded(DEV, "catalog", 600, dialog="D", now=0)
    view = subscription_json(sub, now=100)
    assert view["state"] == "active" and view["expires_in"] == 500 and view["next_in"] == 440
