"""A distribution v2 / OCI distribution client: pull and push images.

Auth: the first request answers 401 with `WWW-Authenticate`; Basic sends the stored
credentials, Bearer fetches a token from the realm for the request's scopes (with the
credentials, if any) and caches it per scope set. Transport errors, 429 and 5xx are retried
with exponential backoff. HTTPS with the system CAs; hosts that are insecure (loopback,
`--insecure`, `insecure-registries` in $HULL_ROOT/config.json or /etc/hull/config.json,
$HULL_INSECURE_REGISTRIES) are tried over HTTPS without verification, then HTTP.

Pull: manifest by tag or digest (all four media types accepted), an index/list picks the
platform (linux/<host arch> by default), config and layers download in parallel, each blob
under its store lock, resuming a partial from an interrupted pull with a Range request, hashed
while written and only committed when its digest matches. Push: each blob is checked with HEAD,
mounted from another repository of the same registry that holds it, else uploaded
(monolithic, or chunked PATCHes when `chunk_size` is set); then the manifest.

Progress goes to a `Reporter` (no-op here; the CLI draws rich bars).
"""

import json
import os
import re
import threading
import time
from urllib.parse import urlencode, urljoin

from hull.errors import HullError, NotFound
from hull.image import auth as auth_mod
from hull.image import reference
from hull.image.store import (INDEX_TYPES, MT_DOCKER_LIST, MT_DOCKER_MANIFEST, MT_OCI_INDEX, MT_OCI_MANIFEST,
                              REF_NAME, DigestMismatch, default_store, manifest_kind, sha256_digest)

ACCEPT = ", ".join([MT_OCI_INDEX, MT_DOCKER_LIST, MT_OCI_MANIFEST, MT_DOCKER_MANIFEST])
RETRY_STATUS = (408, 429, 500, 502, 503, 504)
_CHUNK = 1 << 20


class RegistryError(HullError):
    pass


class AuthError(RegistryError):
    pass


class Reporter:
    """Progress sink; methods are called from download threads."""

    def start(self, key, label, total):
        pass

    def advance(self, key, n):
        pass

    def done(self, key, status):
        pass

    def message(self, text):
        pass


def parse_challenge(header):
    """'Bearer realm="x",service="y",scope="z"' -> ("bearer", {...})."""
    if not header:
        return None, {}
    scheme, _, rest = header.strip().partition(" ")
    params = {}
    for m in re.finditer(r'([A-Za-z_]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))', rest):
        params[m.group(1).lower()] = m.group(2) if m.group(2) is not None else m.group(3)
    return scheme.lower(), params


def is_insecure_host(host):
    """Loopback, or listed in insecure-registries (hull.image.settings: config files, env)."""
    from hull.image import settings
    return settings.is_insecure(host)


def _error_text(resp):
    try:
        errs = resp.json().get("errors") or []
        if errs:
            return "; ".join(f"{e.get('code', '')}: {e.get('message', '')}".strip(": ") for e in errs)
    except Exception:
        pass
    return (resp.text or resp.reason_phrase or "")[:200].strip()


