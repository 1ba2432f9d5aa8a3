"""libtorrent seeds a folder and prints its magnet link and port; runs until stdin closes.

usage: lt_seed.py FOLDER (--torrent FILE | --create PIECE_LENGTH)
  --torrent FILE           seed FOLDER with an existing .torrent (e.g. status-go style, 102400-byte pieces)
  --create PIECE_LENGTH    let libtorrent create a v1-only torrent of FOLDER (power-of-two piece length)
Prints {"magnet": ..., "port": ..., "info_hash": ..., "torrent": base64 of the .torrent}.
"""
import base64
import os
import sys

import libtorrent as lt

from lt_common import emit, session, wait


def main():
    folder = os.path.abspath(sys.argv[1])
    mode, arg = sys.argv[2], sys.argv[3]
    if mode == "--torrent":
        ti = lt.torrent_info(arg)
        torrent_bytes = open(arg, "rb").read()
    elif mode == "--create":
        fs = lt.file_storage()
        lt.add_files(fs, folder)
        ct = lt.create_torrent(fs, int(arg), flags=lt.create_torrent.v1_only)
        lt.set_piece_hashes(ct, os.path.dirname(folder))
        torrent_bytes = lt.bencode(ct.generate())
        ti = lt.torrent_info(torrent_bytes)
    else:
        raise SystemExit(f"unknown mode {mode}")
    ses = session()
    atp = lt.add_torrent_params()
    atp.ti = ti
    atp.save_path = os.path.dirname(folder)
    h = ses.add_torrent(atp)
    wait(lambda: h.status().is_seeding, 120, "seeding (hash check of local data)")
    emit({
        "magnet": lt.make_magnet_uri(ti),
        "port": ses.listen_port(),
        "info_hash": str(ti.info_hashes().v1),
        "torrent": base64.b64encode(torrent_bytes).decode(),
    })
    sys.stdin.read()


if __name__ == "__main__":
    main()
