"""Where uploaded media live: one small interface, a folder in instance/ or S3-compatible storage.

Keys are content-addressed file names (`<sha256>.<ext>`, `<sha256>-<width>.webp`): an object is
written once and never changes, so any server can read what any other wrote, and a copy made with
`cp -r` or `aws s3 sync` is always consistent. The backend is chosen once, at start-up: S3 when
MEDIA_S3_BUCKET is set, else the folder MEDIA_ROOT (default `instance/media/`).

On S3 the site still serves `/media/...` itself (blog/media_views.py reads the object and answers
with immutable caching headers), so pages keep `img-src 'self'` and a CDN in front caches it.
"""

from __future__ import annotations

import os
import re
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from flask import Flask, current_app, url_for

# What a key may look like: nothing else is ever read or written, so no key can name a path.
KEY = re.compile(r"^[0-9a-f]{64}(-[1-9][0-9]{0,4})?\.(jpg|png|webp|gif|avif)$")
CONTENT_TYPES = {
    "jpg": "image/jpeg",
    "png": "image/png",
    "webp": "image/webp",
    "gif": "image/gif",
    "avif": "image/avif",
}
SETTINGS = (
    "MEDIA_ROOT",
    "MEDIA_S3_BUCKET",
    "MEDIA_S3_ENDPOINT_URL",
    "MEDIA_S3_REGION",
    "MEDIA_S3_PREFIX",
)


class StorageUnavailable(Exception):
    """The backend could not store, read or remove an object (a folder that cannot be written,
    S3 unreachable or refusing): the same for every object, so callers stop and say it once
    rather than per file, and a reader gets a 503, never a 500."""


# What an uploader is told (the cause goes to the log: it names folders and buckets).
UNAVAILABLE = "Images cannot be stored right now; try again in a few minutes."


class BadKey(ValueError):
    """A key that is not one of ours (and so could name something it should not)."""


def check_key(key: str) -> str:
    """Return the key if it is a media file name, else raise BadKey."""
    if not KEY.match(key):
        raise BadKey(f"not a media key: {key!r}")
    return key


def content_type(key: str) -> str:
    """Return the Content-Type of a key, from its extension."""
    return CONTENT_TYPES[key.rsplit(".", 1)[1]]


class Storage(Protocol):
    """What the rest of the site needs from a place that keeps media."""

    def put(self, key: str, data: bytes, content_type: str) -> None: ...

    def get(self, key: str) -> bytes | None: ...

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None: ...

    def url_for_key(self, key: str) -> str: ...

    def problem(self) -> str | None: ...


class _SiteURLs:
    def url_for_key(self, key: str) -> str:
        """Return the site-relative URL a page uses for a key (always this site: img-src 'self')."""
        return url_for("media.file", name=check_key(key))