class Client:
    """One registry host. Thread-safe enough for parallel blob transfers."""

    def __init__(self, host, insecure=None, credentials=None, retries=4, backoff=0.25, timeout=60):
        from hull.image import http
        self.net = http  # httpx's API, the part used here, on http.client
        self.host = host
        self.insecure = is_insecure_host(host) if insecure is None else insecure
        self.credentials = credentials if credentials is not None else auth_mod.get(host)
        self.retries = retries
        self.backoff = backoff
        self.http = http.Client(timeout=timeout, connect_timeout=15, follow_redirects=True,
                                verify=not self.insecure, max_idle=16)
        self.base = None
        self.challenge = (None, {})
        self._tokens = {}
        self._lock = threading.Lock()

    def close(self):
        self.http.close()

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    # -- connection and auth ------------------------------------------------------------

    def ping(self):
        """GET /v2/ to pick the scheme and learn the auth challenge."""
        if self.base:
            return
        schemes = ["https", "http"] if self.insecure else ["https"]
        last = None
        for scheme in schemes:
            url = f"{scheme}://{self.host}/v2/"
            for attempt in range(self.retries + 1):
                try:
                    r = self.http.get(url)
                except self.net.ConnectError as e:
                    last = e
                    if scheme == "https" and self.insecure:
                        break  # try plain http
                    if attempt < self.retries:
                        time.sleep(self.backoff * 2 ** attempt)
                        continue
                    break
                except self.net.TransportError as e:
                    last = e
                    if attempt < self.retries:
                        time.sleep(self.backoff * 2 ** attempt)
                        continue
                    break
                if r.status_code in RETRY_STATUS and attempt < self.retries:
                    time.sleep(self.backoff * 2 ** attempt)
                    continue
                if r.status_code == 401:
                    self.challenge = parse_challenge(r.headers.get("www-authenticate"))
                elif r.status_code != 200:
                    raise RegistryError(f"{self.host} does not look like a registry: GET /v2/ answered "
                                        f"{r.status_code} {_error_text(r)}")
                self.base = f"{scheme}://{self.host}"
                return
        hint = "" if self.insecure else (f" (for a plain-HTTP registry use --insecure, or add \"{self.host}\" to "
                                         "\"insecure-registries\" in $HULL_ROOT/config.json)")
        raise RegistryError(f"cannot reach registry {self.host}: {last}{hint}")

    def _token(self, scopes):
        key = tuple(sorted(scopes))
        with self._lock:
            tok = self._tokens.get(key)
        if tok:
            return tok
        _, params = self.challenge
        realm = params.get("realm")
        if not realm:
            raise AuthError(f"{self.host} asked for a bearer token but gave no realm")
        query = [("service", params["service"])] if params.get("service") else []
        query += [("scope", s) for s in scopes]
        kw = {"auth": self.credentials} if self.credentials else {}
        for attempt in range(self.retries + 1):
            try:
                r = self.http.get(realm, params=query, **kw)
            except self.net.TransportError as e:
                if attempt < self.retries:
                    time.sleep(self.backoff * 2 ** attempt)
                    continue
                raise RegistryError(f"cannot get a token from {realm}: {e}") from None
            if r.status_code in RETRY_STATUS and attempt < self.retries:
                time.sleep(self.backoff * 2 ** attempt)
                continue
            break
        if r.status_code in (401, 403):
            raise AuthError(f"{self.host}: authentication failed ({_error_text(r)}); "
                            f"check the credentials with `hull login {self.host}`")
        if r.status_code != 200:
            raise RegistryError(f"token request to {realm} failed: {r.status_code} {_error_text(r)}")
        body = r.json()
        tok = body.get("token") or body.get("access_token")
        if not tok:
            raise AuthError(f"token server {realm} returned no token")
        with self._lock:
            self._tokens[key] = tok
        return tok

    def _auth_headers(self, scopes):
        scheme, _ = self.challenge
        if scheme == "basic":
            if not self.credentials:
                return {}
            import base64
            raw = f"{self.credentials[0]}:{self.credentials[1]}".encode()
            return {"Authorization": "Basic " + base64.b64encode(raw).decode()}
        if scheme == "bearer":
            return {"Authorization": "Bearer " + self._token(scopes)}
        return {}

    def request(self, method, path, scopes=(), headers=None, content=None, stream=False, params=None,
                ok=(200,), retry=True):
        """One API call with auth, retries and error mapping. `content` may be bytes or a
        callable returning a fresh body (files are re-opened on retry)."""
        self.ping()
        url = path if path.startswith(("http://", "https://")) else self.base + path
        if params:
            url += ("&" if "?" in url else "?") + urlencode(params)
        tries = self.retries + 1 if retry else 1
        reauthed = False
        attempt = 0
        while True:
            h = dict(headers or {})
            h.update(self._auth_headers(scopes))
            body = content() if callable(content) else content
            try:
                req = self.http.build_request(method, url, headers=h, content=body)
                r = self.http.send(req, stream=stream)
            except self.net.TransportError as e:
                attempt += 1
                if attempt < tries:
                    time.sleep(self.backoff * 2 ** (attempt - 1))
                    continue
                raise RegistryError(f"{method} {url}: {e.__class__.__name__}: {e}") from None
            finally:
                if hasattr(body, "close"):
                    body.close()
            if r.status_code == 401 and not reauthed:
                scheme, params_ = parse_challenge(r.headers.get("www-authenticate"))
                if scheme:
                    self.challenge = (scheme, params_)
                    with self._lock:
                        self._tokens.pop(tuple(sorted(scopes)), None)
                    reauthed = True
                    r.close()
                    continue
            if r.status_code in RETRY_STATUS and attempt + 1 < tries:
                r.close()
                attempt += 1
                delay = self.backoff * 2 ** (attempt - 1)
                if r.headers.get("retry-after", "").isdigit():
                    delay = min(int(r.headers["retry-after"]), 30)
                time.sleep(delay)
                continue
            if r.status_code in ok:
                return r
            if stream:
                r.read()
            return self._fail(method, url, r)

    def _fail(self, method, url, r):
        text = _error_text(r)
        if r.status_code == 401:
            _, ch = parse_challenge(r.headers.get("www-authenticate"))
            if self.credentials and ch.get("error") == "insufficient_scope":
                raise AuthError(f"{self.host}: access denied: the token server did not grant "
                                f"{ch.get('scope') or 'the needed scope'} to {self.credentials[0]}")
            hint = "run `hull login " + self.host + "`" if not self.credentials else "the stored credentials were refused; `hull login` again"
            raise AuthError(f"{self.host}: unauthorized: {text or 'authentication required'} ({hint})")
        if r.status_code == 403:
            raise AuthError(f"{self.host}: access denied: {text}")
        if r.status_code == 404:
            raise NotFound(f"{self.host}: not found: {text or url}")
        raise RegistryError(f"{method} {url} failed: {r.status_code} {text}")

    def check_login(self):
        """Verify credentials: GET /v2/ (with a token for no scope when bearer)."""
        self.ping()
        scheme, _ = self.challenge
        if scheme is None:
            return
        r = self.request("GET", "/v2/", ok=(200, 401))
        if r.status_code == 401:
            raise AuthError(f"login to {self.host} failed: {_error_text(r) or 'unauthorized'}")

    # -- manifests and blobs ------------------------------------------------------------

    def get_manifest(self, repo, obj):
        """Returns (bytes, media type, digest) for a tag or digest."""
        r = self.request("GET", f"/v2/{repo}/manifests/{obj}", [f"repository:{repo}:pull"],
                         headers={"Accept": ACCEPT})
        data = r.content
        digest = sha256_digest(data)
        if obj.startswith("sha256:") and digest != obj:
            raise DigestMismatch(f"{self.host}/{repo}: manifest {obj} hashes to {digest}; refusing it")
        mt = r.headers.get("content-type", "").split(";")[0].strip()
        return data, mt, digest

    def put_manifest(self, repo, obj, data, media_type):
        r = self.request("PUT", f"/v2/{repo}/manifests/{obj}", [f"repository:{repo}:pull,push"],
                         headers={"Content-Type": media_type}, content=data, ok=(200, 201, 202))
        return r.headers.get("docker-content-digest") or sha256_digest(data)

    def has_blob(self, repo, digest, scopes=None):
        r = self.request("HEAD", f"/v2/{repo}/blobs/{digest}", scopes or [f"repository:{repo}:pull"],
                         ok=(200, 404))
        return r.status_code == 200

    def fetch_blob(self, repo, desc, store, reporter=None, key=None):
        """Download a blob into the store (no-op if there). Resumes partials; verifies digest."""
        reporter = reporter or Reporter()
        digest, size = desc["digest"], desc.get("size")
        key = key or digest
        if store.has_blob(digest):
            reporter.done(key, "Already exists")
            return False
        with store.blob_lock(digest):
            if store.has_blob(digest):
                reporter.done(key, "Already exists")
                return False
            w = store.writer(digest, size)
            try:
                reporter.start(key, digest[7:19], size)
                if w.offset:
                    reporter.advance(key, w.offset)
                attempt = 0
                while True:
                    headers = {"Range": f"bytes={w.offset}-"} if w.offset else {}
                    try:
                        r = self.request("GET", f"/v2/{repo}/blobs/{digest}", [f"repository:{repo}:pull"],
                                         headers=headers, stream=True, ok=(200, 206, 416))
                        try:
                            if r.status_code == 416 or (r.status_code == 200 and w.offset):
                                reporter.advance(key, -w.offset)
                                w.restart()
                                if r.status_code == 416:
                                    continue
                            for chunk in r.iter_raw():
                                w.write(chunk)
                                reporter.advance(key, len(chunk))
                        finally:
                            r.close()
                        if size is not None and w.offset < size:
                            raise self.net.RemoteProtocolError("connection closed before the end of the blob")
                        break
                    except self.net.TransportError as e:
                        attempt += 1
                        if attempt > self.retries:
                            raise RegistryError(f"downloading {digest} from {self.host}/{repo}: {e} "
                                                f"(after {attempt} attempts; run the pull again to resume)") from None
                        time.sleep(self.backoff * 2 ** (attempt - 1))
                w.commit()
            finally:
                w.close()
        reporter.done(key, "Pull complete")
        return True

    def upload_blob(self, repo, desc, store, reporter=None, mount_from=(), chunk_size=None):
        """Make a blob exist in repo: HEAD, then cross-repo mount, then upload. Returns how."""
        reporter = reporter or Reporter()
        digest, size = desc["digest"], desc["size"]
        key = digest
        push = f"repository:{repo}:pull,push"
        if self.has_blob(repo, digest, [push]):
            reporter.done(key, "Layer already exists")
            return "exists"
        location = None
        for src in mount_from:
            if src == repo:
                continue
            r = self.request("POST", f"/v2/{repo}/blobs/uploads/", [push, f"repository:{src}:pull"],
                             params={"mount": digest, "from": src}, ok=(201, 202))
            if r.status_code == 201:
                reporter.done(key, f"Mounted from {src}")
                return "mounted"
            location = r.headers.get("location")
            break
        if location is None:
            r = self.request("POST", f"/v2/{repo}/blobs/uploads/", [push], ok=(202,))
            location = r.headers["location"]
        location = urljoin(self.base + "/", location)
        path = store.blob_path(digest)
        reporter.start(key, digest[7:19], size)
        if not chunk_size or size <= chunk_size:
            def body():
                return _ProgressFile(path, reporter, key)
            r = self.request("PUT", location, [push], params={"digest": digest},
                             headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)},
                             content=body, ok=(201, 204), retry=False)
        else:
            offset = 0
            with open(path, "rb") as f:
                while offset < size:
                    chunk = f.read(chunk_size)
                    end = offset + len(chunk) - 1
                    r = self.request("PATCH", location, [push], content=chunk, ok=(202,), retry=False,
                                     headers={"Content-Type": "application/octet-stream",
                                              "Content-Range": f"{offset}-{end}",
                                              "Content-Length": str(len(chunk))})
                    location = urljoin(self.base + "/", r.headers["location"])
                    offset += len(chunk)
                    reporter.advance(key, len(chunk))
            r = self.request("PUT", location, [push], params={"digest": digest}, content=b"",
                             headers={"Content-Length": "0"}, ok=(201, 204), retry=False)
        got = r.headers.get("docker-content-digest")
        if got and got != digest:
            raise DigestMismatch(f"{self.host}/{repo}: registry stored {digest} as {got}")
        reporter.done(key, "Pushed")
        return "uploaded"


