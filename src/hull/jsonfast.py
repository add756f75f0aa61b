"""JSON for hull-runtime's hot path, on the C accelerator `_json` directly.

`import json` pulls in `re` and `enum` (~10 ms of start-up per container, measured with
-X importtime); the C scanner and encoder need neither. Same results as json.loads/dumps for
what the runtime reads and writes (config.json, state.json, sync messages)."""

import _json


class _DecodeContext:
    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    memo = {}

    @staticmethod
    def parse_constant(name):
        return {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}[name]


_scan = _json.make_scanner(_DecodeContext())
_WS = " \t\n\r"


class JSONDecodeError(ValueError):
    """Like json.JSONDecodeError: msg, doc, pos, lineno, colno."""

    def __init__(self, msg, doc, pos):
        self.msg, self.doc, self.pos = msg, doc, pos
        self.lineno = doc.count("\n", 0, pos) + 1
        self.colno = pos - doc.rfind("\n", 0, pos)
        super().__init__(f"{msg}: line {self.lineno} column {self.colno} (char {pos})")


def loads(s):
    if isinstance(s, (bytes, bytearray)):
        s = s.decode()
    i = 0
    n = len(s)
    while i < n and s[i] in _WS:
        i += 1
    try:
        obj, end = _scan(s, i)
    except (StopIteration, ValueError, SystemError):
        # _json reports inner errors through json.decoder, which we did not import: let the
        # standard module parse the bad document and say exactly what is wrong
        return _slow_loads(s)
    while end < n and s[end] in _WS:
        end += 1
    if end != n:
        raise JSONDecodeError("Extra data", s, end)
    return obj


def _slow_loads(s):
    import json
    try:
        return json.loads(s)
    except json.JSONDecodeError as e:
        raise JSONDecodeError(e.msg, s, e.pos) from None


def load(f):
    return loads(f.read())


def _default(o):
    raise TypeError(f"Object of type {o.__class__.__name__} is not JSON serializable")


_encoders = {}


def dumps(obj, sort_keys=False, separators=(", ", ": "), indent=None):
    """json.dumps for dicts/lists/str/int/float/bool/None; `indent` pretty-prints like
    json.dumps(indent=N) (the C encoder has no indent)."""
    if indent is not None:
        return _pretty(obj, indent, 0, sort_keys)
    key = (sort_keys, separators)
    enc = _encoders.get(key)
    if enc is None:
        enc = _encoders[key] = _json.make_encoder(None, _default, _json.encode_basestring_ascii, None,
                                                  separators[1], separators[0], sort_keys, False, True)
    return "".join(enc(obj, 0))


def _pretty(obj, indent, level, sort_keys):
    pad = " " * (indent * (level + 1))
    end = " " * (indent * level)
    if isinstance(obj, dict) and obj:
        items = sorted(obj.items()) if sort_keys else obj.items()
        inner = ",\n".join(f"{pad}{_json.encode_basestring_ascii(str(k))}: {_pretty(v, indent, level + 1, sort_keys)}"
                           for k, v in items)
        return "{\n" + inner + "\n" + end + "}"
    if isinstance(obj, list) and obj:
        inner = ",\n".join(pad + _pretty(v, indent, level + 1, sort_keys) for v in obj)
        return "[\n" + inner + "\n" + end + "]"
    return dumps(obj)


def dump(obj, f, **kw):
    f.write(dumps(obj, **kw))
