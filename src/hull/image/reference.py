"""Image references: Docker's grammar (distribution/reference) and its defaults.

    busybox                     -> docker.io/library/busybox:latest
    user/app:1.0                -> docker.io/user/app:1.0
    localhost:5000/app          -> localhost:5000/app:latest
    quay.io/org/app@sha256:...  -> digest reference (a tag may also be present)

The first path component is a registry host when it contains "." or ":", is "localhost",
or has upper-case letters (as Docker decides). Everything else lives on Docker Hub.
"""

import re

from hull.errors import UsageError

DEFAULT_DOMAIN = "docker.io"
LEGACY_DOMAIN = "index.docker.io"
OFFICIAL_PREFIX = "library/"
DEFAULT_TAG = "latest"
NAME_MAX = 255

_ALNUM = r"[a-z0-9]+"
_SEP = r"(?:[._]|__|[-]+)"
_COMPONENT = rf"{_ALNUM}(?:{_SEP}{_ALNUM})*"
_PATH = rf"{_COMPONENT}(?:/{_COMPONENT})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_IPV6 = r"\[(?:[a-fA-F0-9:]+)\]"
_DOMAIN = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|{_IPV6})(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"

PATH_RE = re.compile(rf"^{_PATH}$")
DOMAIN_RE = re.compile(rf"^{_DOMAIN}$")
TAG_RE = re.compile(rf"^{_TAG}$")
DIGEST_RE = re.compile(rf"^{_DIGEST}$")
SHA256_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class Reference:
    """A fully qualified reference. `domain`/`path` are normalized; `tag` defaults to latest
    only when there is no digest."""

    __slots__ = ("domain", "path", "tag", "digest")

    def __init__(self, domain, path, tag=None, digest=None):
        self.domain = domain
        self.path = path
        self.tag = tag
        self.digest = digest

    @property
    def name(self):
        """Repository name with its registry: docker.io/library/busybox."""
        return f"{self.domain}/{self.path}"

    @property
    def repository(self):
        """The repository as the registry API sees it: library/busybox."""
        return self.path

    @property
    def registry_host(self):
        """Host to talk to over HTTP (Docker Hub's API is not at docker.io)."""
        return "registry-1.docker.io" if self.domain == DEFAULT_DOMAIN else self.domain

    @property
    def object(self):
        """What to ask the registry for: the digest when there is one, else the tag."""
        return self.digest or self.tag or DEFAULT_TAG

    def __str__(self):
        s = self.name
        if self.tag:
            s += ":" + self.tag
        if self.digest:
            s += "@" + self.digest
        return s

    def __repr__(self):
        return f"Reference({str(self)!r})"

    def __eq__(self, other):
        return isinstance(other, Reference) and str(self) == str(other)

    def __hash__(self):
        return hash(str(self))

    def familiar(self):
        """Docker's short display form: busybox:latest, user/app:1, quay.io/x/y:z."""
        name = self.name
        if self.domain == DEFAULT_DOMAIN:
            name = self.path[len(OFFICIAL_PREFIX):] if self.path.startswith(OFFICIAL_PREFIX) else self.path
        s = name
        if self.tag:
            s += ":" + self.tag
        if self.digest:
            s += "@" + self.digest
        return s

    def familiar_name(self):
        if self.domain == DEFAULT_DOMAIN and self.path.startswith(OFFICIAL_PREFIX):
            return self.path[len(OFFICIAL_PREFIX):]
        return self.path if self.domain == DEFAULT_DOMAIN else self.name

    def with_tag(self, tag):
        return Reference(self.domain, self.path, tag, None)

    def with_digest(self, digest):
        return Reference(self.domain, self.path, None, digest)


def _split_domain(name):
    i = name.find("/")
    first = name[:i] if i >= 0 else ""
    if i < 0 or not ("." in first or ":" in first or first == "localhost" or first.lower() != first):
        domain, rest = DEFAULT_DOMAIN, name
    else:
        domain, rest = first, name[i + 1:]
    if domain == LEGACY_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in rest:
        rest = OFFICIAL_PREFIX + rest
    return domain, rest


def parse(text, default_tag=True):
    """Parse and normalize a reference. Raises UsageError with the reason when invalid.

    `default_tag=False` leaves `tag` None when none was given (for `hull push repo` etc.)."""
    if not isinstance(text, str) or not text:
        raise UsageError("invalid reference format: empty image name")
    original = text
    if any(c.isspace() for c in text):
        raise UsageError(f"invalid reference format: {original!r} contains whitespace")
    digest = tag = None
    if "@" in text:
        text, digest = text.split("@", 1)
        if not DIGEST_RE.match(digest):
            raise UsageError(f"invalid reference format: {original!r} has an invalid digest {digest!r}")
        if digest.startswith("sha256:") and not SHA256_RE.match(digest):
            raise UsageError(f"invalid reference format: {original!r}: sha256 digests are 64 lower-case hex digits")
    # A tag is after the last ':' that is after the last '/' (a ':' before that is a port).
    slash = text.rfind("/")
    colon = text.rfind(":")
    if colon > slash:
        text, tag = text[:colon], text[colon + 1:]
        if not TAG_RE.match(tag):
            raise UsageError(f"invalid reference format: {original!r} has an invalid tag {tag!r} "
                             "(tags are up to 128 of [A-Za-z0-9_.-], not starting with '.' or '-')")
    if not text:
        raise UsageError(f"invalid reference format: {original!r} has no repository name")
    if _HEX64.match(text) and tag is None and digest is None:
        raise UsageError(f"invalid repository name ({text}), cannot specify 64-byte hexadecimal strings")
    domain, path = _split_domain(text)
    if not DOMAIN_RE.match(domain):
        raise UsageError(f"invalid reference format: {original!r} has an invalid registry host {domain!r}")
    if path.lower() != path:
        raise UsageError(f"invalid reference format: repository name must be lowercase: {original!r}")
    if not PATH_RE.match(path):
        raise UsageError(f"invalid reference format: {original!r}: repository path {path!r} must be "
                         "lower-case components of [a-z0-9] separated by '.', '_', '__', '-' or '/'")
    if len(domain) + 1 + len(path) > NAME_MAX:
        raise UsageError(f"invalid reference format: repository name must not be more than {NAME_MAX} characters")
    if tag is None and digest is None and default_tag:
        tag = DEFAULT_TAG
    return Reference(domain, path, tag, digest)


def is_digest(text):
    return bool(SHA256_RE.match(text or ""))


def is_short_id(text):
    """A (prefix of a) hex image id as `hull images` prints it: at least 4 hex chars."""
    t = text[7:] if text.startswith("sha256:") else text
    return 4 <= len(t) <= 64 and all(c in "0123456789abcdef" for c in t)
