"""Bearer-token auth against a real token flow: Debian's docker-registry with `auth: token`, and
a small token server of the test's own (threaded http.server on 127.0.0.1) that checks basic
credentials and issues RS256 JWTs signed with a key whose certificate is the registry's
rootcertbundle. Key and certificate come from the `openssl` CLI; tokens are signed with
`openssl dgst -sha256 -sign` (no crypto package needed).

The JWT header carries `kid` in libtrust's fingerprint format, which is how docker-registry
2.8 finds the signing key among the rootcertbundle's keys: base32 of the first 240 bits of
SHA-256 over the DER public key (SubjectPublicKeyInfo), in 12 groups of 4 joined by ':'.
"""

import base64
import hashlib
import json
import os
import shutil
import subprocess
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from image_helpers import Registry, hull, hull_root  # noqa: F401 - fixtures

from hull.image import bootstrap, registry as reg
from hull.image.registry import AuthError
from hull.image.store import Store, default_store

SERVICE = "hull-test-registry"
ISSUER = "hull-test-token-issuer"
USERS = {  # user: (password, actions they may have on any repository)
    "alice": ("s3cret-pw", {"pull", "push"}),
    "reader": ("r3ad-only", {"pull"}),
}

pytestmark = pytest.mark.skipif(not shutil.which("openssl"), reason="needs the openssl CLI")


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def libtrust_kid(der_public_key):
    b32 = base64.b32encode(hashlib.sha256(der_public_key).digest()[:30]).decode()
    return ":".join(b32[i:i + 4] for i in range(0, len(b32), 4))


class TokenServer:
    """GET /token?service=…&scope=repository:NAME:ACTIONS… with optional basic auth.
    Wrong credentials: 401. Anonymous: a token with no access. Otherwise each requested
    scope is granted with the actions the user has (possibly fewer than asked, as Docker
    Hub's server does). Every request is recorded in .requests as (user, [scopes])."""

    def __init__(self, workdir):
        self.dir = workdir
        self.key = workdir / "token.key"
        self.cert = workdir / "token.crt"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(self.key),
                        "-out", str(self.cert), "-days", "2", "-subj", "/CN=hull-test-token-signer"],
                       check=True, capture_output=True)
        pub = subprocess.run(["openssl", "x509", "-in", str(self.cert), "-noout", "-pubkey"],
                             check=True, capture_output=True).stdout
        der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "DER"], input=pub,
                             check=True, capture_output=True).stdout
        self.kid = libtrust_kid(der)
        self.requests = []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _send(self, code, body):
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                u = urlsplit(self.path)
                if u.path != "/token":
                    return self._send(404, {"error": "not found"})
                q = parse_qs(u.query)
                scopes = q.get("scope", [])
                user = None
                h = self.headers.get("Authorization", "")
                if h.startswith("Basic "):
                    try:
                        user, _, pw = base64.b64decode(h[6:]).decode().partition(":")
                    except ValueError:
                        user, pw = "", None
                    if USERS.get(user, (None,))[0] != pw:
                        with server.lock:
                            server.requests.append((f"{user}!denied", scopes))
                        return self._send(401, {"errors": [{"code": "UNAUTHORIZED",
                                                            "message": "invalid username or password"}]})
                with server.lock:
                    server.requests.append((user, scopes))
                if q.get("service", [None])[0] != SERVICE:
                    return self._send(400, {"error": "unknown service"})
                tok = server.issue(user, scopes)
                self._send(200, {"token": tok, "access_token": tok, "expires_in": 300,
                                 "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.realm = f"http://127.0.0.1:{self.port}/token"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def issue(self, user, scopes):
        allowed = USERS[user][1] if user else set()
        access = []
        for s in scopes:
            kind, _, rest = s.partition(":")
            name, _, actions = rest.rpartition(":")
            if kind != "repository" or not name:
                continue
            granted = [a for a in actions.split(",") if a in allowed]
            access.append({"type": "repository", "name": name, "actions": granted})
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "kid": self.kid}
        claims = {"iss": ISSUER, "sub": user or "", "aud": SERVICE, "exp": now + 300, "nbf": now - 10,
                  "iat": now, "jti": uuid.uuid4().hex, "access": access}
        signing_input = (b64url(json.dumps(header, separators=(",", ":")).encode()) + "."
                         + b64url(json.dumps(claims, separators=(",", ":")).encode()))
        sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", str(self.key)], input=signing_input.encode(),
                             check=True, capture_output=True).stdout
        return signing_input + "." + b64url(sig)

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)

    def scopes_of(self, user):
        with self.lock:
            return [tuple(s) for u, s in self.requests if u == user]


