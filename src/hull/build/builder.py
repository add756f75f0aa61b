"""Executes a Dockerfile: stages, steps, layers, the final image.

    img = build(BuildOptions(context="app", tags=["app:1"]), progress=None)

Each stage starts from its base (an image, `scratch` or an earlier stage) and walks its
instructions, keeping the image state (config dict + layer descriptors + a cache key).
Metadata instructions only change the config (history entry with empty_layer). RUN, COPY and
ADD prepare an overlay snapshot of the current state in a private work dir, change it (RUN in
a hull container through the runtime library, COPY/ADD by copying into the mounted rootfs),
and commit the overlay upper dir as one OCI layer (whiteouts as .wh. entries). The upper dir is
then adopted as that layer's unpacked dir, so the next step does not unpack it again.

Only stages the target needs are built (its base chain and COPY --from sources). Nothing is
written to the image index until the end: a failed build leaves no image, container or mount
(layer blobs of finished steps stay, as cache). History entries and created_by strings follow
BuildKit (`RUN /bin/sh -c ... # buildkit`, `ENV A=b`, comment buildkit.dockerfile.v0).
"""

import json
import os
import posixpath
import re
import secrets
import shutil
import stat
import time
from pathlib import Path

from hull.build import cache as cache_mod
from hull.build import dockerfile as dfmod
from hull.build.context import Context, ContextError
from hull.errors import HullError, NotFound, UsageError

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_SHELL = ["/bin/sh", "-c"]
HISTORY_COMMENT = "buildkit.dockerfile.v0"
SUPPORTED_PLATFORMS = ("linux/amd64",)


class BuildError(HullError):
    """A failed step: `instruction` is the Dockerfile instruction (for the excerpt)."""

    exit_code = 1

    def __init__(self, message, instruction=None, dockerfile=None):
        super().__init__(message)
        self.instruction, self.dockerfile = instruction, dockerfile


class NeedsWork(Exception):
    """A dry build (Builder(dry=True)) met a step that is not cached, a base image that is
    not in the store or an index that would change: the build has to run for real."""


class BuildOptions:
    def __init__(self, context=".", dockerfile=None, tags=(), build_args=None, labels=None, target=None,
                 platform=None, no_cache=False, pull=False, network=None):
        self.context = context
        self.dockerfile = dockerfile
        self.tags = list(tags)
        self.build_args = dict(build_args or {})
        self.labels = dict(labels or {})
        self.target = target
        self.platform = platform
        self.no_cache = no_cache
        self.pull = pull
        self.network = network


class NullProgress:
    def begin(self, label):
        return None

    def log(self, step, text):
        pass

    def cached(self, step):
        pass

    def done(self, step):
        pass

    def error(self, step, message):
        pass

    def warn(self, message):
        pass


def _now():
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + f".{time.time_ns() % 1_000_000_000:09d}Z"


def _go_list(items):
    return "[" + " ".join(json.dumps(x) for x in items) + "]"


class State:
    """The image being built: `config` (the full image config), `layers` (descriptors),
    `key` (cache chain key)."""

    def __init__(self, config, layers, key):
        self.config, self.layers, self.key = config, list(layers), key

    @property
    def cc(self):
        return self.config.setdefault("config", {})

    def env(self):
        out = {}
        for e in self.cc.get("Env") or []:
            k, _, v = e.partition("=")
            out[k] = v
        return out

    def set_env(self, key, value):
        env = [e for e in self.cc.get("Env") or [] if e.partition("=")[0] != key]
        env.append(f"{key}={value}")
        self.cc["Env"] = env

    def image(self, store):
        """An in-memory store.Image for snapshot.prepare (not written to the index)."""
        from hull.image.store import Image, canonical_json, sha256_digest
        cfg = canonical_json(self.config)
        manifest = {"schemaVersion": 2, "config": {"digest": sha256_digest(cfg), "size": len(cfg)},
                    "layers": self.layers}
        return Image(store, sha256_digest(canonical_json(manifest)), manifest, self.config)

    def copy(self):
        return State(json.loads(json.dumps(self.config)), self.layers, self.key)


