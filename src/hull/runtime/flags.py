"""A small command-line parser for hull-runtime: the subset of argparse's add_argument that the
command modules use, parsed the way runc's urfave/cli does. argparse (with gettext, locale, re)
costs 10-20 ms of start-up on every container a client starts; this costs well under 1 ms."""

from hull.errors import UsageError


class Namespace:
    def __repr__(self):
        return f"Namespace({self.__dict__})"


class _Option:
    __slots__ = ("names", "dest", "action", "type", "default", "choices", "help")

    def __init__(self, names, dest, action, type_, default, choices, help_):
        self.names, self.dest, self.action, self.type = names, dest, action, type_
        self.default, self.choices, self.help = default, choices, help_

    @property
    def takes_value(self):
        return self.action not in ("store_true", "store_false")


class FlagParser:
    def __init__(self, prog, description=""):
        self.prog, self.description = prog, description
        self.options = {}      # "--name"/"-n" -> _Option
        self.ordered = []
        self.positionals = []  # (dest, nargs)

    def add_argument(self, *names, dest=None, action="store", type=None, default=None,
                     choices=None, help=None, nargs=None, **_ignored):
        if not names[0].startswith("-"):
            self.positionals.append((names[0], nargs, default))
            return
        long = next((n for n in names if n.startswith("--")), names[0])
        dest = dest or long.lstrip("-").replace("-", "_")
        if action == "store_true" and default is None:
            default = False
        if action == "append" and default is None:
            default = []
        opt = _Option(names, dest, action, type, default, choices, help)
        self.ordered.append(opt)
        for n in names:
            self.options[n] = opt
            if n.startswith("--"):
                self.options[n[1:]] = opt  # urfave/cli also takes -name

    def option(self, token):
        return self.options.get(token.split("=", 1)[0])

    def usage(self):
        lines = [f"usage: {self.prog} [options] " + " ".join(d.upper() for d, _, _ in self.positionals)]
        if self.description:
            lines += ["", self.description]
        lines += ["", "options:"]
        for o in self.ordered:
            lines.append(f"   {', '.join(o.names):<28} {o.help or ''}".rstrip())
        return "\n".join(lines)

    def parse_args(self, argv):
        ns = Namespace()
        for o in self.ordered:
            setattr(ns, o.dest, list(o.default) if isinstance(o.default, list) else o.default)
        positional = []
        i = 0
        while i < len(argv):
            tok = argv[i]
            i += 1
            if tok == "--":
                positional += argv[i:]
                break
            if tok in ("-h", "--help"):
                print(self.usage())
                raise SystemExit(0)
            if not tok.startswith("-") or tok == "-":
                positional.append(tok)
                continue
            opt = self.option(tok)
            if opt is None:
                raise UsageError(f"flag provided but not defined: {tok.split('=', 1)[0]}")
            if not opt.takes_value:
                setattr(ns, opt.dest, opt.action == "store_true")
                continue
            if "=" in tok:
                value = tok.split("=", 1)[1]
            elif i < len(argv):
                value = argv[i]
                i += 1
            else:
                raise UsageError(f"flag needs an argument: {tok}")
            if opt.type is not None:
                try:
                    value = opt.type(value)
                except ValueError:
                    raise UsageError(f"invalid value {value!r} for flag {tok.split('=', 1)[0]}") from None
            if opt.choices and value not in opt.choices:
                raise UsageError(f"invalid value {value!r} for flag {tok.split('=', 1)[0]} "
                                 f"(expected one of {', '.join(opt.choices)})")
            if opt.action == "append":
                getattr(ns, opt.dest).append(value)
            else:
                setattr(ns, opt.dest, value)
        self._positionals(ns, positional)
        return ns

    def _positionals(self, ns, values):
        for dest, nargs, default in self.positionals:
            if nargs == "*" or nargs == "...":
                setattr(ns, dest, values)
                values = []
            elif nargs == "?":
                setattr(ns, dest, values.pop(0) if values else default)
            else:
                if not values:
                    raise UsageError(f"{self.prog} requires {dest.upper().replace('_', ' ')}")
                setattr(ns, dest, values.pop(0))
        if values:
            raise UsageError(f"{self.prog}: unexpected arguments: {' '.join(values)}")


def split_trailing(parser, argv):
    """For `exec ID CMD...` and `ps ID -- ARGS`: options end at the container id, as with runc
    (urfave/cli), so the command's own flags (`sh -c ...`) are not taken as ours."""
    i = 0
    while i < len(argv):
        tok = argv[i]
        if tok == "--":
            return argv[:i], argv[i + 1:]
        if tok.startswith("-") and tok != "-":
            opt = parser.option(tok)
            if opt is not None and opt.takes_value and "=" not in tok:
                i += 1
            i += 1
            continue
        rest = argv[i + 1:]
        return argv[:i + 1], rest[1:] if rest[:1] == ["--"] else rest
    return argv, []
