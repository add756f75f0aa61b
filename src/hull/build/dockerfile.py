"""The Dockerfile parser, with the reference's rules.

    df = parse(text, name="Dockerfile")        # -> Dockerfile(directives, instructions)
    meta_args, stages = split_stages(df)        # ARGs before the first FROM; one Stage per FROM
    Lexer(escape).process_word("${A:-x}", env)  # variable substitution, quote removal

Rules (docs.docker.com/reference/dockerfile): parser directives (`# syntax=`, `# escape=`,
`# check=`) only at the very top; `#` lines are comments, also inside continuations; a line
ending in the escape character continues; empty continuation lines are skipped; heredocs
(`<<EOF`, `<<-EOF`, `<<"EOF"`) on RUN/COPY/ADD; JSON (exec) form vs shell form; `--flag=value`
options. Errors name the file and line: `Dockerfile:7: unknown instruction "RUNN"`.
"""

import json
import re

from hull.errors import HullError

INSTRUCTIONS = ("add", "arg", "cmd", "copy", "entrypoint", "env", "expose", "from", "healthcheck",
                "label", "maintainer", "onbuild", "run", "shell", "stopsignal", "user", "volume", "workdir")
# instructions whose arguments get ${VAR} substitution (the reference's list, plus ARG)
EXPANDED = ("add", "arg", "copy", "env", "expose", "from", "label", "stopsignal", "user", "volume", "workdir")
HEREDOC_INSTRUCTIONS = ("run", "copy", "add")
FLAGS = {"from": ("platform",), "run": ("mount", "network", "security"),
         "copy": ("from", "chown", "chmod", "link", "parents", "exclude"),
         "add": ("chown", "chmod", "link", "checksum", "keep-git-dir", "exclude"),
         "healthcheck": ("interval", "timeout", "start-period", "start-interval", "retries")}

_DIRECTIVE_RE = re.compile(r"^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$")
_HEREDOC_RE = re.compile(r"<<(-?)\s*(['\"]?)([a-zA-Z_][a-zA-Z0-9_]*)\2")


class DockerfileError(HullError):
    """A parse or validation error in a Dockerfile, with its file name and line."""

    exit_code = 1

    def __init__(self, name, line, message):
        self.name, self.line, self.message = name, line, message
        super().__init__(f"{name}:{line}: {message}" if line else f"{name}: {message}")


class Heredoc:
    def __init__(self, name, content, expand=True, chomp=False):
        self.name, self.content, self.expand, self.chomp = name, content, expand, chomp

    def __repr__(self):
        return f"Heredoc({self.name!r}, {self.content!r})"


class Instruction:
    """One instruction: `cmd` lowercased, `flags` {name: [values]}, `rest` the argument text
    (flags removed), `json` the parsed exec-form list or None, `heredocs`, `line` (1-based
    first line), `original` the logical line as written (continuations joined)."""

    def __init__(self, cmd, rest, line, original, flags=None, heredocs=(), keyword=None):
        self.cmd = cmd
        self.keyword = keyword or cmd.upper()
        self.rest = rest
        self.line = line
        self.original = original
        self.flags = flags or {}
        self.heredocs = list(heredocs)
        self.json = _json_list(rest)

    def flag(self, name, default=None):
        v = self.flags.get(name)
        return v[-1] if v else default

    def __repr__(self):
        return f"Instruction({self.keyword} {self.rest!r} @{self.line})"


class Dockerfile:
    def __init__(self, name, directives, instructions, escape):
        self.name, self.directives, self.instructions, self.escape = name, directives, instructions, escape


class Stage:
    """FROM <base> [AS name]: `index`, `name` (lowercased or None), `base` (unexpanded text),
    `platform`, the FROM `instruction` and the stage's `instructions` after it."""

    def __init__(self, index, base, name, platform, instruction):
        self.index, self.base, self.name, self.platform = index, base, name, platform
        self.instruction = instruction
        self.instructions = []

    def __repr__(self):
        return f"Stage({self.index}, {self.base!r}, name={self.name!r})"


def _json_list(text):
    t = text.strip()
    if not t.startswith("["):
        return None
    try:
        v = json.loads(t)
    except ValueError:
        return None
    if isinstance(v, list) and all(isinstance(x, str) for x in v):
        return v
    return None


