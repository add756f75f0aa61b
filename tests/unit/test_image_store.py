import json
import os
import threading

import pytest

from hull.errors import Conflict, NotFound, UsageError
from hull.image import store as store_mod
from hull.image.store import DigestMismatch, Store, chain_ids, sha256_digest


@pytest.fixture
def st(tmp_path):
    return Store(tmp_path / "root")


def make_image(st, payload=b"layer", name="test/img:1", arch="amd64"):
    layer = st.put_blob(b"L" + payload)
    diff = sha256_digest(b"diff" + payload)
    cfg = {"architecture": arch, "os": "linux", "config": {},
           "rootfs": {"type": "layers", "diff_ids": [diff]}}
    return st.write_image(cfg, [{"mediaType": store_mod.MT_OCI_LAYER_GZIP, "digest": layer,
                                 "size": len(payload) + 1}], name)


def test_layout_is_oci(st):
    st.init()
    assert json.loads((st.layout / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    idx = json.loads(st.index_path.read_text())
    assert idx["schemaVersion"] == 2 and idx["manifests"] == []


def test_put_blob_verifies_digest(st):
    d = st.put_blob(b"hello")
    assert d == sha256_digest(b"hello") and st.read_blob(d) == b"hello"
    wrong = sha256_digest(b"other")
    with pytest.raises(DigestMismatch):
        st.put_blob(b"hello!", wrong)
    assert not st.has_blob(wrong)
    assert list(st.ingest_dir.iterdir()) == []


def test_writer_rejects_oversize_and_keeps_partial_for_resume(st):
    data = b"x" * 1000
    d = sha256_digest(data)
    w = st.writer(d, len(data))
    w.write(data[:400])
    w.close()  # interrupted
    assert not st.has_blob(d)
    w = st.writer(d, len(data))
    assert w.offset == 400
    w.write(data[400:])
    w.commit()
    assert st.read_blob(d) == data
    w = st.writer(sha256_digest(b"abc"), 3)
    with pytest.raises(DigestMismatch):
        w.write(b"abcd")
    assert not st.has_blob(sha256_digest(b"abc"))


def test_writer_bad_content_not_committed(st):
    d = sha256_digest(b"good")
    w = st.writer(d, 4)
    w.write(b"evil")
    with pytest.raises(DigestMismatch) as e:
        w.commit()
    assert "not stored" in str(e.value)
    assert not st.has_blob(d) and not w.path.exists()


def test_concurrent_put_one_copy(st):
    data = os.urandom(1 << 16)
    errors = []

    def put():
        try:
            st.put_blob(data)
        except Exception as e:  # pragma: no cover
            errors.append(e)
    ts = [threading.Thread(target=put) for _ in range(8)]
    [t.start() for t in ts]
    [t.join() for t in ts]
    assert not errors
    assert [p.name for p in st.blobs.iterdir()] == [sha256_digest(data)[7:]]


def test_resolve_by_name_id_digest(st):
    img = make_image(st)
    assert st.resolve("test/img:1").digest == img.digest
    assert st.resolve("docker.io/test/img:1").digest == img.digest
    assert st.resolve(img.id[7:19]).digest == img.digest
    assert st.resolve(img.id).digest == img.digest
    assert st.resolve(img.digest).digest == img.digest
    assert st.resolve(f"test/img@{img.digest}").digest == img.digest
    with pytest.raises(NotFound) as e:
        st.resolve("test/img:2")
    assert "hull pull" in str(e.value)
    with pytest.raises(UsageError):
        st.resolve("BAD")


def test_image_fields(st):
    img = make_image(st)
    assert img.names == ["docker.io/test/img:1"]
    assert img.chain_ids == chain_ids(img.diff_ids)
    assert img.platform == "linux/amd64"
    assert img.size > 0


def test_chain_ids():
    a, b = "sha256:" + "a" * 64, "sha256:" + "b" * 64
    assert chain_ids([a, b]) == [a, sha256_digest(f"{a} {b}".encode())]


def test_tag_retag_leaves_dangling_and_prune(st):
    one = make_image(st, b"1", "x:latest")
    st.tag("x:latest", "y:1")
    assert sorted(st.resolve("y:1").names) == ["docker.io/library/x:latest", "docker.io/library/y:1"]
    two = make_image(st, b"2", "x:latest")
    assert st.resolve("x:latest").digest == two.digest
    assert st.resolve("y:1").digest == one.digest
    st.remove("y:1")
    # one is gone (its last name went); nothing dangling
    assert [i.digest for i in st.images()] == [two.digest]
    three = make_image(st, b"3", "x:latest")
    dangling = [i for i in st.images() if not i.names]
    assert [d.digest for d in dangling] == [two.digest]
    removed, _ = st.prune()
    assert removed == [two.digest]
    assert [i.digest for i in st.images()] == [three.digest]
    assert not st.has_blob(two.id) and st.has_blob(three.id)


def test_rmi_by_id_with_several_names_needs_force(st):
    img = make_image(st, b"a", "a:1")
    st.tag("a:1", "b:1")
    with pytest.raises(Conflict) as e:
        st.remove(img.id[7:19])
    assert "must be forced" in str(e.value)
    acts = st.remove(img.id[7:19], force=True)
    assert ("Deleted", img.id) in acts
    assert st.images() == [] and list(st.blobs.iterdir()) == []


def test_rmi_refuses_in_use(st):
    img = make_image(st)
    rec = {"image": img.digest, "chain_ids": img.chain_ids, "owner": "ctr1"}
    (st.snapshots_dir / "k.json").write_text(json.dumps(rec))
    with pytest.raises(Conflict) as e:
        st.remove("test/img:1")
    assert "ctr1" in str(e.value)
    st.remove("test/img:1", force=True)
    assert st.images() == []


def test_gc_keeps_referenced_and_layer_dirs_in_use(st):
    img = make_image(st)
    junk = st.put_blob(b"unreferenced")
    layer_dir = st.layers_dir / img.chain_ids[0][7:]
    layer_dir.mkdir(parents=True)
    stale = st.layers_dir / ("f" * 64)
    stale.mkdir()
    deleted = st.gc()
    assert deleted == [junk]
    assert layer_dir.exists() and not stale.exists()


def test_corrupt_index_is_clear_error(st):
    st.init()
    st.index_path.write_text("{nope")
    with pytest.raises(Exception) as e:
        st.images()
    assert "index.json" in str(e.value)


def test_default_store_follows_hull_root(tmp_path, monkeypatch):
    monkeypatch.setenv("HULL_ROOT", str(tmp_path / "a"))
    assert store_mod.default_store().root == tmp_path / "a"
    monkeypatch.setenv("HULL_ROOT", str(tmp_path / "b"))
    assert store_mod.default_store().root == tmp_path / "b"
