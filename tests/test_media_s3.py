"""The S3 path of media storage, against a real S3-compatible server (moto in server mode)."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from flask import Flask

from .conftest import AUTHOR, _make_app, login
from .test_media import _an_article_of, image_bytes, multipart, upload

boto3 = pytest.importorskip("boto3")
pytest.importorskip("moto.server")

BUCKET = "blog-media"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def moto_server() -> Iterator[subprocess.Popen[bytes]]:
    """Start moto's S3-compatible server on a free port for this module's tests.

    The process is yielded (its URL is `.endpoint`) so a test can freeze it: an S3 that hangs.
    """
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    try:
        while True:  # wait for the server to accept connections (there is no event to wait on)
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("moto_server did not start") from None
                time.sleep(0.1)
        server.endpoint = f"http://127.0.0.1:{port}"  # type: ignore[attr-defined]
        yield server
    finally:
        server.send_signal(signal.SIGCONT)  # a stopped process would not act on SIGTERM
        server.terminate()
        server.wait(timeout=10)


@pytest.fixture(scope="module")
def s3_endpoint(moto_server: subprocess.Popen[bytes]) -> str:
    """The local S3 server's URL."""
    return moto_server.endpoint  # type: ignore[attr-defined]


@contextmanager
def frozen(server: subprocess.Popen[bytes]) -> Iterator[None]:
    """Stop a server's process (SIGSTOP): it accepts connections and answers nothing, as an S3
    that hangs does; it always runs again afterwards, whatever the test did."""
    server.send_signal(signal.SIGSTOP)
    try:
        yield
    finally:
        server.send_signal(signal.SIGCONT)


@pytest.fixture
def s3_app(
    s3_endpoint: str,
    tmp_path: Path,
    template_databases: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Flask]:
    """The app with media in a fresh bucket on the local S3 server."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    client.create_bucket(Bucket=BUCKET)
    app = _make_app(
        tmp_path,
        template_databases["demo"],
        MEDIA_S3_BUCKET=BUCKET,
        MEDIA_S3_ENDPOINT_URL=s3_endpoint,
        MEDIA_S3_REGION="us-east-1",
    )
    yield app
    for item in client.list_objects_v2(Bucket=BUCKET).get("Contents", []):
        client.delete_object(Bucket=BUCKET, Key=item["Key"])
    client.delete_bucket(Bucket=BUCKET)


def _objects(app: Flask) -> dict[str, str]:
    """Return the bucket's keys and their Content-Type, read straight from the server."""
    storage = app.extensions["media_storage"]
    listed = storage.client.list_objects_v2(Bucket=BUCKET).get("Contents", [])
    return {
        item["Key"]: storage.client.head_object(Bucket=BUCKET, Key=item["Key"])["ContentType"]
        for item in listed
    }


def test_upload_serve_and_delete_through_s3(s3_app: Flask) -> None:
    assert type(s3_app.extensions["media_storage"]).__name__ == "S3Storage"
    client = s3_app.test_client()
    login(client, AUTHOR)
    article_id = _an_article_of(s3_app, AUTHOR)
    answer = upload(client, article_id, image_bytes(size=(1000, 500))).get_json()
    name = answer["url"].removeprefix("/media/")
    digest = name.split(".")[0]
    fan = digest[:2]  # the same layout as the folder backend's, so `aws s3 sync` copies either
    assert _objects(s3_app) == {
        f"media/{fan}/{name}": "image/png",
        f"media/{fan}/{digest}-480.webp": "image/webp",
        f"media/{fan}/{digest}-960.webp": "image/webp",
        f"media/{fan}/{digest}-1000.webp": "image/webp",
    }
    # No file was written locally: every server reads the bucket.
    assert not (Path(s3_app.instance_path) / "media").exists()

    served = s3_app.test_client().get(answer["url"])
    assert served.status_code == 200 and served.mimetype == "image/png"
    assert served.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert served.data.startswith(b"\x89PNG")

    deleted = client.post(
        f"/studio/media/{answer['id']}/delete", headers={"Accept": "application/json"}
    )
    assert deleted.status_code == 200
    assert _objects(s3_app) == {}
    assert s3_app.test_client().get(answer["url"]).status_code == 404


def test_uploading_a_picture_again_puts_back_what_the_bucket_lost(s3_app: Flask) -> None:
    """A bucket emptied under the site (copy-db to a new bucket without `aws s3 sync`, a
    recreated bucket): uploading the picture again writes its files back."""
    client = s3_app.test_client()
    login(client, AUTHOR)
    article_id = _an_article_of(s3_app, AUTHOR)
    first = upload(client, article_id, image_bytes(size=(1000, 500))).get_json()
    written = _objects(s3_app)
    assert len(written) == 4
    bucket = s3_app.extensions["media_storage"].client
    for key in written:
        bucket.delete_object(Bucket=BUCKET, Key=key)
    assert client.get(first["url"]).status_code == 404
    second = upload(client, article_id, image_bytes(size=(1000, 500)))
    assert second.status_code == 201 and second.get_json()["url"] == first["url"]
    assert _objects(s3_app) == written
    assert client.get(first["url"]).status_code == 200


