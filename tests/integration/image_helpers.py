"""Fixtures for the image tests: a real docker-registry on 127.0.0.1 (with and without
htpasswd auth), a private HULL_ROOT per test, and a flaky proxy to interrupt/corrupt pulls.

Test modules import the fixtures they use: `from image_helpers import registry, hull_root`.
"""

import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

REGISTRY_BIN = shutil.which("docker-registry") or "/usr/bin/docker-registry"
VENV_BIN = Path(sys.executable).parent
HULL = str(VENV_BIN / "hull")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Registry:
    def __init__(self, tmp, users=None, addr="127.0.0.1", auth_yaml=None):
        if not os.path.exists(REGISTRY_BIN):
            pytest.skip("docker-registry is not installed (apt-get install docker-registry)")
        self.dir = Path(tmp)
        self.port = free_port()
        self.addr = addr
        self.host = f"{addr}:{self.port}"
        self.users = users or {}
        (self.dir / "storage").mkdir(parents=True)
        auth = ""
        if users:
            htpasswd = self.dir / "htpasswd"
            write_htpasswd(htpasswd, users)
            auth = f"auth:\n  htpasswd:\n    realm: hull-test\n    path: {htpasswd}\n"
        if auth_yaml:
            auth = auth_yaml  # e.g. token auth (test_image_token_auth.py)
        cfg = self.dir / "config.yml"
        cfg.write_text(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n"
            f"storage:\n  filesystem:\n    rootdirectory: {self.dir / 'storage'}\n  delete:\n    enabled: true\n"
            f"http:\n  addr: {self.host}\n  secret: hull-test-secret\n" + auth)
        self.log = open(self.dir / "registry.log", "wb")
        self.proc = subprocess.Popen([REGISTRY_BIN, "serve", str(cfg)], stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while True:
            try:
                c = http.client.HTTPConnection(addr, self.port, timeout=2)
                c.request("GET", "/v2/")
                c.getresponse().read()
                c.close()
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("docker-registry did not start:\n" + (self.dir / "registry.log").read_text())
                time.sleep(0.05)

    def stop(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()


def write_htpasswd(path, users):
    exe = shutil.which("htpasswd")
    lines = []
    for user, pw in users.items():
        if exe:
            out = subprocess.run([exe, "-Bbn", user, pw], capture_output=True, text=True, check=True).stdout
            lines.append(out.strip())
        else:
            import bcrypt  # noqa: F401 - only when htpasswd is missing
            lines.append(f"{user}:{bcrypt.hashpw(pw.encode(), bcrypt.gensalt()).decode()}")
    Path(path).write_text("\n".join(lines) + "\n")


@pytest.fixture
def registry(tmp_path_factory):
    r = Registry(tmp_path_factory.mktemp("registry"))
    yield r
    r.stop()


@pytest.fixture(scope="module")
def shared_registry(tmp_path_factory):
    r = Registry(tmp_path_factory.mktemp("registry"))
    yield r
    r.stop()


@pytest.fixture
def auth_registry(tmp_path_factory):
    r = Registry(tmp_path_factory.mktemp("authregistry"), users={"alice": "s3cret-pw"})
    yield r
    r.stop()


@pytest.fixture
def hull_root(tmp_path, monkeypatch):
    root = tmp_path / "hullroot"
    monkeypatch.setenv("HULL_ROOT", str(root))
    monkeypatch.setenv("HULL_AUTH_FILE", str(tmp_path / "auth.json"))
    # image commands start a zygote for their root (hull.cli.fast): one started late in a test
    # leaves by itself after 5 s idle; one already serving leaves when its socket goes (~2 s)
    monkeypatch.setenv("HULL_ZYGOTE_IDLE", "5")
    yield root
    try:
        os.unlink(root / "run" / "zygote.sock")
    except OSError:
        pass


def hull(*args, check=True, env=None, input=None):
    """Run the hull CLI from the venv. Returns CompletedProcess (text)."""
    e = dict(os.environ)
    e.update(env or {})
    p = subprocess.run([HULL, *map(str, args)], capture_output=True, text=True, env=e, input=input)
    if check and p.returncode != 0:
        raise AssertionError(f"hull {' '.join(map(str, args))} exited {p.returncode}:\n{p.stdout}\n{p.stderr}")
    return p


class FlakyProxy:
    """An HTTP proxy to a registry that can cut or corrupt blob downloads.

    mode: "ok", "cut" (send half of each blob body, then close), "cut_once" (cut the first
    blob response only), "corrupt" (flip a byte)."""

    def __init__(self, target_port, mode="ok"):
        self.mode = mode
        self.target_port = target_port
        self.blob_requests = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _forward(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                c = http.client.HTTPConnection("127.0.0.1", proxy.target_port, timeout=30)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                c.request(self.command, self.path, body=body, headers=headers)
                r = c.getresponse()
                data = r.read()
                is_blob = "/blobs/sha256:" in self.path and self.command == "GET" and r.status in (200, 206)
                if is_blob:
                    proxy.blob_requests.append((self.path, self.headers.get("Range")))
                self.send_response(r.status)
                for k, v in r.getheaders():
                    if k.lower() in ("connection", "transfer-encoding", "content-length"):
                        continue
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                if is_blob and proxy.mode in ("cut", "cut_once") and len(data) > 1:
                    if proxy.mode == "cut_once":
                        proxy.mode = "ok"
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.wfile.write(data[: len(data) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                if is_blob and proxy.mode == "corrupt" and data:
                    data = bytes([data[0] ^ 0xFF]) + data[1:]
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _forward

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.host = f"127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def flaky_proxy(registry):
    p = FlakyProxy(registry.port)
    yield p
    p.stop()


def skopeo(*args):
    exe = shutil.which("skopeo")
    if not exe:
        pytest.skip("skopeo is not installed")
    p = subprocess.run([exe, *map(str, args)], capture_output=True, text=True)
    if p.returncode != 0:
        raise AssertionError(f"skopeo {' '.join(map(str, args))} failed:\n{p.stderr}")
    return p.stdout


def urlopen_json(url):
    import json
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())
