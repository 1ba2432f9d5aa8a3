"""Shared libtorrent helpers for chs-torrent interop scripts (libtorrent 2.1, PyPI)."""
import json
import sys
import time
import warnings

import libtorrent as lt

warnings.simplefilter("ignore", DeprecationWarning)


def session(extra=None):
    """A loopback-only session: no DHT, LSD, UPnP or NAT-PMP; `extra` settings override."""
    settings = {
        "listen_interfaces": "127.0.0.1:0",
        "enable_dht": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "allow_multiple_connections_per_ip": True,
        "alert_mask": lt.alert.category_t.error_notification,
    }
    settings.update(extra or {})
    return lt.session(settings)


def emit(obj):
    """One JSON line on stdout for the Rust side."""
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def wait(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.05)


def parse_peer(s):
    host, port = s.rsplit(":", 1)
    return (host, int(port))