def parse(text, name="Dockerfile"):
    """Parse Dockerfile `text`. Raises DockerfileError with the line of the problem."""
    if isinstance(text, bytes):
        text = text.decode("utf-8-sig", "replace")
    elif text.startswith("\ufeff"):
        text = text[1:]
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    lines = [ln[:-1] if ln.endswith("\r") else ln for ln in lines]
    directives = {}
    escape = "\\"
    i = 0
    # parser directives: only at the very top, before any comment/blank/instruction
    while i < len(lines):
        m = _DIRECTIVE_RE.match(lines[i].strip())
        if not m:
            break
        key = m.group(1).lower()
        if key not in ("syntax", "escape", "check"):
            break  # an unknown directive is a comment, and ends the directives
        if key in directives:
            raise DockerfileError(name, i + 1, f"only one {key} parser directive can be used")
        directives[key] = m.group(2)
        i += 1
    if "escape" in directives:
        escape = directives["escape"]
        if escape not in ("\\", "`"):
            raise DockerfileError(name, 0, f"invalid escape token '{escape}' does not match ` or \\")
    instructions = []
    n = len(lines)
    while i < n:
        raw = lines[i]
        s = raw.strip()
        if not s or s.startswith("#"):
            i += 1
            continue
        start = i
        parts = []
        original = []
        cont = True
        while cont:
            line = lines[i]
            original.append(line)
            i += 1
            stripped = line.rstrip()
            if stripped.endswith(escape) and not _escaped_escape(stripped, escape):
                parts.append(stripped[:-1])
                cont = True
                # skip following comment lines and empty lines inside a continuation
                while i < n and (not lines[i].strip() or lines[i].lstrip().startswith("#")):
                    i += 1
                if i >= n:
                    cont = False
            else:
                parts.append(line)
                cont = False
        logical = "".join(parts).strip()
        keyword, _, rest = logical.partition(" ")
        if "\t" in keyword:
            keyword, _, more = keyword.partition("\t")
            rest = more + (" " + rest if rest else "")
        cmd = keyword.lower()
        rest = rest.strip()
        if cmd not in INSTRUCTIONS:
            raise DockerfileError(name, start + 1, f'unknown instruction "{keyword}"')
        # heredocs: the lines after the instruction, up to each terminator
        heredocs = []
        if cmd in HEREDOC_INSTRUCTIONS or (cmd == "onbuild" and rest.split(" ", 1)[0].lower() in HEREDOC_INSTRUCTIONS):
            for m in (m for m in _HEREDOC_RE.finditer(rest) if not _in_quotes(rest, m.start())):
                chomp, quote, word = m.group(1) == "-", m.group(2), m.group(3)
                body = []
                while True:
                    if i >= n:
                        raise DockerfileError(name, start + 1, f"unterminated heredoc {word!r}")
                    ln = lines[i]
                    original.append(ln)
                    i += 1
                    check = ln.lstrip("\t") if chomp else ln
                    if check == word:
                        break
                    body.append(ln.lstrip("\t") if chomp else ln)
                heredocs.append(Heredoc(word, "\n".join(body) + "\n", expand=not quote, chomp=chomp))
        flags, rest = _split_flags(cmd, rest, name, start + 1)
        instructions.append(Instruction(cmd, rest, start + 1, "\n".join(original), flags, heredocs, keyword.upper()))
        _validate(instructions[-1], name)
    return Dockerfile(name, directives, instructions, escape)


def _escaped_escape(s, escape):
    """`\\\\` at the end of a line is an escaped escape, not a continuation (only for `\\`)."""
    return False


def _in_quotes(text, pos):
    """Is text[pos] inside a quoted string? (so `echo "<<EOF"` is not a heredoc)"""
    q, i = None, 0
    while i < pos:
        ch = text[i]
        if q:
            if ch == q:
                q = None
        elif text.startswith("<<", i):
            m = _HEREDOC_RE.match(text, i)
            if m:
                i = m.end()
                continue
        elif ch in "'\"":
            q = ch
        i += 1
    return q is not None


def _split_flags(cmd, rest, name, line):
    flags = {}
    allowed = FLAGS.get(cmd, ())
    while rest.startswith("--"):
        word, _, after = rest.partition(" ")
        if "\t" in word:
            word, _, more = word.partition("\t")
            after = more + " " + after
        key, eq, value = word[2:].partition("=")
        if key not in allowed:
            raise DockerfileError(name, line, f"unknown flag: --{key} for {cmd.upper()}")
        if not eq:
            if key == "link" or key == "parents" or key == "keep-git-dir":
                value = "true"
            else:
                raise DockerfileError(name, line, f"--{key} needs a value (--{key}=...)")
        flags.setdefault(key, []).append(value)
        rest = after.lstrip()
    return flags, rest


