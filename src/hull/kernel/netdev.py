"""Network-device calls the runtime itself needs: bringing up `lo` in a new network
namespace (runc does; everything else about networking is CNI's job)."""

import fcntl
import _struct as struct  # struct.py only re-exports the C module

import _socket

from hull.errors import KernelError

SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1


def link_up(name="lo"):
    s = _socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM | _socket.SOCK_CLOEXEC)
    try:
        req = struct.pack("16sH22x", name.encode(), 0)
        flags = struct.unpack("16sH22x", fcntl.ioctl(s.fileno(), SIOCGIFFLAGS, req))[1]
        fcntl.ioctl(s.fileno(), SIOCSIFFLAGS, struct.pack("16sH22x", name.encode(), flags | IFF_UP))
    except OSError as e:
        raise KernelError(e.errno, "ioctl(SIOCSIFFLAGS)", name) from None
    finally:
        s.close()
