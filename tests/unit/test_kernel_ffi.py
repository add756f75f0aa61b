"""kernel/ffi: the ctypes slice hull uses behaves as ctypes does where hull relies on it."""

import ctypes

from hull.kernel import ffi


def test_string_buffers_like_ctypes():
    for args in ((8,), (b"Apache-2.0",), (b"\x01\x02\x03", 3), (b"ab", 6)):
        mine, theirs = ffi.create_string_buffer(*args), ctypes.create_string_buffer(*args)
        assert (mine.raw, mine.value, ffi.sizeof(mine)) == (theirs.raw, theirs.value, ctypes.sizeof(theirs))


def test_calls_set_errno_and_take_ints_bytes_and_none():
    libc = ffi.CDLL("libc.so.6")
    assert libc.getpid() > 0
    assert libc.access(b"/nonexistent/x", 0) == -1 and ffi.get_errno() == 2  # ENOENT
    buf = ffi.create_string_buffer(64)
    assert libc.gethostname(buf, 64) == 0 and buf.value
    libc.strlen.restype = ffi.c_size_t
    assert libc.strlen(b"hull") == 4


def test_structures_and_pointers():
    class Pair(ffi.Structure):
        _fields_ = [("a", ffi.c_uint32), ("b", ffi.c_uint64)]
    p = Pair(1, 2)
    assert ffi.sizeof(p) == 16 and (p.a, p.b) == (1, 2)
    assert ffi.addressof(p) == ffi.c_void_p.from_buffer(ffi.POINTER(Pair)(p)).value
