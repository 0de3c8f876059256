"""Redis URIs: a server (`redis://`, `rediss://`, `redis+unix://`) or Sentinel's view of one.

`redis+sentinel://host:26379,host2:26379/<service>[/<db>]` names the Sentinels to ask and
the monitored service; clients then follow the master through failovers. It is the form
the `limits` package reads for rate limits, parsed here once for the other Redis users.
"""

from __future__ import annotations

from urllib.parse import urlsplit

SENTINEL_SCHEME = "redis+sentinel://"
SCHEMES = ("redis://", "rediss://", "redis+unix://", SENTINEL_SCHEME)


def sentinel_parts(uri: str) -> tuple[list[tuple[str, int]], str, int]:
    """The Sentinels' addresses, the service name and the database of a Sentinel URI."""
    parts = urlsplit(uri)
    hosts = []
    for address in parts.netloc.rsplit("@", 1)[-1].split(","):
        host, _, port = address.rpartition(":")
        hosts.append((host or address, int(port) if host else 26379))
    path = [piece for piece in parts.path.split("/") if piece]
    if not path:
        raise ValueError("a Sentinel URI names its service: redis+sentinel://host:26379/<service>")
    return hosts, path[0], int(path[1]) if len(path) > 1 else 0