class LocalStorage(_SiteURLs):
    """Media in a folder (one server, or several sharing a network file system)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        # Two levels of fan-out keep folders small: ab/abcdef....webp
        return self.root / check_key(key)[:2] / key

    def put(self, key: str, data: bytes, content_type: str) -> None:
        """Write an object atomically (a reader sees the whole file or none)."""
        path = self._path(key)
        try:  # any OSError (a folder that cannot be written, a full disk) is the storage's
            if path.exists():
                return  # content-addressed: the same key always holds the same bytes
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
                os.replace(temporary, path)
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
        except OSError as error:
            raise StorageUnavailable(f"cannot write to {self.root}: {error.strerror}") from error

    def get(self, key: str) -> bytes | None:
        """Read an object, or None when there is none."""
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            return None
        except OSError as error:
            raise StorageUnavailable(f"cannot read {self.root}: {error.strerror}") from error

    def exists(self, key: str) -> bool:
        """Say whether an object is stored."""
        try:
            return self._path(key).is_file()
        except OSError as error:  # a folder it may not read: not "missing"
            raise StorageUnavailable(f"cannot read {self.root}: {error.strerror}") from error

    def problem(self) -> str | None:
        """Say why objects cannot be stored here now (for check-deploy), or None."""
        folder = self.root
        while not folder.exists() and folder.parent != folder:
            folder = folder.parent  # put() creates what is missing below the first that exists
        if not os.access(folder, os.W_OK | os.X_OK):
            return f"{folder} cannot be written by this user"
        return None

    def delete(self, key: str) -> None:
        """Remove an object (no error when it is already gone)."""
        try:
            self._path(key).unlink(missing_ok=True)
        except OSError as error:
            raise StorageUnavailable(f"cannot delete in {self.root}: {error.strerror}") from error


class S3Storage(_SiteURLs):
    """Media in an S3-compatible bucket (AWS, MinIO, R2, ...), for several servers.

    Credentials come from boto3's usual chain (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, a
    profile, an instance role); the endpoint URL makes any compatible service work.

    A bucket that hangs costs one request a few seconds (the timeouts below), and then nothing
    for PAUSE seconds: every call fails at once with StorageUnavailable, so while S3 is down
    gunicorn's threads are not all held waiting on it (the rest of the site, /healthz included,
    keeps answering), and the first call after the pause finds out whether it is back.
    """

    PAUSE = 5.0  # seconds without asking S3 after a call failed (as the page cache does Redis)

    def __init__(
        self,
        bucket: str,
        endpoint_url: str | None = None,
        region: str | None = None,
        prefix: str = "media/",
        client: Any = None,
    ) -> None:
        import boto3
        from botocore.config import Config

        self.bucket = bucket
        self.prefix = prefix
        self.client = client or boto3.client(
            "s3",
            endpoint_url=endpoint_url or None,
            region_name=region or None,
            # botocore waits 60 s to connect and 60 s to read, then retries: an endpoint that
            # never answers would hold a gunicorn thread for minutes. S3 answers in well under a
            # second (a read timeout is per socket wait, not for a whole 10 MB upload), so a
            # call that hangs costs at most 2 attempts x 3 s, plus under a second between them.
            config=Config(
                connect_timeout=2,
                read_timeout=3,
                retries={"total_max_attempts": 2, "mode": "standard"},
            ),
        )
        self.paused_until = 0.0  # time.monotonic(): no call to S3 before it

    def _name(self, key: str) -> str:
        # The folder's layout (ab/abcd....png), so `aws s3 sync instance/media/ s3://b/media/`
        # moves a site's media from one backend to the other, either way.
        return f"{self.prefix}{check_key(key)[:2]}/{key}"

    @contextmanager
    def _calls(self, doing: str) -> Iterator[None]:
        """Turn a failed S3 call (unreachable, refused, no such bucket) into StorageUnavailable,
        and make none for PAUSE seconds after one failed (see the class's docstring)."""
        from botocore.exceptions import BotoCoreError, ClientError

        if time.monotonic() < self.paused_until:
            raise StorageUnavailable(
                f"cannot {doing} bucket {self.bucket}: it failed under {self.PAUSE:g} s ago"
            )
        try:
            yield
        except (BotoCoreError, ClientError) as error:
            self.paused_until = time.monotonic() + self.PAUSE
            raise StorageUnavailable(f"cannot {doing} bucket {self.bucket}: {error}") from error

    def put(self, key: str, data: bytes, content_type: str) -> None:
        """Upload an object with the headers a direct reader would need too."""
        with self._calls("write to"):
            self.client.put_object(
                Bucket=self.bucket,
                Key=self._name(key),
                Body=data,
                ContentType=content_type,
                CacheControl="public, max-age=31536000, immutable",
            )

    def get(self, key: str) -> bytes | None:
        """Download an object, or None when there is none."""
        with self._calls("read"):
            try:
                answer = self.client.get_object(Bucket=self.bucket, Key=self._name(key))
            except self.client.exceptions.NoSuchKey:
                return None
            return answer["Body"].read()

    def exists(self, key: str) -> bool:
        """Say whether an object is stored (a HEAD request)."""
        from botocore.exceptions import ClientError

        with self._calls("read"):
            try:
                self.client.head_object(Bucket=self.bucket, Key=self._name(key))
            except ClientError as error:
                if _code(error) in ("404", "NoSuchKey", "NotFound"):
                    return False
                raise
        return True

    def problem(self) -> str | None:
        """Say why the bucket cannot be used now (for check-deploy), or None."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError as error:
            if _code(error) in ("403", "AccessDenied"):
                return None  # a key allowed objects only (no s3:ListBucket) cannot ask: unknown
            return f"bucket {self.bucket}: {error}"
        except BotoCoreError as error:
            return f"bucket {self.bucket}: {error}"
        return None

    def delete(self, key: str) -> None:
        """Remove an object (S3 answers the same whether or not it existed)."""
        with self._calls("delete in"):
            self.client.delete_object(Bucket=self.bucket, Key=self._name(key))


def _code(error: Any) -> str:
    """Return an S3 error's code ("404", "AccessDenied", ...)."""
    return str(error.response.get("Error", {}).get("Code", ""))


def _setting(app: Flask, name: str) -> str | None:
    """Read a media setting: the app's configuration, else the environment."""
    value = app.config.get(name)
    if value is None and not app.testing:
        value = os.environ.get(name)
    return value or None


def configure(app: Flask) -> None:
    """Choose the media storage once, at start-up."""
    bucket = _setting(app, "MEDIA_S3_BUCKET")
    storage: Storage
    if bucket:
        storage = S3Storage(
            bucket,
            endpoint_url=_setting(app, "MEDIA_S3_ENDPOINT_URL"),
            region=_setting(app, "MEDIA_S3_REGION"),
            prefix=_setting(app, "MEDIA_S3_PREFIX") or "media/",
        )
    else:
        root = _setting(app, "MEDIA_ROOT") or str(Path(app.instance_path) / "media")
        storage = LocalStorage(Path(root))
    app.extensions["media_storage"] = storage


def media_storage() -> Storage:
    """Return the storage chosen at start-up."""
    return current_app.extensions["media_storage"]
