"""clone.fork_sibling: a fork whose child belongs to our parent (CLONE_PARENT), with the
interpreter usable on both sides, as after os.fork()."""

import os

from hull.kernel import clone


def test_the_child_of_a_child_is_ours():
    r, w = os.pipe()
    middle = os.fork()
    if middle == 0:  # single-threaded, as stage 1 is
        code = 1
        try:
            pid = clone.fork_sibling()
            if pid == 0:
                os.write(w, b"%d %d\n" % (os.getpid(), os.getppid()))
                os._exit(7)
            os.write(w, b"%d\n" % pid)
            code = 0
        finally:
            os._exit(code)
    os.close(w)
    with os.fdopen(r) as f:
        lines = sorted(f.read().split("\n"), key=len)
    _, middle_status = os.waitpid(middle, 0)
    assert os.waitstatus_to_exitcode(middle_status) == 0
    reported = int(lines[1])
    sibling, its_parent = map(int, lines[2].split())
    assert sibling == reported and its_parent == os.getpid()
    # ours to reap, with its exit status
    _, status = os.waitpid(sibling, 0)
    assert os.waitstatus_to_exitcode(status) == 7