class _ProgressFile:
    def __init__(self, path, reporter, key):
        self.f = open(path, "rb")
        self.reporter = reporter
        self.key = key

    def __iter__(self):
        while chunk := self.f.read(_CHUNK):
            self.reporter.advance(self.key, len(chunk))
            yield chunk

    def close(self):
        self.f.close()


# -- platforms ---------------------------------------------------------------------------

def default_platform():
    from hull.image.bootstrap import host_arch
    return f"linux/{host_arch()}"


def parse_platform(text):
    parts = (text or default_platform()).split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise HullError(f"invalid platform {text!r}: expected os/arch[/variant], e.g. linux/amd64")
    return {"os": parts[0], "architecture": parts[1], "variant": parts[2] if len(parts) == 3 else None}


def select_platform(manifests, platform=None):
    want = parse_platform(platform)
    avail, hits = [], []
    for m in manifests:
        p = m.get("platform") or {}
        avail.append("/".join(x for x in (p.get("os"), p.get("architecture"), p.get("variant")) if x))
        if p.get("os") != want["os"] or p.get("architecture") != want["architecture"]:
            continue
        if want["variant"] and (p.get("variant") or ("v8" if want["architecture"] == "arm64" else None)) != want["variant"]:
            continue
        hits.append(m)
    if not hits:
        raise NotFound(f"no matching manifest for {'/'.join(v for v in want.values() if v)} in the manifest "
                       f"list (available: {', '.join(a for a in avail if a and 'unknown' not in a) or 'none'}); "
                       "choose one with --platform")
    hits.sort(key=lambda m: 0 if not (m.get("platform") or {}).get("variant") else 1)
    return hits[0]