def _validate(ins, name):
    c, rest = ins.cmd, ins.rest
    if c in ("from", "workdir", "user", "stopsignal", "arg", "env", "label", "copy", "add", "expose",
             "volume", "onbuild", "shell", "maintainer") and not rest and not ins.heredocs:
        raise DockerfileError(name, ins.line, f"{ins.keyword} requires at least one argument")
    if c == "run" and not rest and not ins.heredocs:
        raise DockerfileError(name, ins.line, "RUN requires at least one argument")
    if c in ("copy", "add") and not ins.heredocs:
        words = ins.json if ins.json is not None else rest.split()
        if len(words) < 2:
            raise DockerfileError(name, ins.line, f"{ins.keyword} requires at least two arguments, but only one was provided. Destination could not be determined")
    if c == "shell" and ins.json is None:
        raise DockerfileError(name, ins.line, "SHELL requires the arguments to be in JSON form")
    if c == "onbuild":
        sub = rest.split(None, 1)[0].lower()
        if sub in ("onbuild", "from", "maintainer"):
            raise DockerfileError(name, ins.line, f"{sub.upper()} isn't allowed as an ONBUILD trigger")
        if sub not in INSTRUCTIONS:
            raise DockerfileError(name, ins.line, f'unknown instruction "{sub.upper()}" in ONBUILD')
    if c == "env":
        pairs = parse_key_values(rest, "ENV", name, ins.line)
        if not pairs:
            raise DockerfileError(name, ins.line, "ENV requires at least one argument")
    if c == "healthcheck":
        w = rest.split(None, 1)
        if not w or w[0].upper() not in ("CMD", "NONE"):
            raise DockerfileError(name, ins.line, "HEALTHCHECK needs CMD or NONE")
        if w[0].upper() == "CMD" and len(w) < 2:
            raise DockerfileError(name, ins.line, "HEALTHCHECK CMD needs a command")


def split_stages(df):
    """(meta ARG instructions, [Stage]). Everything but ARG needs a FROM before it."""
    meta, stages, names = [], [], {}
    for ins in df.instructions:
        if ins.cmd == "from":
            words = ins.rest.split()
            base, sname = words[0], None
            if len(words) == 3 and words[1].lower() == "as":
                sname = words[2].lower()
                if not re.match(r"^[a-z][a-z0-9_.-]*$", sname):
                    raise DockerfileError(df.name, ins.line, f"invalid name for build stage: {words[2]!r}, "
                                          "name can't start with a number or contain symbols")
                if sname in names:
                    raise DockerfileError(df.name, ins.line, f"duplicate name {words[2]!r} for a build stage "
                                          f"(first used on line {names[sname]})")
                names[sname] = ins.line
            elif len(words) != 1:
                raise DockerfileError(df.name, ins.line, "FROM requires either one or three arguments "
                                      "(FROM <image> [AS <name>])")
            stages.append(Stage(len(stages), base, sname, ins.flag("platform"), ins))
        elif not stages:
            if ins.cmd != "arg":
                raise DockerfileError(df.name, ins.line, f"no build stage in current context: {ins.keyword} "
                                      "must come after a FROM (only ARG may come before the first FROM)")
            meta.append(ins)
        else:
            stages[-1].instructions.append(ins)
    if not stages:
        raise DockerfileError(df.name, 0, "the Dockerfile has no FROM instruction (file with no instructions?)")
    return meta, stages


# -- words, quotes and variables ---------------------------------------------------------

