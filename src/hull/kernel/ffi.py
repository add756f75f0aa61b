"""The part of ctypes that hull's kernel wrappers use, built on the C module `_ctypes`.

Importing the `ctypes` package costs ~4 ms on this kind of machine (it defines every C type,
the Windows and endian variants, and several function prototypes); `_ctypes` alone ~1 ms.
The container side of hull-runtime loads these wrappers once per container, so they use this
module. The objects are the C module's own: `Structure`, `byref`, `POINTER`, the simple types'
behaviour and calls through `CDLL` work exactly as with ctypes.
"""

import _ctypes
from _ctypes import POINTER, Structure, addressof, byref, get_errno, sizeof

__all__ = ["POINTER", "Structure", "addressof", "byref", "get_errno", "sizeof", "c_int", "c_uint",
           "c_long", "c_ulong", "c_ushort", "c_char", "c_char_p", "c_void_p", "c_int32", "c_uint32",
           "c_uint64", "c_size_t", "create_string_buffer", "CDLL", "PyDLL"]


def _simple(name, code):
    """A simple C type, as ctypes defines each: a _SimpleCData subclass with its struct code."""
    return type(name, (_ctypes._SimpleCData,), {"_type_": code, "__module__": __name__})


c_int = _simple("c_int", "i")
c_uint = _simple("c_uint", "I")
c_long = _simple("c_long", "l")
c_ulong = _simple("c_ulong", "L")
c_ushort = _simple("c_ushort", "H")
c_char = _simple("c_char", "c")
c_char_p = _simple("c_char_p", "z")
c_void_p = _simple("c_void_p", "P")

# x86_64 / aarch64 (LP64): int is 32 bits, long 64
c_int32 = c_int
c_uint32 = c_uint
c_uint64 = c_ulong
c_size_t = c_ulong


def create_string_buffer(init, size=None):
    """char[size], zeroed or holding the bytes `init` (then one longer by default, for the
    NUL), with .raw and .value, as ctypes'."""
    if isinstance(init, int):
        return (c_char * init)()
    buf = (c_char * (len(init) + 1 if size is None else size))()
    buf.value = init
    return buf


class CDLL:
    """A shared library whose functions return int and set errno (use_errno=True) by default;
    `lib.name` is the C function, its argtypes/restype settable as with ctypes. Calls release
    the GIL, as ctypes' do."""

    _hold_gil = 0

    def __init__(self, name, use_errno=True):
        flags = (_ctypes.FUNCFLAG_CDECL | self._hold_gil
                 | (_ctypes.FUNCFLAG_USE_ERRNO if use_errno else 0))

        class _FuncPtr(_ctypes.CFuncPtr):
            _flags_ = flags
            _restype_ = c_int
        self._FuncPtr = _FuncPtr
        self._name = name
        self._handle = _ctypes.dlopen(name, 0)  # RTLD_LOCAL; _ctypes adds RTLD_NOW

    def __getattr__(self, name):
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        func = self._FuncPtr((name, self))
        func.__name__ = name
        setattr(self, name, func)
        return func


class PyDLL(CDLL):
    """Like CDLL, but calls keep the GIL (ctypes.PyDLL): for the interpreter's own C API, and
    for a call during which no other thread may run Python code (clone.fork_sibling)."""

    _hold_gil = _ctypes.FUNCFLAG_PYTHONAPI