# -- pull / push -------------------------------------------------------------------------

def _parallel(jobs, workers):
    """Run [(fn, args)] on up to `workers` threads (the caller's one of them); wait for all;
    re-raise the first job's error in job order. (concurrent.futures costs ~13 ms to import.)"""
    jobs = list(jobs)
    results = [None] * len(jobs)
    errors = [None] * len(jobs)
    lock = threading.Lock()
    it = iter(range(len(jobs)))

    def work():
        while True:
            with lock:
                i = next(it, None)
            if i is None:
                return
            fn, args = jobs[i]
            try:
                results[i] = fn(*args)
            except BaseException as e:  # noqa: BLE001 - re-raised in the caller below
                errors[i] = e
    threads = [threading.Thread(target=work, daemon=True) for _ in range(min(max(1, workers), len(jobs)) - 1)]
    for t in threads:
        t.start()
    work()
    for t in threads:
        t.join()
    for e in errors:
        if e is not None:
            raise e
    return results


def pull(ref, store=None, platform=None, reporter=None, insecure=None, credentials=None, workers=4,
         retries=4):
    """Pull `ref` (str or Reference) into the store. Returns the stored Image."""
    store = store or default_store()
    ref = reference.parse(ref) if isinstance(ref, str) else ref
    reporter = reporter or Reporter()
    store.init()
    with Client(ref.registry_host, insecure=insecure, credentials=credentials, retries=retries) as c, store.lease():
        data, mt, digest = c.get_manifest(ref.repository, ref.object)
        if ref.digest and digest != ref.digest:
            raise DigestMismatch(f"{ref}: registry returned a manifest hashing to {digest}")
        manifest = json.loads(data)
        annotations = {}
        if manifest_kind(manifest, mt) == "index":
            chosen = select_platform(manifest.get("manifests", []), platform)
            annotations["io.hull.index.digest"] = digest
            data, mt, digest = c.get_manifest(ref.repository, chosen["digest"])
            if digest != chosen["digest"]:
                raise DigestMismatch(f"{ref}: manifest {chosen['digest']} hashes to {digest}")
            manifest = json.loads(data)
            if manifest_kind(manifest, mt) != "manifest":
                raise RegistryError(f"{ref}: nested image indexes are not supported")
        mt = manifest.get("mediaType") or mt or MT_OCI_MANIFEST
        reporter.message(f"{ref.tag or ref.digest}: Pulling from {ref.familiar_name()}")
        blobs = [manifest["config"]] + list(manifest.get("layers", []))
        for b in blobs:
            if b.get("urls") and not store.has_blob(b["digest"]):
                pass  # foreign layers: fetched from the registry like any other (mirrors host them)
        _parallel([(c.fetch_blob, (ref.repository, b, store, reporter, None if i else "config"))
                   for i, b in enumerate(blobs)], workers)
        store.put_blob(data, digest)
        name = str(ref) if ref.tag else f"{ref.name}@{ref.digest}"
        store.add({"mediaType": mt, "digest": digest, "size": len(data), "annotations": annotations}, name)
        img = store.load(digest, [name], mt)
    reporter.message(f"Digest: {annotations.get('io.hull.index.digest', digest)}")
    reporter.message(f"Status: Downloaded newer image for {ref.familiar()}")
    return img