def test_a_refused_file_leaves_the_bucket_empty(s3_app: Flask) -> None:
    client = s3_app.test_client()
    login(client, AUTHOR)
    article_id = _an_article_of(s3_app, AUTHOR)
    refused = client.post(
        f"/studio/{article_id}/media", **multipart(b"<svg onload=alert(1)>", "x.svg")
    )
    assert refused.status_code == 415
    assert _objects(s3_app) == {}


def test_two_servers_share_one_bucket(
    s3_app: Flask, tmp_path: Path, template_databases: dict[str, Path]
) -> None:
    client = s3_app.test_client()
    login(client, AUTHOR)
    url = upload(client, _an_article_of(s3_app, AUTHOR), image_bytes()).get_json()["url"]
    (tmp_path / "other").mkdir()
    other = _make_app(
        tmp_path / "other",
        template_databases["demo"],
        MEDIA_S3_BUCKET=BUCKET,
        MEDIA_S3_ENDPOINT_URL=s3_app.config["MEDIA_S3_ENDPOINT_URL"],
        MEDIA_S3_REGION="us-east-1",
    )
    assert other.test_client().get(url).status_code == 200


def test_a_bucket_that_is_not_there_is_a_503_not_a_500(
    s3_endpoint: str,
    tmp_path: Path,
    template_databases: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(name, value)
    app = _make_app(
        tmp_path,
        template_databases["demo"],
        MEDIA_S3_BUCKET="no-such-bucket",
        MEDIA_S3_ENDPOINT_URL=s3_endpoint,
        MEDIA_S3_REGION="us-east-1",
    )
    client = app.test_client()
    login(client, AUTHOR)
    refused = upload(client, _an_article_of(app, AUTHOR), image_bytes())
    assert refused.status_code == 503 and "try again" in refused.get_json()["error"]
    checked = app.test_cli_runner().invoke(args=["check-deploy"])
    assert checked.exit_code == 1
    assert "UNSAFE  media cannot be stored (bucket no-such-bucket" in checked.output


def test_an_unreachable_bucket_is_a_503_for_readers_and_no_500_for_writers(
    s3_app: Flask,
) -> None:
    from blog.storage import S3Storage

    client = s3_app.test_client()
    login(client, AUTHOR)
    answer = upload(client, _an_article_of(s3_app, AUTHOR), image_bytes()).get_json()
    with socket.socket() as probe:  # a port nobody listens on: S3 unreachable
        probe.bind(("127.0.0.1", 0))
        nowhere = f"http://127.0.0.1:{probe.getsockname()[1]}"
    s3_app.extensions["media_storage"] = S3Storage(
        BUCKET, endpoint_url=nowhere, region="us-east-1", prefix="media/"
    )
    served = s3_app.test_client().get(answer["url"])
    assert served.status_code == 503 and served.headers["Cache-Control"] == "no-store"
    assert "try again" in served.get_data(as_text=True)
    deleted = client.post(
        f"/studio/media/{answer['id']}/delete", headers={"Accept": "application/json"}
    )
    assert deleted.status_code == 200  # gone from the site; its bytes wait in the bucket


def test_a_hung_s3_costs_one_request_seconds_and_the_next_nothing(
    s3_app: Flask, moto_server: subprocess.Popen[bytes]
) -> None:
    """An S3 that stops answering held each request 60 s (20 s to read, three tries): every
    gunicorn thread ended up waiting on it and the site went down, /healthz included. A request
    now gives up within seconds, and for a short pause after that the next ones do not ask."""
    from blog.storage import S3Storage

    author = s3_app.test_client()
    login(author, AUTHOR)
    article_id = _an_article_of(s3_app, AUTHOR)
    url = upload(author, article_id, image_bytes()).get_json()["url"]
    reader = s3_app.test_client()

    def timed(call):  # noqa: ANN001, ANN202 - a request, and its answer with its seconds
        started = time.monotonic()
        answer = call()
        return answer, time.monotonic() - started

    with frozen(moto_server):
        refused, took = timed(lambda: upload(author, article_id, image_bytes(size=(300, 200))))
        assert refused.status_code == 503 and "try again" in refused.get_json()["error"]
        assert took < 15  # 63 s before
        served, took = timed(lambda: reader.get(url))  # during the pause: S3 is not asked
        assert served.status_code == 503 and "try again" in served.get_data(as_text=True)
        assert took < 2
        time.sleep(S3Storage.PAUSE)  # the pause is over: S3 is asked again, and still hangs
        served, took = timed(lambda: reader.get(url))
        assert served.status_code == 503 and took < 15  # 60 s before
    deadline = time.monotonic() + 60  # answering again: the site recovers by itself
    while (served := reader.get(url)).status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert served.status_code == 200 and served.data.startswith(b"\x89PNG")
    assert upload(author, article_id, image_bytes(size=(300, 200))).status_code == 201