class Builder:
    def __init__(self, opts, store=None, progress=None, dry=False):
        from hull.image.store import default_store
        self.opts = opts
        # dry: only answer a build that is cached through and through (the zygote does that
        # in-process, hull.engine.zygote); NeedsWork at the first thing that would write
        self.dry = dry
        self.store = store or default_store()
        self.progress = progress or NullProgress()
        self.cache = cache_mod.Cache(self.store, enabled=not opts.no_cache)
        self.work = None
        self.results = {}  # stage index -> State
        self.used_build_args = set()
        self.step_no = 0
        self.new_layers = []

    # ------------------------------------------------------------------ entry point
    def build(self):
        opts = self.opts
        platform = opts.platform or "linux/amd64"
        if platform not in SUPPORTED_PLATFORMS:
            raise UsageError(f"platform {platform!r} is not supported: hull builds for {', '.join(SUPPORTED_PLATFORMS)} only")
        if self.dry and (opts.no_cache or opts.pull):
            raise NeedsWork("--no-cache/--pull")
        self.ctx = Context(opts.context, dry=self.dry)
        path = opts.dockerfile or os.path.join(self.ctx.root, "Dockerfile")
        if not os.path.isabs(path) and opts.dockerfile:
            path = os.path.abspath(path)
        try:
            if self.dry and not stat.S_ISREG(os.stat(path).st_mode):
                raise NeedsWork(path)  # a FIFO would block the reader
            with open(path, "rb") as f:
                text = f.read()
        except FileNotFoundError:
            raise UsageError(f"failed to read dockerfile: open {path}: no such file or directory") from None
        self.df_name = os.path.basename(path)
        self.df_text = text.decode("utf-8", "replace")
        self.df = dfmod.parse(text, self.df_name)
        self.lexer = dfmod.Lexer(self.df.escape)
        meta, self.stages = dfmod.split_stages(self.df)
        self.meta_args = self._meta_args(meta)
        self.names = {s.name: s for s in self.stages if s.name}
        target = self.stages[-1]
        if opts.target:
            target = self.names.get(opts.target.lower())
            if target is None:
                raise BuildError(f'target stage "{opts.target}" could not be found')
        needed = self._needed(target)
        self.store.init()
        # made by the first step that needs a snapshot (_snapshot): a fully cached build never does
        self.work = self.store.root / "tmp" / f"build-{secrets.token_hex(6)}"
        try:
            with self.store.lease():
                for st in self.stages:
                    if st.index in needed:
                        self.results[st.index] = self._run_stage(st, needed)
                    if st.index == target.index:
                        break
                unused = set(opts.build_args) - self.used_build_args - set(self._predefined())
                if unused:
                    self.progress.warn(f"One or more build-args {sorted(unused)} were not consumed")
                return self._export(self.results[target.index])
        finally:
            self._cleanup_work()

    def _cleanup_work(self):
        from hull.image import snapshot
        if not self.work or not self.work.exists():
            return
        for d in self.work.iterdir():
            if d.is_dir():
                try:
                    snapshot.remove(d, self.store)
                except (HullError, OSError):
                    pass
        shutil.rmtree(self.work, ignore_errors=True)

    def _predefined(self):
        return {"TARGETPLATFORM": "linux/amd64", "TARGETOS": "linux", "TARGETARCH": "amd64", "TARGETVARIANT": "",
                "BUILDPLATFORM": "linux/amd64", "BUILDOS": "linux", "BUILDARCH": "amd64", "BUILDVARIANT": ""}

    def _meta_args(self, meta):
        env = dict(self._predefined())
        for ins in meta:
            for name, default in self._arg_pairs(ins, env):
                if name in self.opts.build_args:
                    self.used_build_args.add(name)
                    env[name] = self.opts.build_args[name]
                elif default is not None:
                    env[name] = default
                else:
                    env.setdefault(name, "")
        return env

    def _arg_pairs(self, ins, env):
        out = []
        for raw in dfmod._raw_words(ins.rest, self.df.escape):
            k, eq, v = raw.partition("=")
            try:
                out.append((k, self.lexer.process_word(v, env) if eq else None))
            except ValueError as e:
                raise dfmod.DockerfileError(self.df_name, ins.line, str(e)) from None
        return out

    def _expand(self, ins, text, env):
        try:
            return self.lexer.process_word(text, env)
        except ValueError as e:
            raise dfmod.DockerfileError(self.df_name, ins.line, str(e)) from None

    def _stage_ref(self, text):
        """A stage by name or index, or None (an image reference)."""
        t = text.lower()
        if t in self.names:
            return self.names[t]
        if t.isdigit():
            i = int(t)
            if i < len(self.stages):
                return self.stages[i]
        return None

    def _needed(self, target):
        needed, todo = set(), [target]
        while todo:
            st = todo.pop()
            if st.index in needed:
                continue
            needed.add(st.index)
            base = self._expand(st.instruction, st.base, self.meta_args)
            dep = self._stage_ref(base)
            if dep is not None and dep.index < st.index:
                todo.append(dep)
            for ins in st.instructions:
                frms = [ins.flag("from")] if ins.cmd == "copy" and ins.flag("from") else []
                if ins.cmd == "run":
                    frms = [_mount_opts(m).get("from") for m in ins.flags.get("mount", [])]
                for frm in filter(None, frms):
                    ref = self._expand(ins, frm, self.meta_args)
                    dep = self._stage_ref(ref)
                    what = "COPY --from" if ins.cmd == "copy" else "RUN --mount=from"
                    if dep is not None:
                        if dep.index >= st.index:
                            raise dfmod.DockerfileError(self.df_name, ins.line, f"{what}={frm}: stage {frm!r} "
                                                        "is not defined before this stage (circular dependency)")
                        todo.append(dep)
                    elif ref.isdigit():
                        raise dfmod.DockerfileError(self.df_name, ins.line, f"{what}={frm}: there is no stage {ref}")
        return needed

    # ------------------------------------------------------------------ stages
    def _label(self, st, n, total):
        name = st.name or (f"stage-{st.index}" if len(self.stages) > 1 else "")
        return f"[{name + ' ' if name else ''}{n}/{total}]"

    def _base_state(self, st):
        base = self._expand(st.instruction, st.base, self.meta_args)
        if not base:
            raise dfmod.DockerfileError(self.df_name, st.instruction.line, "FROM: base name should not be blank")
        platform = st.platform and self._expand(st.instruction, st.platform, self.meta_args)
        if platform and platform not in SUPPORTED_PLATFORMS:
            raise dfmod.DockerfileError(self.df_name, st.instruction.line,
                                        f"FROM --platform={platform}: hull builds for linux/amd64 only")
        dep = self._stage_ref(base)
        if dep is not None and dep.index < st.index:
            return self.results[dep.index].copy(), f"FROM {base}"
        if base.lower() == "scratch":
            cfg = {"architecture": "amd64", "os": "linux", "config": {"Env": [f"PATH={DEFAULT_PATH}"]},
                   "rootfs": {"type": "layers", "diff_ids": []}, "history": []}
            return State(cfg, [], "scratch"), "FROM scratch"
        img = self._image(base, st.instruction)
        cfg = json.loads(json.dumps(img.config))
        for k in ("container", "container_config", "docker_version", "parent", "id", "comment"):
            cfg.pop(k, None)
        cfg.setdefault("config", {})
        cfg.setdefault("history", [])
        if cfg.get("architecture") not in (None, "amd64"):
            self.progress.warn(f"base image {base} is for {cfg.get('os')}/{cfg.get('architecture')}, not linux/amd64")
        return State(cfg, img.layers, img.id), f"FROM {img.name or base}"

    def _image(self, ref, ins):
        from hull.image import reference
        try:
            if not self.opts.pull:
                return self.store.resolve(ref)
        except NotFound:
            if self.dry:
                raise NeedsWork(ref) from None
        try:
            from hull.image import registry
            registry.pull(ref, store=self.store)
            return self.store.resolve(ref)
        except HullError as e:
            fam = reference.parse(ref).familiar() if ref else ref
            raise BuildError(f"failed to resolve base image {fam}: not in the local store and pulling it failed: {e}",
                             ins) from None

    def _run_stage(self, st, needed):
        total = len(st.instructions) + 1
        step = self.progress.begin(f"{self._label(st, 1, total)} FROM {st.base}" + (f" AS {st.name}" if st.name else ""))
        try:
            state, _ = self._base_state(st)
        except HullError as e:
            self.progress.error(step, str(e))
            raise
        self.progress.done(step)
        # the stage's scope: ARGs declared in it, ENV from the image
        self.args = {}
        self.cmd_set = False
        onbuild = list(state.cc.get("OnBuild") or [])
        if onbuild:
            state.cc["OnBuild"] = None
            for trig in onbuild:
                try:
                    sub = dfmod.parse(trig, f"{self.df_name} (ONBUILD from the base image)").instructions[0]
                except dfmod.DockerfileError as e:
                    raise BuildError(f"ONBUILD trigger {trig!r} of the base image: {e}", st.instruction) from None
                sub.line = st.instruction.line
                step = self.progress.begin(f"{self._label(st, 1, total)} ONBUILD {trig}")
                state = self._step(st, sub, state, step)
        for n, ins in enumerate(st.instructions, start=2):
            text = ins.original.split("\n", 1)[0].strip()
            step = self.progress.begin(f"{self._label(st, n, total)} {text}")
            state = self._step(st, ins, state, step)
        return state

    def _step(self, st, ins, state, step):
        try:
            new, cached = self._execute(st, ins, state, step)
        except (HullError, OSError) as e:
            msg = str(e) if isinstance(e, HullError) else f"{ins.keyword}: {e.strerror or e}: {e.filename or ''}"
            self.progress.error(step, msg)
            if isinstance(e, BuildError) and e.instruction is None:
                e.instruction = ins
            if isinstance(e, (BuildError, dfmod.DockerfileError)):
                raise
            raise BuildError(msg, ins) from None
        if cached:
            self.progress.cached(step)
        else:
            self.progress.done(step)
        return new

    # ------------------------------------------------------------------ instructions
    def _scope(self, state):
        """Variables for substitution: stage ARGs, overridden by ENV (as the reference)."""
        env = dict(self.args)
        env.update(state.env())
        return env

    def _execute(self, st, ins, state, step):
        c = ins.cmd
        if c == "arg":
            for name, default in self._arg_pairs(ins, self._scope(state)):
                if name in self.opts.build_args:
                    self.used_build_args.add(name)
                    self.args[name] = self.opts.build_args[name]
                elif default is not None:
                    self.args[name] = default
                elif name in self.meta_args:
                    self.args[name] = self.meta_args[name]
                else:
                    self.args.setdefault(name, None)
            self.args = {k: v for k, v in self.args.items()}
            return state, False
        if c == "run":
            return self._run(st, ins, state, step)
        if c in ("copy", "add"):
            return self._copy(st, ins, state, step)
        # metadata: cached too, so a rebuild reproduces the same configs (same image ID)
        new = state.copy()
        env = self._scope(state)
        created_by = self._metadata(ins, new, env)
        key = cache_mod.step_key(state.key, created_by)
        hit = self.cache.get(key)
        if hit:
            return State(hit["config"], hit["layers"], key), True
        if self.dry:
            raise NeedsWork(created_by)
        new.config.setdefault("history", []).append({"created": _now(), "created_by": created_by,
                                                     "comment": HISTORY_COMMENT, "empty_layer": True})
        new.config["created"] = new.config["history"][-1]["created"]
        new.key = key
        self.cache.put(key, {"config": new.config, "layers": new.layers})
        return new, False

    def _cmdline(self, ins, state):
        if ins.json is not None:
            return list(ins.json)
        return list(state.cc.get("Shell") or DEFAULT_SHELL) + [ins.rest]

    def _metadata(self, ins, new, env):
        """Apply a metadata instruction to `new`; return its history created_by."""
        c, cc = ins.cmd, new.cc
        if c == "env":
            pairs = dfmod.parse_key_values(ins.rest, "ENV", self.df_name, ins.line, self.lexer, env)
            for k, v in pairs:
                new.set_env(k, v)
                env[k] = v
            return "ENV " + " ".join(f"{k}={v}" for k, v in pairs)
        if c == "label":
            pairs = dfmod.parse_key_values(ins.rest, "LABEL", self.df_name, ins.line, self.lexer, env)
            labels = dict(cc.get("Labels") or {})
            labels.update(pairs)
            cc["Labels"] = labels
            return "LABEL " + " ".join(f"{k}={v}" for k, v in pairs)
        if c == "maintainer":
            new.config["author"] = ins.rest
            return "MAINTAINER " + ins.rest
        if c == "workdir":
            wd = self._expand(ins, ins.rest, env)
            if not wd.startswith("/"):
                wd = posixpath.join(cc.get("WorkingDir") or "/", wd)
            wd = posixpath.normpath(wd)
            wd = "/" if wd == "//" else wd
            cc["WorkingDir"] = wd
            return "WORKDIR " + wd
        if c == "user":
            u = self._expand(ins, ins.rest, env)
            cc["User"] = u
            return "USER " + u
        if c == "cmd":
            cc["Cmd"] = self._cmdline(ins, new)
            self.cmd_set = True
            return "CMD " + _go_list(cc["Cmd"])
        if c == "entrypoint":
            cc["Entrypoint"] = self._cmdline(ins, new)
            if not self.cmd_set:
                cc["Cmd"] = None  # an inherited CMD is reset by ENTRYPOINT (the reference's rule)
            return "ENTRYPOINT " + _go_list(cc["Entrypoint"])
        if c == "shell":
            cc["Shell"] = list(ins.json)
            return "SHELL " + _go_list(ins.json)
        if c == "expose":
            ports = dict(cc.get("ExposedPorts") or {})
            added = []
            try:
                words = self.lexer.process_words(ins.rest, env)
            except ValueError as e:
                raise dfmod.DockerfileError(self.df_name, ins.line, str(e)) from None
            for w in words:
                port, _, proto = w.partition("/")
                proto = (proto or "tcp").lower()
                if proto not in ("tcp", "udp", "sctp"):
                    raise dfmod.DockerfileError(self.df_name, ins.line, f"invalid proto: {proto}")
                lo, _, hi = port.partition("-")
                if not lo.isdigit() or (hi and not hi.isdigit()):
                    raise dfmod.DockerfileError(self.df_name, ins.line, f"invalid containerPort: {port}")
                for p in range(int(lo), int(hi or lo) + 1):
                    ports[f"{p}/{proto}"] = {}
                    added.append(f"{p}/{proto}")
            cc["ExposedPorts"] = ports
            return "EXPOSE map[" + " ".join(f"{p}:{{}}" for p in sorted(added)) + "]"
        if c == "volume":
            vols = dict(cc.get("Volumes") or {})
            items = ins.json if ins.json is not None else self.lexer.process_words(ins.rest, env)
            items = [self._expand(ins, v, env) for v in items] if ins.json is not None else items
            for v in items:
                if not v.strip():
                    raise dfmod.DockerfileError(self.df_name, ins.line, "VOLUME specified can not be an empty string")
                vols[v] = {}
            cc["Volumes"] = vols
            return "VOLUME " + _go_list(items).replace('"', "")
        if c == "stopsignal":
            sig = self._expand(ins, ins.rest, env)
            cc["StopSignal"] = sig
            return "STOPSIGNAL " + sig
        if c == "healthcheck":
            cc["Healthcheck"] = self._healthcheck(ins)
            return "HEALTHCHECK " + ins.rest
        if c == "onbuild":
            cc["OnBuild"] = list(cc.get("OnBuild") or []) + [ins.rest]
            return "ONBUILD " + ins.rest
        raise dfmod.DockerfileError(self.df_name, ins.line, f"{ins.keyword} is not supported")

    def _healthcheck(self, ins):
        word, _, rest = ins.rest.partition(" ")
        if word.upper() == "NONE":
            return {"Test": ["NONE"]}
        rest = rest.strip()
        js = dfmod._json_list(rest)
        hc = {"Test": ["CMD"] + js if js is not None else ["CMD-SHELL", rest]}
        for flag, key in (("interval", "Interval"), ("timeout", "Timeout"), ("start-period", "StartPeriod"),
                          ("start-interval", "StartInterval")):
            v = ins.flag(flag)
            if v:
                hc[key] = _duration_ns(v, ins, self.df_name)
        if ins.flag("retries"):
            try:
                hc["Retries"] = int(ins.flag("retries"))
            except ValueError:
                raise dfmod.DockerfileError(self.df_name, ins.line, f"--retries must be a number, not {ins.flag('retries')!r}") from None
        return hc

    # ------------------------------------------------------------------ filesystem steps
    def _snapshot(self, state, name):
        from hull.image import snapshot
        self.work.mkdir(parents=True, exist_ok=True)
        cdir = self.work / name
        rootfs = snapshot.prepare(state.image(self.store), cdir, driver="overlay", owner="build")
        rec = snapshot.record(cdir, self.store)
        if rec and rec.get("driver") != "overlay":
            snapshot.remove(cdir, self.store)
            raise HullError("hull build needs overlayfs (the vfs snapshotter keeps no change set)")
        return cdir, Path(rootfs)

    def _commit(self, state, cdir, created_by, key):
        """Unmount the snapshot, write its upper dir as a layer, adopt it as the unpacked
        layer, and return the new state."""
        from hull.image import layers as layers_mod
        from hull.image import snapshot
        from hull.image.store import chain_ids
        snapshot.unmount(cdir)
        upper = cdir / "upper"
        desc, diff_id = layers_mod.write_layer(
            self.store, lambda out: layers_mod.tar_directory(upper, out, overlay=True))
        new = state.copy()
        diff_ids = list(new.config.setdefault("rootfs", {"type": "layers", "diff_ids": []}).get("diff_ids", []))
        chain = chain_ids(diff_ids + [diff_id])[-1]
        parent = chain_ids(diff_ids)[-1] if diff_ids else None
        self._adopt(upper, chain, diff_id, desc, parent)
        snapshot.remove(cdir, self.store)
        new.config["rootfs"] = {"type": "layers", "diff_ids": diff_ids + [diff_id]}
        new.layers = new.layers + [desc]
        created = _now()
        new.config["created"] = created
        new.config.setdefault("history", []).append({"created": created, "created_by": created_by,
                                                     "comment": HISTORY_COMMENT})
        new.key = key
        self.new_layers.append(desc["digest"])
        self.cache.put(key, {"config": new.config, "layers": new.layers})
        return new

    def _adopt(self, upper, chain, diff_id, desc, parent):
        from hull.image import layers as layers_mod
        d = layers_mod.layer_dir(self.store, chain)
        if (d / "meta.json").exists():
            return
        with self.store.lock("layer-" + chain[7:]):
            if (d / "meta.json").exists():
                return
            tmp = self.store.layers_dir / f".tmp-{chain[7:19]}-{os.getpid()}-{time.monotonic_ns()}"
            tmp.mkdir(parents=True)
            try:
                os.rename(upper, tmp / "diff")
                (tmp / "meta.json").write_text(json.dumps({"chain_id": chain, "diff_id": diff_id, "parent": parent,
                                                           "digest": desc["digest"], "size": 0, "skipped": []}))
                if d.exists():
                    shutil.rmtree(d)
                os.rename(tmp, d)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise

    def _workdir_in(self, rootfs, state):
        from hull.kernel import mounts as kmounts
        wd = state.cc.get("WorkingDir") or "/"
        if wd != "/":
            os.makedirs(kmounts.secure_join(str(rootfs), wd), exist_ok=True)
        return wd

    # -- RUN
    def _run(self, st, ins, state, step):
        scope = self._scope(state)
        args_env = [f"{k}={v}" for k, v in sorted(self.args.items()) if v is not None and k not in state.env()]
        if ins.heredocs and ins.json is None:
            only = ins.rest.strip()
            if len(ins.heredocs) == 1 and re.fullmatch(r"<<-?\s*['\"]?" + re.escape(ins.heredocs[0].name) + r"['\"]?", only):
                script = ins.heredocs[0].content
            else:
                script = ins.rest + "\n" + "".join(h.content + h.name + "\n" for h in ins.heredocs)
            argv = list(state.cc.get("Shell") or DEFAULT_SHELL) + [script]
        else:
            argv = self._cmdline(ins, state)
        network = ins.flag("network") or self.opts.network or "default"
        if network not in ("default", "none", "host"):
            raise BuildError(f"RUN --network={network}: use default, none or host", ins)
        specs = [self._parse_mount(m, ins) for m in ins.flags.get("mount", [])]
        shown = " ".join(argv)
        created_by = "RUN " + (f"|{len(args_env)} {' '.join(args_env)} " if args_env else "") + shown + " # buildkit"
        extra = {"network": network, "mounts": ins.flags.get("mount", [])}
        sources = [sp["content"] for sp in specs if sp.get("content")]
        if sources:  # what the bind mounts show: another stage's/image's chain key, the context's checksum
            extra["mount_sources"] = sources
        key = cache_mod.step_key(state.key, created_by, env=args_env, extra=extra)
        hit = self.cache.get(key)
        if hit:
            return State(hit["config"], hit["layers"], key), True
        if self.dry:
            raise NeedsWork(created_by)
        del scope
        cdir, rootfs = self._snapshot(state, f"run-{self.step_no}")
        self.step_no += 1
        mount_dirs = []  # snapshots of the stages/images bind-mounted (removed after the RUN)
        try:
            mounts = [self._mount(sp, ins, mount_dirs) for sp in specs]
            cwd = self._workdir_in(rootfs, state)
            env = {"PATH": DEFAULT_PATH}
            env.update({k: v for k, v in self.args.items() if v is not None})
            env.update(state.env())
            stubs = _mount_stubs(rootfs, [m["destination"] for m in mounts])
            code, err = self._container(rootfs, argv, env, cwd, state.cc.get("User"), network, mounts, step, cdir)
            _remove_stubs(stubs)  # mount points the runtime made stay out of the layer (BuildKit)
            if err:
                raise BuildError(f"RUN: {err}", ins)
            if code != 0:
                raise BuildError(f'process "{shown}" did not complete successfully: exit code: {code}', ins)
            return self._commit(state, cdir, created_by, key), False
        except BaseException:
            from hull.image import snapshot
            try:
                snapshot.remove(cdir, self.store)
            except (HullError, OSError):
                pass
            raise
        finally:
            from hull.image import snapshot
            for d in mount_dirs:
                try:
                    snapshot.remove(d, self.store)
                except (HullError, OSError):
                    pass

    def _parse_mount(self, text, ins):
        """One RUN --mount: its type, target, options, the State it comes `from` (another
        stage or an image) and what of its content goes into the cache key."""
        opts = _mount_opts(text)
        kind = opts.get("type", "bind")
        target = opts.get("target") or opts.get("dst") or opts.get("destination")
        if kind not in ("bind", "cache", "tmpfs"):
            raise BuildError(f"RUN --mount type={kind} is not supported (bind, cache, tmpfs)", ins)
        if not target:
            raise BuildError(f"RUN --mount={text}: target is required", ins)
        sp = {"type": kind, "target": target, "opts": opts, "text": text, "from": None, "content": None}
        frm = opts.get("from") and self._expand(ins, opts["from"], self.meta_args)
        if frm and kind == "tmpfs":
            raise BuildError(f"RUN --mount={text}: a tmpfs mount has no 'from'", ins)
        source = opts.get("source", opts.get("src"))
        if frm:
            dep = self._stage_ref(frm)
            if dep is not None:
                sp["from"] = self.results[dep.index]
            else:
                img = self._image(frm, ins)
                sp["from"] = State(img.config, img.layers, img.id)
            sp["source"] = source or "/"
            if kind == "bind":
                sp["content"] = f"from:{sp['from'].key}:{sp['source']}"
        elif kind == "bind":
            sp["source"] = source or "."
            srcs = self.ctx.resolve(sp["source"], "RUN --mount")
            sp["path"] = srcs[0].path
            sp["content"] = "context:" + self.ctx.checksum(srcs)
        return sp

    def _mount(self, sp, ins, mount_dirs):
        """The OCI mount for a parsed --mount (after a cache miss: snapshots are made here)."""
        from hull.kernel import mounts as kmounts
        kind, target, opts = sp["type"], sp["target"], sp["opts"]
        if kind == "tmpfs":
            return {"destination": target, "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev"]}
        if kind == "cache":
            cid = opts.get("id") or target
            import hashlib
            src = self.store.root / "build-cache-mounts" / hashlib.sha256(cid.encode()).hexdigest()[:32]
            new = not src.exists()
            src.mkdir(parents=True, exist_ok=True)
            if new and sp["from"] is not None:  # a new cache starts with `from`'s content at `source`
                d, root = self._snapshot(sp["from"], f"mnt-{self.step_no}-{len(mount_dirs)}")
                mount_dirs.append(d)
                seed = kmounts.secure_join(str(root), sp["source"])
                if not os.path.isdir(seed):
                    raise BuildError(f"RUN --mount={sp['text']}: {sp['source']} is not a directory in {opts['from']}", ins)
                _copy_tree(src, "/", _walk_plain(seed), None, None)
            return {"destination": target, "type": "bind", "source": str(src), "options": ["rbind", "rprivate"]}
        rw = opts.get("rw", opts.get("readwrite", "false")) in ("true", "")
        if sp["from"] is not None:  # another stage's or an image's rootfs, read-only unless rw
            d, root = self._snapshot(sp["from"], f"mnt-{self.step_no}-{len(mount_dirs)}")
            mount_dirs.append(d)  # its overlay upper takes (and drops) rw writes
            path = kmounts.secure_join(str(root), sp["source"])
            if not os.path.lexists(path):
                raise BuildError(f"RUN --mount={sp['text']}: {sp['source']}: no such file or directory in "
                                 f"{opts['from']}", ins)
        else:
            path = sp["path"]
        return {"destination": target, "type": "bind", "source": path,
                "options": ["rbind", "rprivate"] + ([] if rw else ["ro"])}

    def _container(self, rootfs, argv, env, cwd, user, network, extra_mounts, step, cdir):
        """Run argv in a hull container over `rootfs`; stream its output to the progress.
        Returns (exit code, runtime error message or None)."""
        from hull.engine import bundle, records
        from hull.runtime import lifecycle as rt
        from hull.runtime.spec_default import default_spec
        uid, gid, extra = bundle.lookup_user(str(rootfs), user)
        caps, _ = bundle.effective_caps({})
        spec = default_spec(args=argv, terminal=False)
        proc = spec["process"]
        proc["env"] = [f"{k}={v}" for k, v in env.items()]
        proc["cwd"] = cwd
        proc["user"] = {"uid": uid, "gid": gid}
        if extra:
            proc["user"]["additionalGids"] = extra
        proc["capabilities"] = {"bounding": list(caps), "effective": list(caps), "permitted": list(caps)}
        proc["noNewPrivileges"] = False
        hard = bundle._host_hard_nofile()
        proc["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": hard, "hard": hard}]
        spec["root"] = {"path": str(rootfs), "readonly": False}
        spec["hostname"] = "hull-build"
        ns = [{"type": t} for t in ("pid", "ipc", "uts", "mount", "cgroup")]
        if network != "host":
            ns.append({"type": "network"})
        linux = spec["linux"]
        linux["namespaces"] = ns
        cid = "build-" + secrets.token_hex(8)
        linux["cgroupsPath"] = f"/hull/{cid}"
        sc = bundle._seccomp({}, caps)
        if sc:
            linux["seccomp"] = sc
        spec["mounts"] = list(spec["mounts"]) + list(extra_mounts)
        if network == "host":
            spec["mounts"].append({"destination": "/etc/resolv.conf", "type": "bind", "source": "/etc/resolv.conf",
                                   "options": ["rbind", "ro"]}) if os.path.exists(os.path.join(rootfs, "etc/resolv.conf")) else None
        bdir = cdir / "bundle"
        bdir.mkdir(exist_ok=True)
        (bdir / "config.json").write_text(json.dumps(spec))
        root = records.runtime_root()
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                os.close(out_r)
                os.close(err_r)
                null = os.open("/dev/null", os.O_RDONLY)
                os.dup2(null, 0)
                os.dup2(out_w, 1)
                os.dup2(out_w, 2)
                os.close(out_w)
                os.set_inheritable(err_w, False)
                code = rt.run(root, cid, str(bdir), rt.Options())
                os._exit(code & 0xFF)
            except BaseException as e:  # noqa: BLE001 - reported to the parent
                try:
                    os.write(err_w, str(e).encode() or e.__class__.__name__.encode())
                finally:
                    os._exit(255)
        os.close(out_w)
        os.close(err_w)
        buf = b""
        try:
            while True:
                chunk = os.read(out_r, 65536)
                if not chunk:
                    break
                buf += chunk
                *lines, buf = buf.split(b"\n")
                for ln in lines:
                    self.progress.log(step, ln.decode("utf-8", "replace"))
            if buf:
                self.progress.log(step, buf.decode("utf-8", "replace"))
        finally:
            os.close(out_r)
            _, status = os.waitpid(pid, 0)
            err = b""
            while True:
                chunk = os.read(err_r, 65536)
                if not chunk:
                    break
                err += chunk
            os.close(err_r)
            try:
                rt.delete(root, cid, force=True)
            except HullError:
                pass
        code = rt.exit_status(status)
        return code, err.decode("utf-8", "replace") or None

    # -- COPY / ADD
    def _copy(self, st, ins, state, step):
        env = self._scope(state)
        what = ins.keyword
        if ins.json is not None:
            words = [self._expand(ins, w, env) for w in ins.json]
        else:
            try:
                words = [self.lexer.process_word(w, env) for w in dfmod._raw_words(ins.rest, self.df.escape)]
            except ValueError as e:
                raise dfmod.DockerfileError(self.df_name, ins.line, str(e)) from None
        heredocs = {h.name: h for h in ins.heredocs}
        srcs_text, dest = words[:-1], words[-1]
        if not srcs_text:
            raise dfmod.DockerfileError(self.df_name, ins.line, f"{what} requires at least two arguments")
        chown = ins.flag("chown") and self._expand(ins, ins.flag("chown"), env)
        chmod = ins.flag("chmod")
        if chmod is not None:
            try:
                chmod = int(chmod, 8)
                if chmod > 0o7777:
                    raise ValueError
            except ValueError:
                raise BuildError(f"{what} --chmod={ins.flag('chmod')}: invalid mode, use octal like 0755", ins) from None
        frm = ins.flag("from") and self._expand(ins, ins.flag("from"), self.meta_args)
        # where the sources come from, and a checksum for the cache key
        src_root = None
        if frm:
            dep = self._stage_ref(frm)
            if dep is not None:
                src_state = self.results[dep.index]
            else:
                img = self._image(frm, ins)
                src_state = State(img.config, img.layers, img.id)
            files = "from:" + src_state.key + ":" + json.dumps(srcs_text)
        else:
            sources = []
            for s in srcs_text:
                if s.startswith("<<") and s[2:].lstrip("-").strip("'\"") in heredocs:
                    continue
                if what == "ADD" and re.match(r"^(https?|git)://", s):
                    raise BuildError(f"ADD {s}: downloading remote sources needs network access, which hull build "
                                     "does not have here; download the file into the build context and ADD/COPY it", ins)
                sources.append(self.ctx.resolve(s, what))
            files = self.ctx.checksum([x for group in sources for x in group])
            if heredocs:
                files += ":" + json.dumps({k: h.content for k, h in heredocs.items()}, sort_keys=True)
        flags = " ".join(f"--{k}={v}" for k in ("from", "chown", "chmod") for v in ins.flags.get(k, []))
        created_by = f"{what} {flags + ' ' if flags else ''}{' '.join(srcs_text)} {dest} # buildkit"
        key = cache_mod.step_key(state.key, created_by, files=files, extra={"wd": state.cc.get("WorkingDir")})
        hit = self.cache.get(key)
        if hit:
            return State(hit["config"], hit["layers"], key), True
        if self.dry:
            raise NeedsWork(created_by)
        cdir, rootfs = self._snapshot(state, f"copy-{self.step_no}")
        from_dir = None
        self.step_no += 1
        try:
            if frm:
                from_dir, src_root = self._snapshot(src_state, f"from-{self.step_no}")
            wd = state.cc.get("WorkingDir") or "/"
            self._workdir_in(rootfs, state)
            dest_abs = dest if dest.startswith("/") else posixpath.join(wd, dest)
            dest_is_dir = dest.endswith("/") or dest.endswith("/.") or dest in (".", "..")
            owner = None
            if chown:
                uid, gid, _ = __import__("hull.engine.bundle", fromlist=["x"]).lookup_user(str(rootfs), chown)
                owner = (uid, gid)
            items = []  # (kind, source name/path, ...)
            for s in srcs_text:
                name = s[2:].lstrip("-").strip("'\"") if s.startswith("<<") else None
                if name in heredocs:
                    h = heredocs[name]
                    content = h.content
                    if h.expand:
                        content = self._expand(ins, content.replace("\\", "\\\\") if False else content, env)
                    items.append(("heredoc", name, content))
                elif src_root is not None:
                    items.extend(("path", p, None) for p in _resolve_in_rootfs(src_root, s, what))
                else:
                    items.extend(("ctx", x, None) for x in self.ctx.resolve(s, what))
            if len(items) > 1 and not dest_is_dir:
                raise BuildError(f"When using {what} with more than one source file, the destination must be a "
                                 "directory and end with a /", ins)
            from hull.kernel import mounts as kmounts
            for kind, src, content in items:
                if kind == "heredoc":
                    target = posixpath.join(dest_abs, src) if dest_is_dir else dest_abs
                    _write_file(rootfs, target, content.encode(), chmod if chmod is not None else 0o644, owner)
                    continue
                path = src.path if kind == "ctx" else src
                walker = self.ctx.walk(src) if kind == "ctx" else _walk_plain(path)
                default_owner = owner if owner else ((0, 0) if kind == "ctx" else None)
                st0 = os.lstat(path)
                if what == "ADD" and kind == "ctx" and stat.S_ISREG(st0.st_mode) and _is_archive(path):
                    _extract(rootfs, dest_abs, path, ins)
                    continue
                if stat.S_ISDIR(st0.st_mode):
                    _copy_tree(rootfs, dest_abs, walker, default_owner, chmod)
                else:
                    real_dest = kmounts.secure_join(str(rootfs), dest_abs)
                    if dest_is_dir or os.path.isdir(real_dest):
                        target = posixpath.join(dest_abs, os.path.basename(path))
                    else:
                        target = dest_abs
                    _copy_tree(rootfs, target, walker, default_owner, chmod)
            if from_dir is not None:
                from hull.image import snapshot
                snapshot.remove(from_dir, self.store)
                from_dir = None
            return self._commit(state, cdir, created_by, key), False
        except BaseException:
            from hull.image import snapshot
            for d in (cdir, from_dir):
                if d is not None:
                    try:
                        snapshot.remove(d, self.store)
                    except (HullError, OSError):
                        pass
            raise

    # ------------------------------------------------------------------ export
    def _export(self, state):
        cfg = json.loads(json.dumps(state.config))
        if self.opts.labels:
            labels = dict(cfg.setdefault("config", {}).get("Labels") or {})
            labels.update(self.opts.labels)
            cfg["config"]["Labels"] = labels
        cfg.setdefault("config", {})
        cfg["architecture"], cfg["os"] = "amd64", "linux"
        tags = self.opts.tags
        if self.dry:
            img = self.store.stored_image(cfg, state.layers, tags)
            if img is None:
                raise NeedsWork("the image or a tag is new")
            return img
        img = self.store.write_image(cfg, state.layers, name=tags[0] if tags else None)
        for t in tags[1:]:
            self.store.tag(img.digest, t)
        if tags:
            img = self.store.resolve(tags[0])
        return img


