"""A small HTTP/1.1 client on the standard library for the registry client (hull.image.registry).

httpx cost ~250 ms of imports and transport set-up on every `hull pull` here (its models,
idna, certifi, httpcore), more than pulling a small image takes; http.client is ~45 ms. This
module offers the part of httpx's API the registry client uses:

    c = Client(timeout=60, connect_timeout=15, verify=True)
    r = c.get(url, params=[("scope", "...")], auth=("user", "pw"))
    r = c.send(c.build_request("PUT", url, headers={...}, content=b"" | iterable | None), stream=True)
    r.status_code, r.headers.get("location"), r.content, r.text, r.json(), r.iter_raw(), r.close()

Keep-alive connections are pooled per (scheme, host, port) and shared by threads; a pooled
connection the server closed meanwhile is replaced transparently when the body can be re-sent.
Redirects are followed (Authorization dropped when the host changes, as httpx and Docker do).
HTTPS verifies against the system CAs (SSL_CERT_FILE/SSL_CERT_DIR honoured) unless verify=False.
Errors: TransportError and its subclasses ConnectError, ReadError, TimeoutError_,
RemoteProtocolError (names as httpx's).
"""

import http.client
import json
import socket
import threading
from urllib.parse import urlencode, urljoin, urlsplit

REDIRECTS = (301, 302, 303, 307, 308)
MAX_REDIRECTS = 10
_READ = 1 << 16


class TransportError(Exception):
    pass


class ConnectError(TransportError):
    pass


class ReadError(TransportError):
    pass


class TimeoutError_(TransportError):
    pass


class RemoteProtocolError(TransportError):
    pass


def _wrap(e, connecting=False):
    if isinstance(e, TransportError):
        return e
    if isinstance(e, (socket.timeout, TimeoutError)):
        return TimeoutError_(f"timed out{' connecting' if connecting else ''}")
    if connecting:
        return ConnectError(str(e) or e.__class__.__name__)
    if isinstance(e, (http.client.RemoteDisconnected, http.client.IncompleteRead, http.client.BadStatusLine,
                      ConnectionResetError, BrokenPipeError)):
        return RemoteProtocolError(str(e) or e.__class__.__name__)
    if isinstance(e, http.client.HTTPException):
        return RemoteProtocolError(f"{e.__class__.__name__}: {e}")
    return ReadError(str(e) or e.__class__.__name__)


class Request:
    def __init__(self, method, url, headers=None, content=None):
        self.method = method
        self.url = url
        self.headers = dict(headers or {})
        self.content = content


class Response:
    def __init__(self, client, key, conn, raw, request):
        self._client, self._key, self._conn, self._raw = client, key, conn, raw
        self.request = request
        self.status_code = raw.status
        self.reason_phrase = raw.reason
        self.headers = raw.headers  # http.client.HTTPMessage: case-insensitive .get / []
        self._content = None

    @property
    def url(self):
        return self.request.url

    def read(self):
        if self._content is None:
            try:
                self._content = self._raw.read()
            except Exception as e:  # noqa: BLE001 - socket and protocol errors alike
                self._discard()
                raise _wrap(e) from None
            self._release()
        return self._content

    @property
    def content(self):
        return self.read()

    @property
    def text(self):
        data = self.read()
        charset = self.headers.get_content_charset() or "utf-8"
        return data.decode(charset, "replace")

    def json(self):
        return json.loads(self.read())

    def iter_raw(self, chunk_size=_READ):
        """The body as it comes (no content decoding: hull sends no Accept-Encoding)."""
        if self._content is not None:
            if self._content:
                yield self._content
            return
        try:
            while True:
                chunk = self._raw.read1(chunk_size) if hasattr(self._raw, "read1") else self._raw.read(chunk_size)
                if not chunk:
                    break
                yield chunk
        except Exception as e:  # noqa: BLE001
            self._discard()
            raise _wrap(e) from None
        length = self._raw.length
        if length:  # the server announced more than it sent
            self._discard()
            raise RemoteProtocolError(f"connection closed with {length} bytes of the body missing")
        try:
            self._raw.read()  # b"": marks the response done, so the connection can be reused
        except Exception:  # noqa: BLE001
            self._discard()
            return
        self._content = b""
        self._release()

    def _release(self):
        conn, self._conn = self._conn, None
        if conn is not None:
            if self._raw.will_close or not self._raw.isclosed():
                conn.close()
            else:
                self._client._put(self._key, conn)

    def _discard(self):
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def close(self):
        if self._conn is not None:
            if self._content is None and not self._raw.isclosed():
                self._discard()  # unread body: the connection cannot be reused
            else:
                self._release()

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


