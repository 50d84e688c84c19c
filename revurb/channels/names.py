"""What a channel name says about the channel: its kind, whether it caches, whether it is valid."""

import re
from dataclasses import dataclass

MAX_NAME_LENGTH = 200
SERVER_TO_USER_PREFIX = "#server-to-user-"
_VALID_NAME = re.compile(r"[-a-zA-Z0-9_=@,.;]+")


@dataclass(frozen=True, slots=True)
class ChannelKind:
    """The properties a channel gets from its name prefix."""

    private: bool = False
    presence: bool = False
    encrypted: bool = False
    cache: bool = False
    server_to_user: bool = False

    @property
    def needs_auth(self) -> bool:
        return self.private or self.presence

    @property
    def accepts_client_events(self) -> bool:
        return self.needs_auth and not self.encrypted


PUBLIC = ChannelKind()
_PREFIXES: tuple[tuple[str, ChannelKind], ...] = (
    ("private-encrypted-cache-", ChannelKind(private=True, encrypted=True, cache=True)),
    ("private-encrypted-", ChannelKind(private=True, encrypted=True)),
    ("private-cache-", ChannelKind(private=True, cache=True)),
    ("private-", ChannelKind(private=True)),
    ("presence-cache-", ChannelKind(presence=True, cache=True)),
    ("presence-", ChannelKind(presence=True)),
    ("cache-", ChannelKind(cache=True)),
    (SERVER_TO_USER_PREFIX, ChannelKind(server_to_user=True)),
)


_SPECIAL_STARTS = ("private-", "presence-", "cache-", SERVER_TO_USER_PREFIX)


def kind_of(name: str) -> ChannelKind:
    """The kind of channel a name denotes."""
    if not name.startswith(_SPECIAL_STARTS):
        return PUBLIC
    for prefix, kind in _PREFIXES:
        if name.startswith(prefix):
            return kind
    return PUBLIC


#: Names found valid lately: a busy app publishes on the same few channels over and over.
_VALID_NAMES: set[str] = set()
_VALID_NAMES_KEPT = 1024


def is_valid_name(name: str) -> bool:
    """Whether a client may subscribe to (or the API publish on) this name."""
    if name in _VALID_NAMES:
        return True
    if name.startswith(SERVER_TO_USER_PREFIX):
        valid = 0 < len(name) - len(SERVER_TO_USER_PREFIX) <= MAX_NAME_LENGTH
    else:
        valid = len(name) <= MAX_NAME_LENGTH and _VALID_NAME.fullmatch(name) is not None
    if valid:
        if len(_VALID_NAMES) >= _VALID_NAMES_KEPT:
            _VALID_NAMES.clear()
        _VALID_NAMES.add(name)
    return valid


def forget_valid_names() -> None:
    """Empty the cache of valid names (after a wave of sockets, whose names would stay in it)."""
    _VALID_NAMES.clear()


def may_cache(name: str) -> bool:
    """Whether the name may denote a cache channel (a quick test before `kind_of(name).cache`)."""
    return "cache-" in name and kind_of(name).cache


def server_to_user_channel(user_id: str) -> str:
    return f"{SERVER_TO_USER_PREFIX}{user_id}"