@pytest.fixture
def token_registry(tmp_path_factory):
    work = tmp_path_factory.mktemp("tokenauth")
    ts = TokenServer(work)
    auth_yaml = (f"auth:\n  token:\n    realm: {ts.realm}\n    service: {SERVICE}\n    issuer: {ISSUER}\n"
                 f"    rootcertbundle: {ts.cert}\n")
    try:
        r = Registry(work / "registry", auth_yaml=auth_yaml)
    except BaseException:
        ts.stop()
        raise
    r.tokens = ts
    try:
        yield r
    finally:
        r.stop()
        ts.stop()
        shutil.rmtree(work, ignore_errors=True)


def test_token_login_push_pull(token_registry, hull_root, tmp_path):
    host = token_registry.host
    ts = token_registry.tokens
    hull("image", "bootstrap", "busybox", "-q")
    ref = f"{host}/private/bb:1"
    hull("tag", "busybox", ref)
    # anonymous: the token server hands out a token with no access; the registry refuses
    p = hull("push", ref, check=False)
    assert p.returncode == 125 and "hull login" in p.stderr, p.stderr
    # a wrong password is refused by the token server at login, with a clear error
    p = hull("login", "-u", "alice", "--password-stdin", host, input="wrong\n", check=False)
    assert p.returncode == 125, p.stderr
    assert "authentication failed" in p.stderr and "invalid username or password" in p.stderr, p.stderr
    assert not (tmp_path / "auth.json").exists()
    p = hull("login", "-u", "alice", "--password-stdin", host, input="s3cret-pw\n")
    assert "Login Succeeded" in p.stdout
    assert oct(os.stat(tmp_path / "auth.json").st_mode & 0o777) == "0o600"
    digest = hull("push", "-q", ref).stdout.strip()
    assert ("repository:private/bb:pull,push",) in ts.scopes_of("alice")
    hull("rmi", ref, "busybox")
    assert hull("images", "-q").stdout.strip() == ""
    p = hull("pull", ref)
    assert ("repository:private/bb:pull",) in ts.scopes_of("alice")
    assert json.loads(hull("image", "inspect", ref).stdout)[0]["Digest"] == digest
    assert "Removing login credentials" in hull("logout", host).stdout
    p = hull("pull", ref, check=False)
    assert p.returncode == 125 and "unauthorized" in p.stderr.lower(), p.stderr


def test_token_scope_upgrade_pull_then_push(token_registry, hull_root, tmp_path):
    """One client holds a pull token for a repository, then needs pull,push for it: it asks
    the token server again for the wider scope and the registry accepts the new token. A
    cross-repo mount asks for push on the target and pull on the source in one token."""
    host = token_registry.host
    ts = token_registry.tokens
    src = default_store()
    img = bootstrap.busybox(src)
    alice = ("alice", USERS["alice"][0])
    ref = f"{host}/team/one:1"
    src.tag("busybox", ref)  # a name in the store on that registry: a mount source later
    assert reg.push(ref, None, src, credentials=alice) == img.digest
    layer = img.layers[0]["digest"]
    before = len(ts.scopes_of("alice"))
    with reg.Client(host, credentials=alice) as c:
        data, _mt, digest = c.get_manifest("team/one", "1")
        assert digest == img.digest
        assert c.has_blob("team/one", layer, ["repository:team/one:pull,push"])
    asked = ts.scopes_of("alice")[before:]
    assert asked == [("repository:team/one:pull",), ("repository:team/one:pull,push",)], asked
    # cross-repo mount: the push to team/two mounts the layer from team/one
    ref2 = f"{host}/team/two:1"
    src.tag("busybox", ref2)
    assert reg.push(ref2, None, src, credentials=alice) == img.digest
    assert any(set(s) == {"repository:team/two:pull,push", "repository:team/one:pull"}
               for s in ts.scopes_of("alice")), ts.scopes_of("alice")
    pulled = reg.pull(ref2, Store(tmp_path / "other"), credentials=alice)
    assert pulled.digest == img.digest


def test_token_pull_only_user_cannot_push(token_registry, hull_root):
    """A user the token server grants only `pull`: pulling works, the push is refused by the
    registry (the token lacks the scope: 401 insufficient_scope) with an error that says so."""
    host = token_registry.host
    src = default_store()
    img = bootstrap.busybox(src)
    assert reg.push("busybox", f"{host}/shared/bb:1", src, credentials=("alice", USERS["alice"][0])) == img.digest
    reader = ("reader", USERS["reader"][0])
    with reg.Client(host, credentials=reader) as c:
        c.check_login()
    pulled = reg.pull(f"{host}/shared/bb:1", src, credentials=reader)
    assert pulled.digest == img.digest
    with pytest.raises(AuthError) as e:
        reg.push("busybox", f"{host}/shared/bb:2", src, credentials=reader)
    msg = str(e.value)  # the registry lists the actions in no fixed order
    assert host in msg and "access denied" in msg and msg.endswith("to reader"), msg
    assert "did not grant repository:shared/bb:" in msg and "push" in msg, msg
    with pytest.raises(AuthError) as e:
        reg.pull(f"{host}/shared/bb:1", src, credentials=("reader", "wrong"))
    assert "authentication failed" in str(e.value)