# -- file helpers ----------------------------------------------------------------------------

def _duration_ns(text, ins, name):
    m = re.fullmatch(r"((?:\d+(?:\.\d+)?(?:ns|us|ms|s|m|h))+)", text)
    if not m:
        raise dfmod.DockerfileError(name, ins.line, f"invalid duration {text!r} (use e.g. 30s, 1m30s)")
    mult = {"ns": 1, "us": 1e3, "ms": 1e6, "s": 1e9, "m": 60e9, "h": 3600e9}
    return int(sum(float(v) * mult[u] for v, u in re.findall(r"(\d+(?:\.\d+)?)(ns|us|ms|s|m|h)", text)))


def _mount_stubs(rootfs, targets):
    """The paths a RUN's mount targets will create in rootfs (missing now), parents first."""
    out = []
    for t in targets:
        parts = [p for p in t.split("/") if p and p != "."]
        for i in range(1, len(parts) + 1):
            p = os.path.join(str(rootfs), *parts[:i])
            if os.path.islink(p):
                break
            if not os.path.lexists(p) and p not in out:
                out.append(p)
    return out


def _remove_stubs(stubs):
    for p in reversed(stubs):
        try:
            st = os.lstat(p)
            if stat.S_ISDIR(st.st_mode):
                os.rmdir(p)  # only when empty
            elif stat.S_ISREG(st.st_mode) and st.st_size == 0:
                os.unlink(p)
        except OSError:
            pass


