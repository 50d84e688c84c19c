"""What a node's presence sockets were told: versions, sockets ahead of the node, outage reconcile."""

from __future__ import annotations

from revurb.channels.roster import PENDING, RosterView


def test_changes_at_or_below_the_version_are_skipped_and_known_users_not_announced_twice() -> None:
    view = RosterView()
    view.given("s1", {"u1": {"n": 1}}, (10, 0))
    assert view.known and view.version == (10, 0)
    assert view.apply("u1", True, {"n": 1}, (9, 0)) is False  # older than the roster
    assert view.apply("u2", True, None, (11, 0)) is True
    assert view.apply("u2", True, None, (12, 0)) is False  # already announced
    assert view.apply("u2", False, None, (13, 0)) is True
    assert view.apply("u2", False, None, (14, 0)) is False
    assert view.users == {"u1": {"n": 1}} and view.version == (14, 0)


def test_a_socket_ahead_of_the_node_is_spared_what_its_roster_holds() -> None:
    view = RosterView()
    view.given("s1", {"u1": None}, (10, 0))
    view.ahead["s2"] = PENDING
    assert view.spared("s2", (11, 0)) and view.spared("s2", None)  # no roster yet: nothing
    view.given("s2", {"u1": None, "u3": None}, (12, 0))  # its roster already has u3 (at 12)
    assert view.apply("u3", True, None, (12, 0)) is True
    assert view.spared("s2", (12, 0)) and not view.spared("s1", (12, 0))
    view.caught_up()
    assert view.ahead == {}
    assert not view.spared("s2", (13, 0))


def test_local_changes_while_redis_is_down_and_the_reconcile_after() -> None:
    view = RosterView()
    view.given("s1", {"u1": None, "u2": None}, (10, 0))
    assert view.apply("u3", True, None, None) is True  # joined here during the outage
    assert view.apply("u2", True, None, None) is False  # joined here too, but already listed
    assert view.apply("u1", False, None, None) is True  # left here; maybe still elsewhere
    added, removed = view.reset({"u1": None, "u2": None, "u3": None, "u4": {"x": 1}}, (20, 0))
    assert added == {"u1": None, "u4": {"x": 1}} and removed == []
    assert view.version == (20, 0)