def _mount_sources(store, ref, digest):
    out = []
    for e in store.entries():
        n = (e.get("annotations") or {}).get(REF_NAME)
        if not n:
            continue
        try:
            r = reference.parse(n)
        except HullError:
            continue
        if r.domain != ref.domain or r.path == ref.path or r.path in out:
            continue
        try:
            m = store.read_json(e["digest"])
        except (NotFound, ValueError):
            continue
        if any(layer["digest"] == digest for layer in m.get("layers", [])):
            out.append(r.path)
    return out


def push(source, dest=None, store=None, reporter=None, insecure=None, credentials=None, chunk_size=None,
         workers=4, retries=4):
    """Push a stored image (name or id) to `dest` (default: its own name). Returns the
    manifest digest as the registry knows it."""
    store = store or default_store()
    img = store.resolve(source)
    ref = reference.parse(dest or source)
    if ref.digest and not ref.tag:
        raise HullError(f"cannot push to a digest reference {ref}; give a tag")
    reporter = reporter or Reporter()
    data = store.read_blob(img.digest)
    with Client(ref.registry_host, insecure=insecure, credentials=credentials, retries=retries) as c:
        reporter.message(f"The push refers to repository [{ref.name}]")
        jobs = [(c.upload_blob, (ref.repository, desc, store, reporter, _mount_sources(store, ref, desc["digest"]),
                                 chunk_size)) for desc in img.layers]
        jobs.append((c.upload_blob, (ref.repository, img.manifest["config"], store, None, (), chunk_size)))
        _parallel(jobs, workers)  # the config with the layers: the manifest goes up after all
        digest = c.put_manifest(ref.repository, ref.tag or "latest", data, img.media_type)
    reporter.message(f"{ref.tag}: digest: {digest} size: {len(data)}")
    return digest


def login(host, username, password, insecure=None):
    """Check the credentials against the registry, then store them. Returns the file path."""
    with Client(host, insecure=insecure, credentials=(username, password)) as c:
        c.check_login()
    return auth_mod.store(host, username, password)


def put_index(ref, manifests, insecure=None, credentials=None, docker=False):
    """Push an image index (manifest list) over manifests already in the repository.
    `manifests` are descriptors with platform. Returns its digest (used by tests/tools)."""
    ref = reference.parse(ref) if isinstance(ref, str) else ref
    index = {"schemaVersion": 2, "mediaType": MT_DOCKER_LIST if docker else MT_OCI_INDEX, "manifests": manifests}
    data = json.dumps(index).encode()
    with Client(ref.registry_host, insecure=insecure, credentials=credentials) as c:
        return c.put_manifest(ref.repository, ref.tag or "latest", data, index["mediaType"])


__all__ = ["Client", "Reporter", "RegistryError", "AuthError", "pull", "push", "login", "put_index",
           "select_platform", "parse_challenge", "INDEX_TYPES"]
