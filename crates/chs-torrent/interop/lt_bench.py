"""libtorrent baseline for the chs-torrent benchmark: create, then seed -> download over loopback.

usage: lt_bench.py FOLDER PIECE_LENGTH OUT_DIR [tcp|utp]
Creates a v1-only torrent of FOLDER (timed: hashing), seeds it from one session and downloads it
into OUT_DIR with a second session in the same process (timed). Prints one JSON line:
{"create_seconds": s, "create_cpu_seconds": s, "download_seconds": s, "bytes": n}.
Creation is `set_piece_hashes` with libtorrent's defaults (the Python binding takes no settings):
one hashing thread (`hashing_threads` 1) fed by its disk threads (`aio_threads` 10, memory-mapped
files); `create_cpu_seconds` is this process's CPU time (all its threads) during creation.

Transport (default tcp): `tcp` turns uTP off in both sessions (`enable_outgoing_utp` and
`enable_incoming_utp` false), so they talk TCP as chs does; `utp` keeps libtorrent's default,
uTP first, whose congestion control holds a loopback transfer near 23 MB/s where TCP reaches
hundreds of MB/s (a baseline that slow would flatter chs).
"""
import os
import resource
import sys
import time

import libtorrent as lt

from lt_common import emit, session, wait


def main():
    folder = os.path.abspath(sys.argv[1])
    piece_length = int(sys.argv[2])
    out_dir = sys.argv[3]
    transport = sys.argv[4] if len(sys.argv) > 4 else "tcp"
    if transport not in ("tcp", "utp"):
        raise SystemExit(f"transport must be tcp or utp, not {transport}")
    settings = {} if transport == "utp" else {"enable_outgoing_utp": False, "enable_incoming_utp": False}
    t0 = time.monotonic()
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    fs = lt.file_storage()
    lt.add_files(fs, folder)
    ct = lt.create_torrent(fs, piece_length, flags=lt.create_torrent.v1_only)
    lt.set_piece_hashes(ct, os.path.dirname(folder))
    ti = lt.torrent_info(lt.bencode(ct.generate()))
    create_seconds = time.monotonic() - t0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    create_cpu_seconds = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)

    seeder = session(settings)
    atp = lt.add_torrent_params()
    atp.ti = ti
    atp.save_path = os.path.dirname(folder)
    sh = seeder.add_torrent(atp)
    wait(lambda: sh.status().is_seeding, 600, "seeder hash check")

    leecher = session(settings)
    atp = lt.add_torrent_params()
    atp.ti = lt.torrent_info(ti)
    atp.save_path = out_dir
    atp.peers = [("127.0.0.1", seeder.listen_port())]
    t1 = time.monotonic()
    lh = leecher.add_torrent(atp)
    wait(lambda: lh.status().is_seeding, 1800, "download")
    download_seconds = time.monotonic() - t1
    emit({"create_seconds": create_seconds, "create_cpu_seconds": create_cpu_seconds, "download_seconds": download_seconds, "bytes": ti.total_size()})


if __name__ == "__main__":
    main()
