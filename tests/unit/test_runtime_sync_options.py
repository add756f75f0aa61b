"""OPTIONS: what `create` makes after the fork reaches stage 1 whole — plain values, bytes
(the seccomp program) and named fds, idmap trees gathered under idmap_fds."""

import os

import pytest

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


def test_a_spec_bigger_than_a_packet_travels_in_a_memfd(tmp_path):
    """A spec with, say, a large environment exceeds one SOCK_SEQPACKET packet."""
    parent, child = sync.Channel.pair()
    fifo = os.open(tmp_path, os.O_PATH)
    fds_before = len(os.listdir("/proc/self/fd"))
    try:
        spec = {"process": {"env": [f"VAR{i}={'x' * 100}" for i in range(2000)]}}
        sync.send_options(parent, {"spec": spec, "no_pivot": False}, {"fifo_fd": fifo})
        got = sync.recv_options(child)
        assert got["spec"] == spec and got["no_pivot"] is False
        assert os.path.samestat(os.fstat(got["fifo_fd"]), os.stat(tmp_path))
        os.close(got["fifo_fd"])
        assert len(os.listdir("/proc/self/fd")) == fds_before  # the memfd is closed on both sides
    finally:
        os.close(fifo)
        parent.close()
        child.close()


def test_an_error_sent_before_exiting_with_unread_messages_still_arrives():
    """An init that fails before reading START closes its end with START unread: the kernel
    reports ECONNRESET first, and the ERROR it sent must still be read."""
    parent, child = sync.Channel.pair()
    try:
        parent.send(sync.START, cgroup_hierarchies=[])  # never read by the child
        child.send(sync.ERROR, message="rootfs '/x' is not reachable")
        child.close()
        try:
            parent.recv()
        except sync.ChildError as e:
            assert "rootfs '/x' is not reachable" in str(e)
        else:
            raise AssertionError("the child's ERROR was not raised")
    finally:
        parent.close()


def test_a_send_to_a_peer_gone_raises_its_last_word():
    """A failing init may send ERROR and exit before the runtime's next message: that send
    raises the init's error, not a broken pipe; with no ERROR waiting, ChannelClosed."""
    ours, theirs = sync.Channel.pair()
    theirs.send(sync.ERROR, message="rootfs: search every parent directory")
    theirs.close()
    with pytest.raises(sync.ChildError, match="search every parent directory"):
        ours.send(sync.START)
    ours.close()
    ours, theirs = sync.Channel.pair()
    theirs.close()
    with pytest.raises(sync.ChannelClosed):
        ours.send(sync.START)
    ours.close()
