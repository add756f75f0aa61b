"""/etc/subuid parsing and --userns=auto range picking (no root needed)."""

import pytest

from hull.errors import HullError
from hull.runtime import subid


def test_parse_skips_comments_and_blank_lines():
    text = "# comment\n\nalice:100000:65536\n1000:165536:65536\n"
    assert subid.parse(text) == [("alice", 100000, 65536), ("1000", 165536, 65536)]


@pytest.mark.parametrize("line", ["alice:100000", "alice:x:65536", ":1:2", "bob:-1:5", "bob:0:0"])
def test_parse_bad_lines_name_the_line(line):
    with pytest.raises(HullError, match=r"/etc/subuid:2"):
        subid.parse("ok:1:1\n" + line + "\n")


def test_ranges_by_name_or_uid_are_merged():
    entries = subid.parse("alice:100000:65536\n1000:165536:65536\nbob:300000:10\n")
    assert subid.ranges("alice", uid=1000, entries=entries) == [(100000, 131072)]
    assert subid.ranges("carol", entries=entries) == []


def test_pick_range_skips_used_blocks():
    avail = [(100000, 65536 * 3)]
    assert subid.pick_range(avail, 65536) == (100000, 65536)
    assert subid.pick_range(avail, 65536, used=[(100000, 65536)]) == (165536, 65536)
    assert subid.pick_range(avail, 65536, used=[(100010, 5), (200000, 10)]) == (100015, 65536)
    assert subid.pick_range(avail, 65536, used=[(100010, 5), (150000, 10)]) == (150010, 65536)
    assert subid.pick_range(avail, 65536, used=[(100000, 65536 * 3)]) is None


def test_pick_uses_both_files(tmp_path):
    u = tmp_path / "subuid"
    g = tmp_path / "subgid"
    u.write_text("containers:200000:131072\n")
    g.write_text("containers:300000:131072\n")
    got = subid.pick(used_uids=[(200000, 65536)], subuid=str(u), subgid=str(g))
    assert got == {"uid": (265536, 65536), "gid": (300000, 65536)}
    uidm, gidm = subid.mappings(got["uid"], got["gid"])
    assert uidm == [{"containerID": 0, "hostID": 265536, "size": 65536}]


def test_pick_without_entries_says_what_to_add(tmp_path):
    u = tmp_path / "subuid"
    u.write_text("")
    with pytest.raises(HullError, match="has no range for user 'containers'; add a line"):
        subid.pick(subuid=str(u), subgid=str(u))


def test_pick_full(tmp_path):
    u = tmp_path / "subuid"
    u.write_text("containers:200000:65536\n")
    with pytest.raises(HullError, match="no free block of 65536 uids"):
        subid.pick(used_uids=[(200000, 1)], subuid=str(u), subgid=str(u))
