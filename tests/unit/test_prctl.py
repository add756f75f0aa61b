"""linux.personality translation and oomScoreAdj checks (no root needed)."""

import pytest

from hull.errors import SpecError
from hull.kernel import prctl


def test_personality_domains():
    assert prctl.personality_value("LINUX") == 0
    assert prctl.personality_value("LINUX32") == 8


def test_personality_flags():
    assert prctl.personality_value("LINUX", ["ADDR_NO_RANDOMIZE"]) == 0x0040000


def test_unknown_domain():
    with pytest.raises(SpecError) as e:
        prctl.validate_personality({"domain": "BSD"})
    assert e.value.path == "linux.personality.domain"


def test_unknown_flag_has_index():
    with pytest.raises(SpecError) as e:
        prctl.validate_personality({"domain": "LINUX", "flags": ["ADDR_NO_RANDOMIZE", "NOPE"]})
    assert e.value.path == "linux.personality.flags[1]"


@pytest.mark.parametrize("value", [-1001, 1001, "5", True])
def test_oom_score_adj_range(value):
    with pytest.raises(SpecError) as e:
        prctl.set_oom_score_adj(value)
    assert e.value.path == "process.oomScoreAdj"


def test_getters_work_unprivileged():
    assert prctl.get_dumpable() in (True, False)
    assert prctl.get_no_new_privs() in (True, False)
    assert prctl.get_personality() >= 0
