"""Where Redis is: URLs, host and port, and Redis Sentinel, as the scaling settings describe them."""

from __future__ import annotations

import pytest

from revurb.config import ScalingSettings
from revurb.scaling.connect import RedisOptions, options_from, parse_sentinels, resolve


def test_a_sentinel_url_names_the_sentinels_the_primary_and_the_database() -> None:
    options = resolve(RedisOptions(url="redis+sentinel://app:pw%21@10.0.0.1:26379,s2:26380/cache/2"))
    assert options.url is None
    assert options.sentinels == (("10.0.0.1", 26379), ("s2", 26380))
    assert (options.sentinel_master, options.db, options.username, options.password) == (
        "cache",
        2,
        "app",
        "pw!",
    )


def test_a_sentinel_url_without_a_name_keeps_the_default_primary() -> None:
    options = resolve(RedisOptions(url="redis+sentinel://s1"))
    assert options.sentinels == (("s1", 26379),) and options.sentinel_master == "mymaster"


def test_plain_urls_are_left_alone() -> None:
    assert resolve(RedisOptions(url="rediss://r:6380/1")) == RedisOptions(url="rediss://r:6380/1")


def test_sentinel_lists_take_a_default_port_and_refuse_nonsense() -> None:
    assert parse_sentinels(" a:1 , b ,") == (("a", 1), ("b", 26379))
    with pytest.raises(ValueError):
        parse_sentinels("a:x")


def test_settings_become_options_with_every_scaling_field() -> None:
    scaling = ScalingSettings(
        channel="c",
        redis_sentinels=(("s", 1),),
        redis_sentinel_master="m",
        redis_sentinel_password="sp",
        history_seconds=5.0,
        history_size=7,
        redis_timeout=1.5,
        queue_size=3,
        heartbeat_interval=2.0,
    )
    options = options_from(scaling)
    assert (options.prefix, options.sentinels, options.sentinel_master, options.sentinel_password) == (
        "c",
        (("s", 1),),
        "m",
        "sp",
    )
    assert (options.history_seconds, options.history_size, options.timeout) == (5.0, 7, 1.5)
    assert (options.queue_size, options.heartbeat_interval) == (3, 2.0)
