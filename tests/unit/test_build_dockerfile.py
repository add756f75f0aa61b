"""The Dockerfile parser and variable substitution (hull.build.dockerfile)."""

import pytest

from hull.build import dockerfile as d


def parse(text):
    return d.parse(text, "Dockerfile").instructions


def test_comments_continuations_and_json_form():
    ins = parse("# comment\nFROM busybox\nRUN echo a \\\n  # inside\n\n  && echo b\nCMD [\"sh\", \"-c\", \"x\"]\n")
    assert [i.cmd for i in ins] == ["from", "run", "cmd"]
    assert ins[1].rest == "echo a   && echo b"
    assert ins[1].line == 3 and ins[1].json is None
    assert ins[2].json == ["sh", "-c", "x"]


def test_not_json_is_shell_form():
    assert parse("FROM x\nCMD [not json\n")[1].json is None


def test_unknown_instruction_points_to_the_line():
    with pytest.raises(d.DockerfileError) as e:
        parse("FROM busybox\n\n# x\n\n\n\nRUNN echo\n")
    assert str(e.value) == 'Dockerfile:7: unknown instruction "RUNN"'


def test_directives_only_at_top_and_escape():
    df = d.parse("# syntax=docker/dockerfile:1\n# escape=`\nFROM x\nRUN echo a `\n b\n")
    assert df.directives == {"syntax": "docker/dockerfile:1", "escape": "`"}
    assert df.instructions[1].rest == "echo a  b"
    df = d.parse("FROM x\n# escape=`\nRUN echo \\\n b\n")
    assert df.directives == {} and df.instructions[1].rest == "echo  b"


def test_heredocs():
    ins = parse("FROM x\nRUN <<EOF\necho hi\necho there\nEOF\nCOPY <<-'END' /f\n\tliteral $X\n\tEND\nRUN true\n")
    assert ins[1].heredocs[0].name == "EOF" and ins[1].heredocs[0].content == "echo hi\necho there\n"
    h = ins[2].heredocs[0]
    assert h.content == "literal $X\n" and not h.expand and h.chomp
    assert ins[3].cmd == "run" and ins[3].line == 9


def test_unterminated_heredoc():
    with pytest.raises(d.DockerfileError, match="Dockerfile:2: unterminated heredoc"):
        parse("FROM x\nRUN <<EOF\necho\n")


def test_flags():
    i = parse("FROM x\nCOPY --from=b --chown=1:2 --chmod=755 a /b/\n")[1]
    assert i.flags == {"from": ["b"], "chown": ["1:2"], "chmod": ["755"]} and i.rest == "a /b/"
    with pytest.raises(d.DockerfileError, match="unknown flag: --bogus"):
        parse("FROM x\nCOPY --bogus=1 a b\n")


def test_stages_and_meta_args():
    meta, stages = d.split_stages(d.parse("ARG V=1\nFROM busybox:$V AS Build\nRUN x\nFROM scratch\nCOPY --from=build a b\n"))
    assert [m.rest for m in meta] == ["V=1"]
    assert [(s.index, s.name, s.base) for s in stages] == [(0, "build", "busybox:$V"), (1, None, "scratch")]
    assert len(stages[0].instructions) == 1


@pytest.mark.parametrize("text,msg", [
    ("RUN x\n", "must come after a FROM"),
    ("FROM a AS b\nFROM c AS b\n", "duplicate name"),
    ("FROM a b\n", "FROM requires either one or three"),
    ("FROM x\nCOPY onlyone\n", "requires at least two arguments"),
    ("FROM x\nSHELL sh -c\n", "JSON form"),
    ("FROM x\nENV A\n", "ENV must have two arguments"),
    ("FROM x\nONBUILD FROM y\n", "isn't allowed as an ONBUILD trigger"),
])
def test_errors(text, msg):
    with pytest.raises(d.DockerfileError, match=msg):
        d.split_stages(d.parse(text))


def test_substitution_forms():
    L = d.Lexer()
    env = {"A": "1", "E": "", "P": "dir/file.tar.gz"}
    assert L.process_word("$A ${A} ${B:-def} ${E:-empty} ${E-set}", env) == "1 1 def empty "
    assert L.process_word("${A:+yes} ${B:+no} ${E+plus}", env) == "yes  plus"
    assert L.process_word("${P%.*} ${P%%.*} ${P#*/} ${P##*.}", env) == "dir/file.tar dir/file file.tar.gz gz"
    assert L.process_word("'$A' \"$A\" \\$A", env) == "$A 1 $A"
    with pytest.raises(ValueError, match="B: must be set"):
        L.process_word("${B:?must be set}", env)


def test_words_do_not_resplit_variables():
    assert d.Lexer().process_words('a "b c" $X', {"X": "x y"}) == ["a", "b c", "x y"]


def test_env_key_values():
    assert d.parse_key_values('A=1 B="x y" C=$A', "ENV", env={"A": "0"}) == [("A", "1"), ("B", "x y"), ("C", "0")]
    assert d.parse_key_values("C hello  world", "ENV") == [("C", "hello  world")]
    with pytest.raises(d.DockerfileError, match="can't find ="):
        d.parse_key_values("A=1 B", "ENV")