def _mount_opts(text):
    """`type=bind,from=build,source=/out,target=/in,rw` -> dict ("true" for bare words)."""
    opts = {}
    for part in text.split(","):
        k, eq, v = part.partition("=")
        opts[k.strip()] = v.strip() if eq else "true"
    return opts


def _resolve_in_rootfs(root, pattern, what):
    """Paths for a COPY --from source inside another stage's rootfs (symlinks stay inside)."""
    import fnmatch

    from hull.kernel import mounts as kmounts
    rel = posixpath.normpath("/" + pattern).lstrip("/")
    if not any(c in rel for c in "*?["):
        p = kmounts.secure_join(str(root), rel)
        if not os.path.lexists(p):
            raise ContextError(f"{what} --from failed: {pattern}: no such file or directory in the source stage")
        return [p]
    out = [""]
    for part in rel.split("/"):
        nxt = []
        for base in out:
            d = kmounts.secure_join(str(root), base) if base else str(root)
            try:
                names = sorted(os.listdir(d))
            except OSError:
                continue
            nxt += [posixpath.join(base, n) for n in names if fnmatch.fnmatchcase(n, part)]
        out = nxt
    if not out:
        raise ContextError(f"{what} --from failed: no source files were specified matching {pattern!r}")
    return [kmounts.secure_join(str(root), p) for p in out]


