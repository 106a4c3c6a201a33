"""common.storage: one set of reads and writes for a local folder and for cloud storage,
checked against a real S3 server (moto's) on 127.0.0.1."""

from __future__ import annotations

import errno

import pytest

from common import storage
from tests.common.s3_server import s3_environment, start_s3_server


@pytest.fixture
def s3(s3_bucket):
    return s3_bucket


def test_uris_and_paths_are_told_apart_and_joined():
    assert storage.is_uri("s3://b/p") and storage.is_uri("gs://b") and storage.is_uri("hdfs://h/x")
    assert not storage.is_uri("/tmp/x") and not storage.is_uri("runs/tiny")
    assert not storage.is_uri("file:///tmp/x") and not storage.is_uri(None)
    assert storage.join("s3://b/p", "zoo", "a.pth") == "s3://b/p/zoo/a.pth"
    assert storage.join("s3://b/p/", "ray") == "s3://b/p/ray"
    # pyarrow reads options from the query, so it stays at the end
    assert (storage.join("s3://b/p?endpoint_override=h:9&scheme=http", "x")
            == "s3://b/p/x?endpoint_override=h:9&scheme=http")
    assert storage.join("/out", "features", "k.npz") == "/out/features/k.npz"


def test_credentials_are_masked():
    assert storage.masked("s3://AKIA:SECRET@bucket/p") == "s3://***@bucket/p"
    assert (storage.masked("s3://b/p?access_key=AKIA&secret_key=S3CR3T&region=eu")
            == "s3://b/p?access_key=***&secret_key=***&region=eu")
    assert storage.masked("/plain/path") == "/plain/path"


def test_local_locations_keep_their_atomic_files(tmp_path):
    target = tmp_path / "a" / "b.bin"
    storage.write_bytes(target, b"one")
    assert storage.read_bytes(target) == b"one" and storage.exists(target)
    with storage.publish(target) as tmp:
        tmp.write_bytes(b"two")
        assert storage.read_bytes(target) == b"one"  # nothing visible before the block ends
    assert target.read_bytes() == b"two"
    with storage.local_copy(target) as local:
        assert local == target
    storage.delete(target)
    storage.delete(target)  # a missing file is no error
    with pytest.raises(FileNotFoundError):
        storage.read_bytes(target)


def test_objects_on_s3_are_written_read_and_removed(s3):
    where = "s3://bucket/study/zoo/resnet_tiny/gmp_90.pth"
    assert not storage.exists(where)
    storage.write_bytes(where, b"weights")
    assert storage.read_bytes(where) == b"weights" and storage.exists(where)
    assert s3.keys("bucket/study") == ["bucket/study/zoo/resnet_tiny/gmp_90.pth"]
    with storage.publish(where) as tmp:
        tmp.write_bytes(b"new weights")
        assert storage.read_bytes(where) == b"weights"
    with storage.local_copy(where) as local:
        assert local.name == "gmp_90.pth" and local.read_bytes() == b"new weights"
        folder = local.parent
    assert not folder.exists()  # the download is removed after use
    storage.delete(where)
    assert not storage.exists(where)


def test_a_failed_publish_leaves_nothing(s3):
    where = "s3://bucket/failed/obj"
    with pytest.raises(RuntimeError), storage.publish(where) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("killed while writing")
    assert not storage.exists(where)


def test_errors_name_the_uri_and_keep_an_errno(s3):
    with pytest.raises(FileNotFoundError, match="s3://bucket/none/here") as missing:
        storage.read_bytes("s3://bucket/none/here")
    assert missing.value.errno == errno.ENOENT
    with pytest.raises(OSError, match="could not write s3://no-such-bucket/x") as nobucket:
        storage.write_bytes("s3://no-such-bucket/x", b"1")
    assert nobucket.value.errno == errno.EIO  # not the input's fault: Tune retries it


def test_wrong_credentials_are_refused_with_eacces(tmp_path):
    server = start_s3_server(tmp_path, check_credentials=True)
    try:
        server.make_bucket("locked")
        with s3_environment(server):
            storage.write_bytes("s3://locked/ok", b"1")  # the server's own user may
        wrong = {**server.env, "AWS_ACCESS_KEY_ID": "AKIAWRONG", "AWS_SECRET_ACCESS_KEY": "x"}
        server.env = wrong
        with s3_environment(server), pytest.raises(OSError) as refused:
            storage.write_bytes("s3://locked/no", b"1")
        assert refused.value.errno == errno.EACCES
        assert "s3://locked/no" in str(refused.value)
    finally:
        server.stop()
