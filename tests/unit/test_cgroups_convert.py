"""Conversion rules between OCI (v1-shaped) values and cgroup v2 files — runc/crun's formulas."""

import pytest

from hull.cgroups import convert
from hull.cgroups.update import parse_size, resources_from_update_flags
from hull.errors import SpecError, UsageError


@pytest.mark.parametrize("shares,weight", [(2, 1), (1024, 39), (262144, 10000), (512, 20), (0, 0)])
def test_shares_to_weight(shares, weight):
    assert convert.shares_to_weight(shares) == weight


def test_shares_out_of_range_clamped():
    assert convert.shares_to_weight(1) == 1
    assert convert.shares_to_weight(10**9) == 10000


@pytest.mark.parametrize("weight", [1, 39, 100, 5000, 10000])
def test_weight_to_shares_round_trips(weight):
    assert convert.shares_to_weight(convert.weight_to_shares(weight)) == weight


@pytest.mark.parametrize("blkio,io", [(10, 1), (1000, 10000), (500, 4950), (0, 0)])
def test_blkio_weight_to_io_weight(blkio, io):
    assert convert.blkio_weight_to_io_weight(blkio) == io


def test_io_weight_back_to_blkio():
    for w in (10, 100, 500, 1000):
        assert abs(convert.io_weight_to_blkio_weight(convert.blkio_weight_to_io_weight(w)) - w) <= 1


@pytest.mark.parametrize("quota,period,line", [
    (50000, 100000, "50000 100000"),
    (50000, 0, "50000 100000"),
    (-1, 0, "max 100000"),
    (-1, 250000, "max 250000"),
    (0, 20000, "max 20000"),
    (0, 0, None),
    (None, None, None),
])
def test_cpu_max(quota, period, line):
    assert convert.cpu_max(quota, period) == line


def test_parse_cpu_max():
    assert convert.parse_cpu_max("max 100000") == (-1, 100000)
    assert convert.parse_cpu_max("50000 100000") == (50000, 100000)


@pytest.mark.parametrize("swap,memory,out", [
    (0, -1, -1),          # unlimited memory, swap unset: swap unlimited too
    (-1, 1000, -1),       # unlimited swap
    (0, 1000, None),      # unset: leave alone
    (None, None, None),
    (3000, 1000, 2000),   # OCI swap is memory+swap: v2 file holds only the swap part
    (1000, 1000, 0),      # memory+swap == memory: no swap
])
def test_swap_v2(swap, memory, out):
    assert convert.swap_v2(swap, memory) == out


def test_swap_v2_needs_memory_limit():
    with pytest.raises(SpecError, match="needs a memory limit") as e:
        convert.swap_v2(1000, 0)
    assert e.value.path == "linux.resources.memory.swap"
    with pytest.raises(SpecError, match="needs a memory limit"):
        convert.swap_v2(1000, -1)


def test_swap_v2_lower_than_memory():
    with pytest.raises(SpecError, match=">= memory.limit"):
        convert.swap_v2(500, 1000)


def test_swap_from_v2():
    assert convert.swap_from_v2(2000, 1000) == 3000
    assert convert.swap_from_v2(-1, 1000) == -1


def test_memory_values():
    assert convert.memory_v2(-1) == "max"
    assert convert.memory_v2(52428800) == "52428800"
    assert convert.memory_v1(-1) == "-1"


def test_parsers():
    assert convert.parse_uint("max\n") == 0
    assert convert.parse_uint("123\n") == 123
    assert convert.parse_flat_keyed("a 1\nb 2\nbad\nc x\n") == {"a": 1, "b": 2}
    assert convert.parse_list("0-2,5,7-8") == [0, 1, 2, 5, 7, 8]
    assert convert.parse_list("") == []
    with pytest.raises(ValueError):
        convert.parse_list("3-1")
    assert convert.hugepage_size_name(2048) == "2MB"
    assert convert.hugepage_size_name(1048576) == "1GB"
    assert convert.hugepage_size_name(64) == "64KB"


@pytest.mark.parametrize("text,n", [("100M", 100 << 20), ("1g", 1 << 30), ("512KiB", 512 << 10),
                                    ("1.5m", 3 << 19), ("4096", 4096), ("-1", -1), ("20 MB", 20 << 20)])
def test_parse_size(text, n):
    assert parse_size(text) == n


@pytest.mark.parametrize("bad", ["", "abc", "-5", "10X", "1.2.3m"])
def test_parse_size_bad(bad):
    with pytest.raises(UsageError, match="invalid size"):
        parse_size(bad)


def test_update_flags_to_resources():
    r = resources_from_update_flags(memory="100M", memory_swap="200M", cpu_quota="50000", cpu_period="100000",
                                    cpu_share="512", cpuset_cpus="0", pids_limit="20", blkio_weight="300",
                                    memory_reservation=None, cpu_idle="1")
    assert r == {"memory": {"limit": 100 << 20, "swap": 200 << 20},
                 "cpu": {"quota": 50000, "period": 100000, "shares": 512, "cpus": "0", "idle": 1},
                 "pids": {"limit": 20}, "blockIO": {"weight": 300}}


def test_update_flags_only_given():
    assert resources_from_update_flags() == {}
    assert resources_from_update_flags(pids_limit=None, memory="") == {}


def test_update_unlimited_memory_also_unlimits_swap():
    assert resources_from_update_flags(memory="-1") == {"memory": {"limit": -1, "swap": -1}}


def test_update_flags_errors():
    with pytest.raises(UsageError, match="--cpu-period"):
        resources_from_update_flags(cpu_period="-5")
    with pytest.raises(UsageError, match="not a number"):
        resources_from_update_flags(cpu_quota="lots")
    with pytest.raises(UsageError, match="unknown update flag --bogus"):
        resources_from_update_flags(bogus=1)


def test_update_resources_file(tmp_path):
    f = tmp_path / "r.json"
    f.write_text('{"memory": {"limit": 1048576}}')
    # as in runc, --resources wins over the other flags
    assert resources_from_update_flags(resources=str(f), memory="5M") == {"memory": {"limit": 1048576}}
    import io
    assert resources_from_update_flags(resources="-", stdin=io.StringIO('{"pids": {"limit": 3}}')) == \
        {"pids": {"limit": 3}}
    with pytest.raises(UsageError, match="not valid JSON"):
        resources_from_update_flags(resources="-", stdin=io.StringIO("{"))
    with pytest.raises(UsageError, match="No such file"):
        resources_from_update_flags(resources=str(tmp_path / "missing.json"))
