"""libtorrent downloads a magnet link from one explicit peer and reports when complete.

usage: lt_fetch.py MAGNET SAVE_PATH PEER_HOST:PORT [TIMEOUT_S]
Prints {"done": true, "name": ..., "total": bytes, "seconds": s} when every piece is verified.
"""
import sys
import time

import libtorrent as lt

from lt_common import emit, parse_peer, session, wait


def main():
    magnet, save_path, peer = sys.argv[1], sys.argv[2], sys.argv[3]
    timeout = float(sys.argv[4]) if len(sys.argv) > 4 else 60
    ses = session()
    atp = lt.parse_magnet_uri(magnet)
    atp.save_path = save_path
    atp.peers = [parse_peer(peer)]
    h = ses.add_torrent(atp)
    start = time.monotonic()
    wait(lambda: h.status().is_seeding, timeout, "download")
    st = h.status()
    emit({"done": True, "name": st.name, "total": st.total_wanted, "seconds": time.monotonic() - start})


if __name__ == "__main__":
    main()
