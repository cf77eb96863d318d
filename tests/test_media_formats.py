"""Uploaded images in the less common shapes: multi-picture JPEGs."""

from __future__ import annotations

import io

import pytest
from flask.testing import FlaskClient
from PIL import Image

from blog import media

from .test_media import image_bytes, upload


@pytest.fixture
def draft_id(make_article) -> int:  # noqa: ANN001
    return make_article("Pictures in odd shapes", status="draft")


def served(client: FlaskClient, url: str) -> Image.Image:
    response = client.get(url)
    assert response.status_code == 200
    return Image.open(io.BytesIO(response.data))


# -- a JPEG with more than one picture (MPO) -----------------------------------------------------


def mpo_bytes(*pictures: Image.Image, **save: object) -> bytes:
    """A JPEG followed by more pictures and an index of them, as phone cameras write it."""
    out = io.BytesIO()
    pictures[0].save(out, "MPO", save_all=True, append_images=list(pictures[1:]), **save)
    return out.getvalue()


def test_a_multi_picture_jpeg_is_stored_as_a_jpeg_of_its_first_picture(
    author_client: FlaskClient, draft_id: int
) -> None:
    photo = Image.open(io.BytesIO(image_bytes("PNG", (600, 400))))
    other = Image.new("RGB", (600, 400), (0, 200, 0))  # the second eye, or a depth map
    data = mpo_bytes(photo, other)
    assert Image.open(io.BytesIO(data)).format == "MPO"
    response = upload(author_client, draft_id, data, name="IMG_0001.jpg")
    assert response.status_code == 201, response.get_json()
    answer = response.get_json()
    assert answer["url"].endswith(".jpg")
    assert (answer["width"], answer["height"]) == (600, 400)
    stored = served(author_client, answer["url"])
    assert stored.format == "JPEG" and getattr(stored, "n_frames", 1) == 1
    assert "mp" not in stored.info  # no index of pictures that are not there
    red, green, blue = stored.convert("RGB").getpixel((15, 15))
    assert abs(blue - 200) < 20 and green < 150  # the photo's blue (30, 120, 200), not the green
    assert served(author_client, answer["url"].replace(".jpg", "-480.webp")).size == (480, 320)


def test_a_multi_picture_jpeg_is_turned_upright_and_loses_its_exif(
    author_client: FlaskClient, draft_id: int
) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90° clockwise to display
    exif[0x010F] = "SpyCam"
    pictures = [Image.new("RGB", (300, 200), colour) for colour in ("red", "blue")]
    data = mpo_bytes(*pictures, exif=exif.tobytes())
    assert b"SpyCam" in data
    answer = upload(author_client, draft_id, data, name="photo.jpg").get_json()
    assert (answer["width"], answer["height"]) == (200, 300)
    response = author_client.get(answer["url"])
    assert b"SpyCam" not in response.data and b"Exif" not in response.data


def test_the_other_pictures_of_a_multi_picture_jpeg_are_not_counted_as_frames(
    monkeypatch: pytest.MonkeyPatch, author_client: FlaskClient, draft_id: int
) -> None:
    # They are dropped unseen: neither decoded nor held to the limits of an animation.
    monkeypatch.setattr(media, "MAX_ANIMATION_PIXELS", 100_000)
    pictures = [Image.new("RGB", (400, 300), (i * 40, 0, 0)) for i in range(4)]
    response = upload(author_client, draft_id, mpo_bytes(*pictures), name="burst.jpg")
    assert response.status_code == 201, response.get_json()
