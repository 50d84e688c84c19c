"""Open files and local ports: what the machine lets one server hold, said once at start.

Every socket is a file descriptor, so the soft `RLIMIT_NOFILE` caps the connections of a process.
`revurb start` raises it to the hard limit (what an unprivileged process may do) and says what that
allows; a low limit, or a narrow local port range (each proxied connection takes a port on the
proxy's side), gets a warning with the fix, as Reverb's production notes give it.
"""

from __future__ import annotations

import logging
from pathlib import Path

try:
    import resource
except ImportError:  # not on Windows
    resource = None  # type: ignore[assignment]

logger = logging.getLogger("revurb.limits")

#: Descriptors kept for what is not a client: listeners, Redis, logs, the metrics port.
RESERVED_FILES = 64
#: Below this many connections, say how to raise the limit.
LOW_CAPACITY = 10_000
#: Below this many local ports, say how to widen the range.
LOW_PORTS = 16_384
PORT_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")


def raise_open_files() -> int | None:
    """Raise the soft open-files limit to the hard one; the soft limit now, or None if unknown."""
    if resource is None:
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1_048_576)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as error:
            logger.warning("cannot raise the open files limit from %d to %d: %s", soft, target, error)
    return soft


def local_ports(path: Path | None = None) -> int | None:
    """How many local ports the kernel hands out (`net.ipv4.ip_local_port_range`), if it says."""
    try:
        low, high = (int(part) for part in (path or PORT_RANGE_FILE).read_text().split())
    except (OSError, ValueError):
        return None
    return high - low + 1


def capacity(open_files: int) -> int:
    return max(0, open_files - RESERVED_FILES)


def check_limits(workers: int = 1) -> None:
    """Raise the limit, log the resulting capacity, warn where it is low."""
    open_files = raise_open_files()
    if open_files is not None:
        connections = capacity(open_files) * workers
        logger.info("open files limit %d: room for about %d connections", open_files, connections)
        if connections < LOW_CAPACITY:
            logger.warning(
                "room for only about %d connections (open files limit %d); raise the hard limit: "
                "`ulimit -n 65536` in the shell that starts it, LimitNOFILE= (systemd), minfds= "
                "(Supervisor), --ulimit nofile= (Docker); see docs/deploy.md",
                connections,
                open_files,
            )
    ports = local_ports()
    if ports is not None and ports < LOW_PORTS:
        logger.warning(
            "only %d local ports (net.ipv4.ip_local_port_range): a proxy on this machine can hold that "
            'many connections to one upstream; widen it: sysctl -w net.ipv4.ip_local_port_range="1024 65000"',
            ports,
        )