def _walk_plain(path):
    st = os.lstat(path)
    yield "", path, st
    if not stat.S_ISDIR(st.st_mode):
        return
    for dirpath, dirnames, filenames in os.walk(path):
        dirnames.sort()
        for n in sorted(dirnames + filenames):
            full = os.path.join(dirpath, n)
            yield os.path.relpath(full, path), full, os.lstat(full)


def _mkdirs(rootfs, path):
    """mkdir -p `path` inside rootfs (0755 root, as the reference); returns the real path."""
    from hull.kernel import mounts as kmounts
    real = kmounts.secure_join(str(rootfs), path)
    if not os.path.isdir(real):
        parts = [p for p in path.split("/") if p]
        for i in range(1, len(parts) + 1):
            r = kmounts.secure_join(str(rootfs), "/" + "/".join(parts[:i]))
            if not os.path.isdir(r):
                if os.path.lexists(r):
                    os.unlink(r)
                os.mkdir(r, 0o755)
                os.chmod(r, 0o755)
    return real


def _write_file(rootfs, target, data, mode, owner):
    from hull.kernel import mounts as kmounts
    _mkdirs(rootfs, posixpath.dirname(target) or "/")
    real = kmounts.secure_join(str(rootfs), target)
    if os.path.isdir(real) and not os.path.islink(real):
        shutil.rmtree(real)
    elif os.path.lexists(real):
        os.unlink(real)
    with open(real, "wb") as f:
        f.write(data)
    os.chmod(real, mode)
    os.chown(real, *(owner or (0, 0)))


