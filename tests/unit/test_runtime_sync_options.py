"""OPTIONS: what `create` makes after the fork reaches stage 1 whole — plain values, bytes
(the seccomp program) and named fds, idmap trees gathered under idmap_fds."""

import os

from hull.runtime import sync


def test_options_round_trip_with_bytes_and_named_fds(tmp_path):
    parent, child = sync.Channel.pair()
    files = {name: os.open(tmp_path, os.O_PATH) for name in ("fifo_fd", "idmap:root", "idmap:3")}
    try:
        opts = {"start_now": True, "preserve_fds": 2, "state": {"id": "c1", "pid": 0},
                "seccomp_prog": b"\x00\x01\xfe\xff"}
        sync.send_options(parent, opts, files)
        got = sync.recv_options(child)
        assert got["start_now"] is True and got["preserve_fds"] == 2
        assert got["state"] == {"id": "c1", "pid": 0}
        assert got["seccomp_prog"] == b"\x00\x01\xfe\xff"
        assert set(got["idmap_fds"]) == {"root", "3"}
        for fd in [got["fifo_fd"], *got["idmap_fds"].values()]:
            assert os.path.samestat(os.fstat(fd), os.stat(tmp_path))
            os.close(fd)
    finally:
        for fd in files.values():
            os.close(fd)
        parent.close()
        child.close()