class Lexer:
    """The reference's shell-word processing: quotes, the escape character, and
    $VAR / ${VAR} / ${VAR:-word} / ${VAR-word} / ${VAR:+word} / ${VAR+word} / ${VAR:?msg} /
    ${VAR#pat} ${VAR##pat} ${VAR%pat} ${VAR%%pat}. Unset variables expand to "". Variables
    are not re-split into words."""

    def __init__(self, escape="\\"):
        self.escape = escape

    def process_word(self, text, env):
        return "".join(w for w in self._words(text, env, split=False))

    def process_words(self, text, env):
        return self._words(text, env, split=True)

    def _words(self, text, env, split):
        words, cur, has = [], [], False
        i, n, esc = 0, len(text), self.escape
        while i < n:
            ch = text[i]
            if split and ch in " \t\n":
                if has:
                    words.append("".join(cur))
                    cur, has = [], False
                i += 1
                continue
            if ch == esc:
                if i + 1 < n:
                    cur.append(text[i + 1])
                    i += 2
                else:
                    cur.append(ch)
                    i += 1
                has = True
                continue
            if ch == "'":
                j = text.find("'", i + 1)
                if j < 0:
                    raise ValueError("unexpected end of statement while looking for matching single-quote")
                cur.append(text[i + 1:j])
                i, has = j + 1, True
                continue
            if ch == '"':
                i += 1
                has = True
                while True:
                    if i >= n:
                        raise ValueError("unexpected end of statement while looking for matching double-quote")
                    c = text[i]
                    if c == '"':
                        i += 1
                        break
                    if c == esc and i + 1 < n and text[i + 1] in ('"', "$", esc):
                        cur.append(text[i + 1])
                        i += 2
                        continue
                    if c == "$":
                        val, i = self._dollar(text, i, env)
                        cur.append(val)
                        continue
                    cur.append(c)
                    i += 1
                continue
            if ch == "$":
                val, i = self._dollar(text, i, env)
                cur.append(val)
                has = True
                continue
            cur.append(ch)
            has = True
            i += 1
        if has or not split:
            words.append("".join(cur))
        return words

    def _dollar(self, text, i, env):
        n = len(text)
        if i + 1 >= n:
            return "$", i + 1
        c = text[i + 1]
        if c == "{":
            j = i + 2
            m = re.match(r"[A-Za-z_][A-Za-z0-9_]*", text[j:])
            if not m:
                raise ValueError(f"bad substitution in {text!r}")
            name = m.group(0)
            j += len(name)
            if j < n and text[j] == "}":
                return env.get(name, ""), j + 1
            op = ""
            for cand in (":-", ":+", ":?", "##", "%%", "-", "+", "?", "#", "%"):
                if text.startswith(cand, j):
                    op = cand
                    break
            if not op:
                raise ValueError(f"unsupported modifier ({text[j:j + 1]!r}) in substitution {text!r}")
            j += len(op)
            depth, k = 1, j
            while k < n:
                if text[k] == "{":
                    depth += 1
                elif text[k] == "}":
                    depth -= 1
                    if depth == 0:
                        break
                k += 1
            if k >= n:
                raise ValueError(f"missing '}}' in substitution {text!r}")
            word = self.process_word(text[j:k], env)
            val = env.get(name)
            if op == ":-":
                out = val if val else word
            elif op == "-":
                out = val if val is not None else word
            elif op == ":+":
                out = word if val else ""
            elif op == "+":
                out = word if val is not None else ""
            elif op in (":?", "?"):
                if (op == ":?" and not val) or val is None:
                    raise ValueError(f"{name}: {word or 'is not allowed to be unset'}")
                out = val
            else:
                out = _trim(val or "", op, word)
            return out, k + 1
        m = re.match(r"[A-Za-z_][A-Za-z0-9_]*", text[i + 1:])
        if not m:
            return "$", i + 1
        return env.get(m.group(0), ""), i + 1 + len(m.group(0))


def _trim(val, op, pat):
    import fnmatch
    rng = range(len(val) + 1)
    if op in ("#", "##"):
        cands = [k for k in rng if fnmatch.fnmatchcase(val[:k], pat)]
        if not cands:
            return val
        return val[(min(cands) if op == "#" else max(cands)):]
    cands = [k for k in rng if fnmatch.fnmatchcase(val[k:], pat)]
    if not cands:
        return val
    return val[:(max(cands) if op == "%" else min(cands))]


def parse_key_values(text, what, name="Dockerfile", line=0, lexer=None, env=None):
    """ENV/LABEL arguments: `k=v k2="v 2"` or the legacy `k v with spaces` form.
    Without a lexer, only checks the shape and returns raw pairs."""
    lexer = lexer or Lexer()
    env = env if env is not None else {}
    t = text.strip()
    try:
        words = _raw_words(t, lexer.escape)
        if words and "=" not in words[0]:
            parts = re.split(r"\s+", t, 1)
            if len(parts) < 2 or not parts[1].strip():
                raise DockerfileError(name, line, f"{what} must have two arguments")
            return [(parts[0], lexer.process_word(parts[1].strip(), env))]
        out = []
        for raw in words:
            if "=" not in raw:
                raise DockerfileError(name, line, f"Syntax error - can't find = in {raw!r}. Must be of the form: name=value")
            k, _, v = raw.partition("=")
            k = lexer.process_word(k, env)
            if not k:
                raise DockerfileError(name, line, f"{what} names can not be blank")
            out.append((k, lexer.process_word(v, env)))
        return out
    except ValueError as e:
        raise DockerfileError(name, line, str(e)) from None


def _raw_words(text, escape="\\"):
    """Split on unquoted whitespace, keeping quotes and escapes (for a later process_word)."""
    words, cur, q, i = [], [], None, 0
    while i < len(text):
        ch = text[i]
        if q:
            cur.append(ch)
            if ch == escape and q == '"' and i + 1 < len(text):
                cur.append(text[i + 1])
                i += 2
                continue
            if ch == q:
                q = None
        elif ch == escape and i + 1 < len(text):
            cur.append(ch + text[i + 1])
            i += 2
            continue
        elif ch in "'\"":
            q = ch
            cur.append(ch)
        elif ch in " \t\n":
            if cur:
                words.append("".join(cur))
                cur = []
        else:
            cur.append(ch)
        i += 1
    if q:
        raise ValueError(f"unexpected end of statement while looking for matching {q}")
    if cur:
        words.append("".join(cur))
    return words