def _copy_tree(rootfs, dest, walker, owner, chmod):
    """Copy what `walker` yields (rel "", then below) to `dest` inside rootfs. A source dir's
    contents go into dest (dest made as a dir); a file becomes dest."""
    from hull.kernel import mounts as kmounts
    _mkdirs(rootfs, posixpath.dirname(dest.rstrip("/")) or "/")
    dirs = []
    for rel, full, st in walker:
        target = posixpath.join(dest, rel) if rel else dest
        real = kmounts.secure_join(str(rootfs), target)
        mode = chmod if chmod is not None else stat.S_IMODE(st.st_mode)
        if stat.S_ISDIR(st.st_mode):
            if os.path.lexists(real) and not os.path.isdir(real):
                os.unlink(real)
            if not os.path.isdir(real):
                os.mkdir(real, 0o755)
                dirs.append((real, st, mode))
            elif rel:
                dirs.append((real, st, mode))
            else:
                if chmod is not None or owner:
                    dirs.append((real, st, mode))
            continue
        if os.path.isdir(real) and not os.path.islink(real):
            shutil.rmtree(real)
        elif os.path.lexists(real):
            os.unlink(real)
        if stat.S_ISREG(st.st_mode):
            shutil.copyfile(full, real, follow_symlinks=False)
            os.chmod(real, mode)
        elif stat.S_ISLNK(st.st_mode):
            os.symlink(os.readlink(full), real)
        elif stat.S_ISFIFO(st.st_mode):
            os.mkfifo(real, mode)
        else:
            continue  # devices and sockets are not copied
        uid, gid = owner if owner else (st.st_uid, st.st_gid)
        os.chown(real, uid, gid, follow_symlinks=False)
        os.utime(real, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)
    for real, st, mode in reversed(dirs):
        os.chmod(real, mode)
        uid, gid = owner if owner else (st.st_uid, st.st_gid)
        os.chown(real, uid, gid)
        os.utime(real, ns=(st.st_atime_ns, st.st_mtime_ns))


