""".dockerignore patterns and the build context (hull.build.dockerignore, hull.build.context)."""

import os

import pytest

from hull.build.context import Context, ContextError
from hull.build.dockerignore import Matcher


@pytest.mark.parametrize("patterns,path,excluded", [
    (["*.log"], "a.log", True),
    (["*.log"], "sub/a.log", False),          # * does not cross directories
    (["**/*.log"], "sub/deep/a.log", True),
    (["**/*.log"], "a.log", True),
    (["sub"], "sub/x/y", True),               # a dir pattern covers what is below it
    (["/sub/"], "sub/x", True),
    (["*", "!keep.txt"], "keep.txt", False),
    (["*", "!keep.txt"], "other", True),
    (["*.md", "!README.md", "README.md"], "README.md", True),  # the last match wins
    (["a?c"], "abc", True),
    (["[a-c]x"], "bx", True),
    (["[a-c]x"], "dx", False),
    (["./foo/../bar"], "bar", True),
])
def test_patterns(patterns, path, excluded):
    assert Matcher(patterns).excluded(path) is excluded


def test_comments_and_blank_lines():
    m = Matcher.parse("# a comment\n\n  *.tmp  \n")
    assert m.excluded("x.tmp") and not m.excluded("# a comment")


def _tree(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.py").write_text("a")
    (tmp_path / "src" / "b.log").write_text("b")
    (tmp_path / ".hidden").write_text("h")
    (tmp_path / "top.txt").write_text("t")
    return tmp_path


def test_context_resolve_and_globs(tmp_path):
    ctx = Context(_tree(tmp_path), Matcher(["**/*.log"]))
    assert [s.rel for s in ctx.resolve("src/*")] == ["src/a.py"]
    assert [s.rel for s in ctx.resolve("*")] == [".hidden", "src", "top.txt"]   # Go globs match dotfiles
    assert [r for r, _, _ in ctx.walk(ctx.resolve("src")[0])] == ["", "a.py"]
    with pytest.raises(ContextError, match="excluded by .dockerignore"):
        ctx.resolve("src/b.log")


def test_context_refuses_paths_outside(tmp_path):
    ctx = Context(_tree(tmp_path))
    with pytest.raises(ContextError, match="outside the build context"):
        ctx.resolve("../etc/passwd")
    os.symlink("/etc", tmp_path / "escape")
    with pytest.raises(ContextError, match="outside the build context"):
        ctx.resolve("escape/passwd")
    assert ctx.resolve("/top.txt")[0].rel == "top.txt"      # absolute = relative to the context


def test_checksum_follows_content_not_mtime(tmp_path):
    ctx = Context(_tree(tmp_path))
    before = ctx.checksum(ctx.resolve("src"))
    os.utime(tmp_path / "src" / "a.py", (1, 1))
    assert ctx.checksum(ctx.resolve("src")) == before
    (tmp_path / "src" / "a.py").write_text("changed")
    assert ctx.checksum(ctx.resolve("src")) != before
