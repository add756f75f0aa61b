"""hull.image.http, the stdlib HTTP client under the registry client: keep-alive reuse, a
dropped idle connection replaced, redirects (Authorization dropped across hosts), chunked
bodies, a body cut short is an error, connect errors, query params and basic auth."""

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from hull.image import http


class Server:
    def __init__(self):
        self.seen = []
        self.conns = set()
        srv = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_GET(self):
                srv.seen.append((self.path, self.headers.get("Authorization"), self.client_address[1]))
                srv.conns.add(self.client_address[1])
                if self.path.startswith("/redirect"):
                    self.send_response(307)
                    self.send_header("Location", self.path.split("to=", 1)[1])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                elif self.path == "/chunked":
                    self.send_response(200)
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    for part in (b"hello ", b"chunked ", b"world"):
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                    self.wfile.write(b"0\r\n\r\n")
                elif self.path == "/cut":
                    self.send_response(200)
                    self.send_header("Content-Length", "1000")
                    self.end_headers()
                    self.wfile.write(b"x" * 10)
                    self.wfile.flush()
                    self.close_connection = True
                elif self.path == "/close-after":
                    self.send_response(200)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                    self.wfile.flush()
                    # keep-alive announced, but the server drops the connection right away
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                else:
                    body = (self.path + "\n").encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "text/plain; charset=utf-8")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(body)

            do_HEAD = do_GET

            def do_PUT(self):
                n = int(self.headers["Content-Length"])
                data = self.rfile.read(n)
                srv.seen.append((self.path, len(data), self.client_address[1]))
                self.send_response(201)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = Server()
    yield s
    s.stop()


@pytest.fixture
def client():
    c = http.Client(timeout=10)
    yield c
    c.close()


def test_keepalive_reuse_params_auth(server, client):
    r = client.get(server.url + "/a", params=[("scope", "repo:x:pull"), ("service", "s")], auth=("u", "p"))
    assert r.status_code == 200 and r.text == "/a?scope=repo%3Ax%3Apull&service=s\n"
    assert r.headers.get("content-type").startswith("text/plain") and r.headers["CONTENT-LENGTH"] == str(len(r.content))
    assert server.seen[0][1] == "Basic dTpw"
    for _ in range(3):
        assert client.get(server.url + "/b").status_code == 200
    assert len(server.conns) == 1  # one keep-alive connection for all four
    r = client.send(client.build_request("HEAD", server.url + "/h"), stream=True)
    assert r.status_code == 200 and list(r.iter_raw()) == []
    r.close()
    assert client.get(server.url + "/c").status_code == 200 and len(server.conns) == 1


def test_stream_iter_raw_and_chunked(server, client):
    r = client.send(client.build_request("GET", server.url + "/chunked"), stream=True)
    assert b"".join(r.iter_raw()) == b"hello chunked world"
    r.close()
    assert client.get(server.url + "/x").status_code == 200
    assert len(server.conns) == 1


def test_body_cut_short_is_an_error(server, client):
    r = client.send(client.build_request("GET", server.url + "/cut"), stream=True)
    with pytest.raises(http.TransportError):
        b"".join(r.iter_raw())
    r.close()
    with pytest.raises(http.RemoteProtocolError):
        client.get(server.url + "/cut")
    assert client.get(server.url + "/after").status_code == 200  # a fresh connection


def test_dropped_idle_connection_is_replaced(server, client):
    assert client.get(server.url + "/close-after").content == b"ok"
    import time
    time.sleep(0.1)
    assert client.get(server.url + "/next").status_code == 200
    n = len(server.conns)
    r = client.send(client.build_request("PUT", server.url + "/up", {"Content-Length": "5"}, b"12345"))
    assert r.status_code == 201 and server.seen[-1][:2] == ("/up", 5)
    assert len(server.conns) == n  # the PUT reused the /next connection


def test_iterable_body_put(server, client):
    body = iter([b"ab", b"cd", b"e"])
    r = client.send(client.build_request("PUT", server.url + "/it", {"Content-Length": "5"}, body))
    assert r.status_code == 201 and server.seen[-1][:2] == ("/it", 5)


def test_redirects_drop_authorization_across_hosts(server, client):
    other = Server()
    try:
        url = f"{server.url}/redirect?to={other.url}/blob"
        r = client.get(url, headers={"Authorization": "Bearer t"})
        assert r.status_code == 200 and r.text == "/blob\n"
        assert server.seen[-1][1] == "Bearer t" and other.seen[-1][1] is None
        r = client.get(f"{server.url}/redirect?to=/same", headers={"Authorization": "Bearer t"})
        assert r.text == "/same\n" and server.seen[-1][1] == "Bearer t"
        nofollow = http.Client(follow_redirects=False)
        assert nofollow.get(url).status_code == 307
        nofollow.close()
    finally:
        other.stop()


def test_connect_errors():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    c = http.Client(connect_timeout=2)
    with pytest.raises(http.ConnectError):
        c.get(f"http://127.0.0.1:{port}/v2/")
    with pytest.raises(http.ConnectError):
        c.get("ftp://x/")
    c.close()


def test_tls_to_plain_http_is_a_connect_error(server):
    c = http.Client(verify=False, connect_timeout=5)
    with pytest.raises(http.ConnectError):
        c.get(server.url.replace("http://", "https://") + "/v2/")
    c.close()