class Client:
    def __init__(self, timeout=60, connect_timeout=15, verify=True, follow_redirects=True, max_idle=16):
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.verify = verify
        self.follow_redirects = follow_redirects
        self.max_idle = max_idle
        self._idle = {}
        self._lock = threading.Lock()
        self._ssl = None

    # -- connections ------------------------------------------------------------------------
    def _ssl_context(self):
        if self._ssl is None:
            import ssl
            if self.verify:
                ctx = ssl.create_default_context()
            else:
                ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            self._ssl = ctx
        return self._ssl

    def _get(self, key):
        with self._lock:
            pool = self._idle.get(key)
            if pool:
                return pool.pop(), True
        scheme, host, port = key
        try:
            if scheme == "https":
                conn = http.client.HTTPSConnection(host, port, timeout=self.connect_timeout,
                                                   context=self._ssl_context())
            else:
                conn = http.client.HTTPConnection(host, port, timeout=self.connect_timeout)
            conn.connect()
            conn.sock.settimeout(self.timeout)
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except Exception as e:  # noqa: BLE001
            raise _wrap(e, connecting=True) from None
        return conn, False

    def _put(self, key, conn):
        with self._lock:
            pool = self._idle.setdefault(key, [])
            if len(pool) < self.max_idle:
                pool.append(conn)
                return
        conn.close()

    def close(self):
        with self._lock:
            pools, self._idle = self._idle, {}
        for pool in pools.values():
            for conn in pool:
                conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    # -- requests ---------------------------------------------------------------------------
    def build_request(self, method, url, headers=None, content=None, params=None):
        if params:
            url += ("&" if "?" in url else "?") + urlencode(params)
        return Request(method, url, headers, content)

    def get(self, url, params=None, headers=None, auth=None):
        h = dict(headers or {})
        if auth:
            import base64
            h["Authorization"] = "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        return self.send(self.build_request("GET", url, h, params=params))

    def send(self, request, stream=False):
        req = request
        for _ in range(MAX_REDIRECTS + 1):
            r = self._send_one(req)
            if not self.follow_redirects or r.status_code not in REDIRECTS or not r.headers.get("location"):
                break
            r.read()
            target = urljoin(req.url, r.headers["location"])
            method, content = req.method, req.content
            headers = dict(req.headers)
            if r.status_code == 303 and method != "HEAD" or r.status_code in (301, 302) and method == "POST":
                method, content = "GET", None
                headers = {k: v for k, v in headers.items() if k.lower() not in ("content-length", "content-type")}
            if urlsplit(target).netloc != urlsplit(req.url).netloc:
                headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
            req = Request(method, target, headers, content)
        else:
            raise RemoteProtocolError(f"more than {MAX_REDIRECTS} redirects from {request.url}")
        if not stream:
            r.read()
        return r

    def _send_one(self, req):
        u = urlsplit(req.url)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise ConnectError(f"unsupported URL {req.url!r}")
        key = (u.scheme, u.hostname, u.port or (443 if u.scheme == "https" else 80))
        target = (u.path or "/") + (f"?{u.query}" if u.query else "")
        headers = {"User-Agent": "hull", **req.headers}  # http.client adds Host, Accept-Encoding: identity
        body = req.content
        replayable = body is None or isinstance(body, (bytes, bytearray))
        if body is None and req.method in ("POST", "PUT", "PATCH"):
            body = b""
        while True:
            conn, reused = self._get(key)
            try:
                conn.request(req.method, target, body=body, headers=headers)
                raw = conn.getresponse()
            except Exception as e:  # noqa: BLE001
                conn.close()
                if reused and replayable and isinstance(
                        e, (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError,
                            http.client.CannotSendRequest)):
                    continue  # the server dropped an idle keep-alive connection: a fresh one
                raise _wrap(e) from None
            return Response(self, key, conn, raw, req)