def _is_archive(path):
    with open(path, "rb") as f:
        head = f.read(512)
    if head[:2] == b"\x1f\x8b" or head[:3] == b"BZh" or head[:6] == b"\xfd7zXZ\x00":
        return True
    return len(head) >= 262 and head[257:262] == b"ustar"


def _extract(rootfs, dest, path, ins):
    import tarfile
    real = _mkdirs(rootfs, dest)
    try:
        with tarfile.open(path, "r:*") as tf:
            if hasattr(tarfile, "tar_filter"):
                tf.extractall(real, filter="tar")
            else:  # Python before 3.11.4 (Debian 12's 3.11.2): the same refusals, made here
                tf.extractall(real, members=_tar_filtered(tf, real, os.path.basename(path), ins))
    except (tarfile.TarError, OSError) as e:
        raise BuildError(f"ADD {os.path.basename(path)}: extracting the archive failed: {e}", ins) from None


def _tar_filtered(tf, dest, archive, ins):
    """What tarfile's "tar" filter does, member by member as they are extracted (so a symlink
    an earlier member made is seen): leading slashes stripped, a path that would land outside
    `dest` refused, setuid/setgid/sticky and group/other write bits cleared."""
    dest = os.path.realpath(dest)
    for m in tf:
        name = m.name.lstrip("/" + os.sep)
        target = os.path.realpath(os.path.join(dest, name))
        if os.path.isabs(name) or os.path.commonpath([dest, target]) != dest:
            raise BuildError(f"ADD {archive}: {m.name!r} would land outside the destination", ins)
        m.name = name
        if m.isreg() or m.isdir() or m.ischr() or m.isblk() or m.isfifo():
            m.mode &= ~0o7022
        yield m


def build(opts, store=None, progress=None):
    return Builder(opts, store, progress).build()
