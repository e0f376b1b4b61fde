"""Downloads that never hang: a bounded reachability check and a socket timeout.

Pretrained weights and data sets are fetched over the network only on request;
on a machine without network access every fetch must fail within seconds with
a message that says how to supply the file by hand.
"""

import socket
import threading
from contextlib import contextmanager
from urllib.parse import urlparse

__all__ = ["check_reachable", "download_timeout"]


def _connect(host, port, timeout):
    with socket.create_connection((host, port), timeout=timeout):
        pass


def check_reachable(url, what, hint, timeout=3.0):
    """Raise ConnectionError unless ``url``'s host accepts a connection quickly.

    The check runs in a daemon thread so that a slow DNS lookup cannot hold
    the caller for longer than ``timeout`` seconds.

    Parameters
    ----------
    url : str
        The address that is about to be downloaded.
    what : str
        What is being downloaded, for the message.
    hint : str
        How to supply the file without network, appended to the message.
    timeout : float, default=3.0
        Seconds to wait for the connection.
    """
    parts = urlparse(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    outcome = {}

    def attempt():
        try:
            _connect(parts.hostname, port, timeout)
            outcome["ok"] = True
        except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
            outcome["error"] = exc

    thread = threading.Thread(target=attempt, daemon=True)
    thread.start()
    thread.join(timeout + 0.5)
    if not outcome.get("ok"):
        reason = outcome.get("error", f"no answer within {timeout:g} s")
        raise ConnectionError(
            f"Cannot download {what}: {parts.hostname} is unreachable ({reason}). {hint}"
        )


@contextmanager
def download_timeout(seconds=60.0):
    """Give sockets without a timeout (urllib downloads) one, for this block."""
    previous = socket.getdefaulttimeout()
    if previous is None:
        socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)
