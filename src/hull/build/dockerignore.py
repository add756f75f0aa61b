""".dockerignore: Go-style patterns (moby/patternmatcher semantics).

    m = Matcher.from_file(context / ".dockerignore")     # or Matcher(["*.log", "!keep.log"])
    m.excluded("dir/a.log")                                # -> True

Each line is a pattern, cleaned like Go's filepath.Clean, a leading `/` dropped; `#` lines
are comments. `*` matches any run of non-separator characters, `?` one, `[a-z]` a class,
`**` any number of directories. A pattern also matches everything under a directory it
matches. The last matching pattern decides; `!pattern` re-includes.
"""

import os
import posixpath
import re


class Pattern:
    def __init__(self, text):
        self.exclusion = text.startswith("!")
        if self.exclusion:
            text = text[1:].strip()
        text = posixpath.normpath(text.strip()) if text.strip() else ""
        while text.startswith("/"):
            text = text[1:]
        if text == ".":
            text = ""
        self.text = text
        self.regex = re.compile(_to_regex(text)) if text else None
        self.dirs = text.count("/") + 1 if text else 0

    def match(self, path):
        if self.regex is None:
            return False
        if self.regex.match(path):
            return True
        # a pattern naming a directory matches everything below it
        parts = path.split("/")
        for k in range(len(parts) - 1, 0, -1):
            if self.regex.match("/".join(parts[:k])):
                return True
        return False

    def __repr__(self):
        return f"Pattern({'!' if self.exclusion else ''}{self.text})"


def _to_regex(p):
    out = ["^"]
    i, n = 0, len(p)
    while i < n:
        ch = p[i]
        if ch == "*":
            if i + 1 < n and p[i + 1] == "*":
                i += 1
                # `**/` (or a final `**`) matches zero or more directories
                if i + 1 < n and p[i + 1] == "/":
                    i += 1
                    out.append("(?:.*/)?")
                else:
                    out.append(".*")
            else:
                out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "[":
            j = p.find("]", i + 1)
            if j < 0:
                out.append(re.escape(ch))
            else:
                body = p[i + 1:j]
                if body.startswith("^") or body.startswith("!"):
                    body = "^" + body[1:]
                out.append("[" + body.replace("\\", "\\\\") + "]")
                i = j
        elif ch == "\\" and i + 1 < n:
            i += 1
            out.append(re.escape(p[i]))
        else:
            out.append(re.escape(ch))
        i += 1
    out.append("$")
    return "".join(out)


class Matcher:
    def __init__(self, patterns=()):
        self.patterns = [Pattern(p) for p in patterns if p.strip() and p.strip() != "!"]
        self.patterns = [p for p in self.patterns if p.text or p.exclusion]
        self.has_exclusions = any(p.exclusion for p in self.patterns)

    @classmethod
    def parse(cls, text):
        lines = []
        for line in text.splitlines():
            s = line.strip()
            if not s or s.startswith("#"):
                continue
            lines.append(s)
        return cls(lines)

    @classmethod
    def from_file(cls, path):
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                return cls.parse(f.read())
        except FileNotFoundError:
            return cls()

    def excluded(self, path):
        """Is `path` (relative to the context, `/`-separated) left out of the context?"""
        path = posixpath.normpath(path.replace(os.sep, "/")).lstrip("/")
        if not self.patterns or path in ("", "."):
            return False
        out = False
        for p in self.patterns:
            if p.exclusion == out and p.match(path):  # only a pattern that could flip the state
                out = not p.exclusion
        return out

    def may_include_below(self, dirpath):
        """Could an exclusion re-include something under the excluded dir `dirpath`?
        (Then the walk has to descend into it.)"""
        if not self.has_exclusions:
            return False
        d = dirpath.rstrip("/") + "/"
        for p in self.patterns:
            if p.exclusion and (p.text.startswith(d) or "*" in p.text or "?" in p.text or "[" in p.text):
                return True
        return False

    def __bool__(self):
        return bool(self.patterns)
