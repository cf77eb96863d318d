"""Uploaded images: the studio endpoint, hostile files, serving, listing, deleting, rendering."""

from __future__ import annotations

import io
import json
import os
import struct
import zlib
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image, features
from sqlalchemy import func, select
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from blog.extensions import db
from blog.media_views import media_items
from blog.models import Article, Media

from .conftest import ADMIN, AUTHOR, _make_app, decide, login, parse


def image_bytes(fmt: str = "PNG", size: tuple[int, int] = (1200, 800), **save: object) -> bytes:
    """Make a real image with some detail (a flat colour compresses to nothing)."""
    image = Image.new("RGB", size, (30, 120, 200))
    for x in range(0, size[0], 40):
        image.paste((200, 40, 90), (x, 0, x + 10, size[1]))
    out = io.BytesIO()
    image.save(out, fmt, **save)
    return out.getvalue()


def noise_png(width: int, height: int) -> bytes:
    """An image that does not compress: its PNG is about 3 bytes a pixel."""
    out = io.BytesIO()
    Image.frombytes("RGB", (width, height), os.urandom(width * height * 3)).save(out, "PNG")
    return out.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A tiny PNG that declares a huge size: a decompression bomb's first bytes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def multipart(data: bytes, name: str = "a.png", **form: str) -> dict[str, object]:
    """Encode a multipart body ourselves: the test client spools one over 500 kB to a temporary
    file that it never closes (a ResourceWarning, an error under filterwarnings=error)."""
    boundary, body = encode_multipart({"file": FileStorage(io.BytesIO(data), name), **form})
    return {"data": body, "content_type": f"multipart/form-data; boundary={boundary}"}


def upload(client: FlaskClient, article_id: int, data: bytes, name: str = "a.png", **form: str):
    """Post a file to the studio's upload endpoint."""
    return client.post(f"/studio/{article_id}/media", **multipart(data, name, **form))


def stored_files(app: Flask) -> list[Path]:
    root = Path(app.instance_path) / "media"
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def media_count(app: Flask) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(Media)) or 0


@pytest.fixture
def draft_id(make_article) -> int:  # noqa: ANN001
    return make_article("Pictures of queues", status="draft")


def test_upload_answers_with_url_size_and_markdown(
    app: Flask, author_client: FlaskClient, draft_id: int
) -> None:
    response = upload(author_client, draft_id, image_bytes(), alt="A queue [diagram]")
    assert response.status_code == 201
    answer = response.get_json()
    assert answer["width"] == 1200 and answer["height"] == 800
    assert answer["url"].startswith("/media/") and answer["url"].endswith(".png")
    assert answer["markdown"] == f"![A queue \\[diagram\\]]({answer['url']})"
    assert isinstance(answer["id"], int)
    # The original plus WebP at 480 and 960 (1600 would be an upscale: 1200 instead).
    names = sorted(p.name for p in stored_files(app))
    assert len(names) == 4
    assert sum(n.endswith(".webp") for n in names) == 3


def test_served_media_is_immutable_inert_and_typed(
    author_client: FlaskClient, draft_id: int
) -> None:
    url = upload(author_client, draft_id, image_bytes()).get_json()["url"]
    anonymous = author_client.application.test_client()
    response = anonymous.get(url)
    assert response.status_code == 200
    assert response.mimetype == "image/png"
    assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Content-Security-Policy"].startswith("default-src 'none'")
    assert Image.open(io.BytesIO(response.data)).size == (1200, 800)
    again = anonymous.get(url, headers={"If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304
    variant = anonymous.get(url.replace(".png", "-480.webp"))
    assert variant.status_code == 200 and variant.mimetype == "image/webp"
    assert Image.open(io.BytesIO(variant.data)).size == (480, 320)


@pytest.mark.parametrize(
    "name", ["../../etc/passwd", "abc.png", "0" * 64 + ".svg", "0" * 64 + ".png"]
)
def test_unknown_or_malformed_media_names_are_404(client: FlaskClient, name: str) -> None:
    assert client.get(f"/media/{name}").status_code == 404


def test_exif_and_gps_are_stripped_and_orientation_applied(
    author_client: FlaskClient, draft_id: int
) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90° clockwise to display
    exif[0x010F] = "SpyCam"  # make
    exif[0x8825] = {1: "N", 2: (51.0, 30.0, 0.0)}  # GPS latitude
    original = image_bytes("JPEG", (600, 400), exif=exif.tobytes())
    assert b"SpyCam" in original
    answer = upload(author_client, draft_id, original, name="photo.jpg").get_json()
    assert (answer["width"], answer["height"]) == (400, 600)  # turned upright
    served = author_client.get(answer["url"]).data
    assert b"SpyCam" not in served and b"Exif" not in served
    assert not Image.open(io.BytesIO(served)).getexif()


def test_a_picture_with_html_appended_is_stored_without_it(
    author_client: FlaskClient, draft_id: int
) -> None:
    payload = b"<html><script>alert(document.cookie)</script></html>"
    answer = upload(author_client, draft_id, image_bytes() + payload).get_json()
    assert payload not in author_client.get(answer["url"]).data


SVG = b"""<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"
onload="alert(1)"><script>alert(document.domain)</script><rect width="10" height="10"/></svg>"""
HOSTILE = {
    # GIF's magic bytes followed by script: a browser sniffing it runs the script.
    "polyglot": (b"GIF89a/*<svg onload=alert(1)>*/=alert(1);//" + b"\x00" * 64, "a.gif", 415),
    "svg with script": (SVG, "drawing.svg", 415),
    "html named .png": (b"<!doctype html><script>alert(1)</script>", "cat.png", 415),
    "truncated png": (image_bytes()[:3000], "half.png", 422),
    "bomb past Pillow's limit": (png_header_only(40_000, 40_000), "bomb.png", 422),
    "bomb in Pillow's warning range": (png_header_only(10_000, 10_000), "bomb.png", 422),
    "over our pixel limit": (png_header_only(9_000, 5_000), "big.png", 422),
    "empty": (b"", "empty.png", 422),
}


@pytest.mark.parametrize("case", HOSTILE, ids=list(HOSTILE))
def test_hostile_files_are_refused_and_nothing_is_stored(
    app: Flask, author_client: FlaskClient, draft_id: int, case: str
) -> None:
    data, name, status = HOSTILE[case]
    response = upload(author_client, draft_id, data, name=name)
    assert response.status_code == status
    assert response.get_json()["error"]
    assert stored_files(app) == []
    assert media_count(app) == 0


def test_bomb_message_says_what_is_wrong(author_client: FlaskClient, draft_id: int) -> None:
    response = upload(author_client, draft_id, png_header_only(9_000, 5_000))
    assert "9,000 x 5,000 pixels" in response.get_json()["error"]


def test_too_large_is_413_before_decoding(
    tmp_path: Path, template_databases: dict[str, Path]
) -> None:
    app = _make_app(tmp_path, template_databases["demo"], MEDIA_MAX_BYTES=50_000)
    client = app.test_client()
    login(client, AUTHOR)
    article_id = _an_article_of(app, AUTHOR)
    response = upload(client, article_id, noise_png(200, 200))
    assert response.status_code == 413
    assert "50,000 bytes" in response.get_json()["error"]
    assert stored_files(app) == []


def test_an_upload_larger_than_the_form_limit_is_accepted(
    app: Flask, author_client: FlaskClient, draft_id: int
) -> None:
    # The site's form limit is 2 MB; a photo may be more (up to MEDIA_MAX_BYTES).
    big = noise_png(1000, 800)
    assert len(big) > app.config["MAX_CONTENT_LENGTH"]
    assert upload(author_client, draft_id, big).status_code == 201


def _an_article_of(app: Flask, email: str) -> int:
    from blog.models import Article, User

    with app.app_context():
        user = db.session.scalar(select(User).filter_by(email=email))
        return db.session.scalar(select(Article.id).filter_by(author_id=user.id).limit(1))


def test_only_who_may_edit_the_article_may_upload(
    app: Flask,
    make_user,
    draft_id: int,  # noqa: ANN001
) -> None:
    anonymous = app.test_client()
    assert upload(anonymous, draft_id, image_bytes()).status_code == 401
    make_user("other@example.com", "Other")
    other = app.test_client()
    login(other, "other@example.com")
    response = upload(other, draft_id, image_bytes())
    assert response.status_code == 404
    admin = app.test_client()
    login(admin, ADMIN)
    assert upload(admin, draft_id, image_bytes()).status_code == 201


def test_upload_needs_the_csrf_token(tmp_path: Path, template_databases: dict[str, Path]) -> None:
    app = _make_app(tmp_path, template_databases["demo"], WTF_CSRF_ENABLED=True)
    client = app.test_client()
    page = client.get("/login")
    token = parse(page).find("input", {"name": "csrf_token"})["value"]
    client.post("/login", data={"email": AUTHOR, "password": _password(), "csrf_token": token})
    article_id = _an_article_of(app, AUTHOR)
    # Every signed-in page hands htmx the token (base.html); the upload UI reads it there.
    headers = parse(client.get("/account")).body["data-hx-headers-inherited"]
    token = json.loads(headers)["X-CSRFToken"]
    refused = upload(client, article_id, image_bytes())
    assert refused.status_code == 400 and "CSRF" in refused.get_json()["error"]
    assert stored_files(app) == []
    accepted = client.post(
        f"/studio/{article_id}/media", headers={"X-CSRFToken": token}, **multipart(image_bytes())
    )
    assert accepted.status_code == 201


def _password() -> str:
    from .conftest import PASSWORD

    return PASSWORD


def test_uploads_are_rate_limited_per_person(
    tmp_path: Path, template_databases: dict[str, Path]
) -> None:
    app = _make_app(
        tmp_path,
        template_databases["demo"],
        RATELIMIT_ENABLED=True,
        MEDIA_UPLOAD_RATE_LIMIT="2 per minute",
    )
    client = app.test_client()
    login(client, AUTHOR)
    article_id = _an_article_of(app, AUTHOR)
    for _ in range(2):
        assert upload(client, article_id, image_bytes(size=(64, 64))).status_code == 201
    limited = upload(client, article_id, image_bytes(size=(64, 64)))
    assert limited.status_code == 429
    assert "Too many uploads" in limited.get_json()["error"]


def test_the_same_picture_twice_is_one_image(
    app: Flask, author_client: FlaskClient, draft_id: int
) -> None:
    first = upload(author_client, draft_id, image_bytes()).get_json()
    second = upload(author_client, draft_id, image_bytes()).get_json()
    assert first["url"] == second["url"] and first["id"] == second["id"]
    assert media_count(app) == 1


def test_one_picture_uploaded_by_two_authors_is_each_ones_to_keep_or_delete(
    app: Flask,
    author_client: FlaskClient,
    make_article,
    make_user,  # noqa: ANN001
) -> None:
    # Bob was handed Maya's image: it was in neither of his lists, and Maya deleting it from
    # hers took it from under him before he had saved his text.
    make_user("bob@example.com", "Bob")
    mayas_draft = make_article("Maya's", status="draft")
    bobs_draft = make_article("Bob's", status="draft", author_email="bob@example.com")
    bob = app.test_client()
    assert login(bob, "bob@example.com").status_code == 302
    picture = image_bytes(size=(300, 200))
    mayas = upload(author_client, mayas_draft, picture).get_json()
    bobs = upload(bob, bobs_draft, picture).get_json()
    assert bobs["url"] == mayas["url"]  # one set of files

    def listed(client: FlaskClient, path: str) -> list[int]:
        answer = client.get(path, headers={"Accept": "application/json"}).get_json()
        return [item["id"] for item in answer["media"]]

    assert listed(bob, "/studio/media") == [bobs["id"]]
    assert listed(bob, f"/studio/{bobs_draft}/media") == [bobs["id"]]
    gone = author_client.post(
        f"/studio/media/{mayas['id']}/delete", headers={"Accept": "application/json"}
    )
    assert gone.status_code == 200
    assert listed(author_client, "/studio/media") == []
    assert listed(bob, "/studio/media") == [bobs["id"]]
    assert bob.get(bobs["url"]).status_code == 200  # the files stay while Bob has it
    assert bob.get(bobs["url"].replace(".png", "-300.webp")).status_code == 200
    # Maya may not delete Bob's upload; Bob deleting the last one takes the files with it.
    assert author_client.post(f"/studio/media/{bobs['id']}/delete").status_code == 404
    assert bob.post(f"/studio/media/{bobs['id']}/delete").status_code == 302
    assert bob.get(bobs["url"]).status_code == 404 and stored_files(app) == []


def test_every_upload_of_a_used_picture_says_where_it_is_used(
    app: Flask,
    author_client: FlaskClient,
    admin_client: FlaskClient,
    make_article,  # noqa: ANN001
) -> None:
    draft = make_article("Two uploads", status="draft")
    picture = image_bytes(size=(300, 200))
    mayas = upload(author_client, draft, picture).get_json()
    admins = upload(admin_client, draft, picture).get_json()
    make_article("Shows it", body=f"![chart]({mayas['url']})")
    listed = admin_client.get("/studio/media", headers={"Accept": "application/json"}).get_json()
    uses = {item["id"]: [use["title"] for use in item["used_in"]] for item in listed["media"]}
    assert uses[mayas["id"]] == uses[admins["id"]] == ["Shows it"]  # one said "Not used"


def test_uploading_a_picture_again_puts_back_its_missing_files(
    app: Flask, author_client: FlaskClient, draft_id: int
) -> None:
    """The row outlives its files when media were not copied along (copy-db to a new server, a
    folder restored without them): uploading the picture again must make it show again."""
    first = upload(author_client, draft_id, image_bytes(size=(1000, 500))).get_json()
    written = sorted(p.name for p in stored_files(app))
    assert len(written) == 4  # the PNG and its WebP copies at 480, 960 and 1000
    for path in stored_files(app):
        path.unlink()
    assert author_client.get(first["url"]).status_code == 404
    second = upload(author_client, draft_id, image_bytes(size=(1000, 500)))
    assert second.status_code == 201 and second.get_json()["url"] == first["url"]
    assert sorted(p.name for p in stored_files(app)) == written
    assert author_client.get(first["url"]).status_code == 200
    assert media_count(app) == 1


def test_media_list_data_says_where_each_image_is_used(
    app: Flask,
    author_client: FlaskClient,
    make_article,  # noqa: ANN001
) -> None:
    draft = make_article("Unillustrated", status="draft")
    used = upload(author_client, draft, image_bytes(size=(300, 200))).get_json()
    unused = upload(author_client, draft, image_bytes(size=(200, 300))).get_json()
    shown_in = make_article("Illustrated", body=f"Look:\n\n![a chart]({used['url']})\n")
    with app.test_request_context():
        items = {item.id: item for item in media_items(list(db.session.scalars(select(Media))))}
        assert [a.id for a in items[used["id"]].used_in] == [shown_in]
        assert items[unused["id"]].used_in == []
        assert items[used["id"]].uploaded_by == "Maya Chen" or items[used["id"]].uploaded_by
        assert items[used["id"]].thumbnail_url.endswith("-300.webp")


def test_delete_removes_an_unused_image_and_refuses_a_used_one(
    app: Flask,
    author_client: FlaskClient,
    make_article,  # noqa: ANN001
) -> None:
    draft = make_article("Two pictures", status="draft")
    used = upload(author_client, draft, image_bytes(size=(300, 200))).get_json()
    unused = upload(author_client, draft, image_bytes(size=(200, 300))).get_json()
    make_article("Shows one", body=f"![a chart]({used['url']})")

    refused = author_client.post(f"/studio/media/{used['id']}/delete")
    assert refused.status_code == 302
    assert author_client.get(used["url"]).status_code == 200
    with author_client.session_transaction() as session:
        messages = [text for _category, text in session.get("_flashes", [])]
    assert any("Shows one" in text for text in messages)

    deleted = author_client.post(
        f"/studio/media/{unused['id']}/delete", headers={"Accept": "application/json"}
    )
    assert deleted.status_code == 200
    assert author_client.get(unused["url"]).status_code == 404
    assert author_client.get(unused["url"].replace(".png", "-200.webp")).status_code == 404
    assert media_count(app) == 1


def test_where_an_image_is_used_never_names_another_authors_draft(
    app: Flask,
    author_client: FlaskClient,
    make_article,
    make_user,  # noqa: ANN001
) -> None:
    # Bob's unpublished draft shows Maya's image: Maya may learn that it is in use (so she
    # cannot delete it from under him), not what Bob is writing.
    draft = make_article("Maya's draft", status="draft")
    image = upload(author_client, draft, image_bytes(size=(300, 200))).get_json()
    make_user("bob@example.com", "Bob")
    make_article(
        "Bob's secret launch",
        body=f"![teaser]({image['url']})",
        status="draft",
        author_email="bob@example.com",
    )
    listed = author_client.get("/studio/media", headers={"Accept": "application/json"})
    [item] = [m for m in listed.get_json()["media"] if m["id"] == image["id"]]
    assert item["used_in"] == [{"id": None, "title": "a draft by another author"}]
    page = author_client.get("/studio/media").get_data(as_text=True)
    assert "secret launch" not in page and "a draft by another author" in page
    refused = author_client.post(
        f"/studio/media/{image['id']}/delete", headers={"Accept": "application/json"}
    )
    assert refused.status_code == 409
    assert "secret" not in refused.get_json()["error"]
    assert "a draft by another author" in refused.get_json()["error"]


# -- the API ------------------------------------------------------------------------------------


@pytest.fixture
def api_token(app: Flask) -> str:
    from blog.api import create_token
    from blog.models import User

    with app.app_context():
        user = db.session.scalar(select(User).filter_by(email=AUTHOR))
        _token, secret = create_token(user, "drafting tool")
        db.session.commit()
        return secret


def test_api_media_stores_an_image_for_a_draft(
    app: Flask, client: FlaskClient, api_token: str
) -> None:
    response = client.post(
        "/api/media",
        headers={"Authorization": f"Bearer {api_token}"},
        **multipart(image_bytes("JPEG", (800, 600)), "chart.jpg"),
    )
    assert response.status_code == 201
    answer = response.get_json()
    assert set(answer) == {"url", "width", "height"}
    assert (answer["width"], answer["height"]) == (800, 600)
    assert answer["url"].endswith(".jpg")
    assert client.get(answer["url"]).status_code == 200


def test_api_media_needs_a_token_and_an_image(client: FlaskClient, api_token: str) -> None:
    assert client.post("/api/media", **multipart(image_bytes())).status_code == 401
    bearer = {"Authorization": f"Bearer {api_token}"}
    refused = client.post("/api/media", headers=bearer, **multipart(SVG, "x.svg"))
    assert refused.status_code == 415
    assert refused.get_json()["errors"][0]["field"] == "file"


def test_api_media_retry_with_the_same_key_replays_the_answer(
    app: Flask, client: FlaskClient, api_token: str
) -> None:
    headers = {"Authorization": f"Bearer {api_token}", "Idempotency-Key": "upload-1"}
    first = client.post("/api/media", headers=headers, **multipart(image_bytes()))
    again = client.post("/api/media", headers=headers, **multipart(image_bytes()))
    assert again.status_code == 201 and again.get_json() == first.get_json()
    assert again.headers["Idempotent-Replayed"] == "true"
    other = client.post("/api/media", headers=headers, **multipart(image_bytes(size=(90, 90))))
    assert other.status_code == 422
    assert media_count(app) == 1


# -- the article page ---------------------------------------------------------------------------


def test_article_images_render_as_responsive_figures_with_captions(
    app: Flask,
    author_client: FlaskClient,
    make_article,  # noqa: ANN001
) -> None:
    draft = make_article("Scratch", status="draft")
    first = upload(author_client, draft, image_bytes(size=(2000, 1000))).get_json()
    second = upload(author_client, draft, image_bytes(size=(600, 400))).get_json()
    body = (
        f'Intro.\n\n![Queue depth over a day]({first["url"]} "Depth at peak")\n\n'
        f"Text between.\n\n![Latency]({second['url']})\n*p99 latency, before and after*\n\n"
        "![Their logo](https://elsewhere.example/logo.png)\n"
    )
    article_id = make_article("Illustrated queues", body=body)
    with app.app_context():
        from blog.models import Article

        slug = db.session.get(Article, article_id).slug
    response = app.test_client().get(f"/articles/{slug}")
    assert "img-src 'self'" in response.headers["Content-Security-Policy"]
    page = parse(response)
    figures = page.select("article figure, main figure")
    assert len(figures) == 2
    top, lower = (figure.find("img") for figure in figures)
    assert top["src"] == first["url"] and top["alt"] == "Queue depth over a day"
    assert (top["width"], top["height"]) == ("2000", "1000")
    digest = first["url"].removeprefix("/media/").split(".")[0]
    assert top["srcset"] == ", ".join(f"/media/{digest}-{w}.webp {w}w" for w in (480, 960, 1600))
    assert top["sizes"] and top["decoding"] == "async"
    assert top["loading"] == "eager" and lower["loading"] == "lazy"
    assert figures[0].figcaption.get_text() == "Depth at peak"
    assert figures[1].figcaption.get_text() == "p99 latency, before and after"
    # Another site's picture would be blocked by the CSP: it becomes a link to it.
    assert not page.select('img[src^="https://"]')
    assert page.find("a", href="https://elsewhere.example/logo.png").get_text() == "Their logo"
    og = page.find("meta", property="og:image")
    assert og["content"] == f"http://blog.test{first['url']}"
    # Every srcset candidate is really there.
    for candidate in top["srcset"].split(", "):
        assert app.test_client().get(candidate.split()[0]).status_code == 200


def test_the_sanitiser_keeps_only_images_of_this_site() -> None:
    from blog.content import sanitize

    ours = "/media/" + "a" * 64 + ".png"
    cleaned = sanitize(
        f'<img src="{ours}" alt="ok" onerror="alert(1)" loading="lazy">'
        '<img src="https://evil.example/t.gif" alt="tracker">'
        f'<img src="{ours}" srcset="https://evil.example/x.png 480w" alt="mixed">'
        '<img src="/static/../media/x.png" alt="odd">'
    )
    assert "onerror" not in cleaned and "evil.example" not in cleaned
    assert cleaned.count(f'src="{ours}"') == 2
    assert 'src="/static' not in cleaned


def test_an_article_without_images_has_no_og_image(client: FlaskClient, make_article) -> None:  # noqa: ANN001
    make_article("Words only", body="Nothing to see.")
    page = parse(client.get("/articles/words-only"))
    assert page.find("meta", property="og:image") is None


# -- review -------------------------------------------------------------------------------------


def test_review_checks_flag_images_without_alt_unresolved_and_oversized(
    app: Flask,
    author_client: FlaskClient,
    admin_client: FlaskClient,
    make_article,  # noqa: ANN001
) -> None:
    scratch = make_article("Scratch", status="draft")
    fine = upload(author_client, scratch, image_bytes(size=(400, 300))).get_json()["url"]
    heavy = upload(author_client, scratch, noise_png(1000, 800)).get_json()["url"]
    missing = "/media/" + "0" * 64 + ".png"
    body = (
        f"![A fine chart]({fine})\n\n![]({fine})\n\n![Huge photo]({heavy})\n\n"
        f"![Gone]({missing})\n\n![Hotlinked](https://elsewhere.example/a.png)\n"
    )
    draft = make_article("Pictures to review", body=body, status="in_review")
    page = parse(admin_client.get(f"/review/{draft}"))
    item = next(li for li in page.select(".checklist > li") if li.strong.get_text() == "Images")
    assert "check-warn" in item["class"]
    findings = [li.get_text(" ", strip=True) for li in item.select("ul li")]
    assert "4 of 5 need attention" in item.get_text()
    assert any(fine in f and "no alt text" in f for f in findings)
    assert any(heavy in f and "oversized original" in f for f in findings)
    assert any(missing in f and "does not resolve" in f for f in findings)
    assert any("elsewhere.example" in f and "will not load" in f for f in findings)
    # The reviewer sees each image of ours in the rendered draft.
    shown = {img["src"] for img in page.select("img")}
    assert {fine, heavy} <= shown


def test_review_checks_pass_images_with_alt_text(
    app: Flask,
    author_client: FlaskClient,
    admin_client: FlaskClient,
    make_article,  # noqa: ANN001
) -> None:
    scratch = make_article("Scratch", status="draft")
    fine = upload(author_client, scratch, image_bytes(size=(400, 300))).get_json()["url"]
    draft = make_article("One picture", body=f"![A fine chart]({fine})\n", status="in_review")
    page = parse(admin_client.get(f"/review/{draft}"))
    item = next(li for li in page.select(".checklist > li") if li.strong.get_text() == "Images")
    assert "check-ok" in item["class"]


def test_an_animated_gif_keeps_its_frames(author_client: FlaskClient, draft_id: int) -> None:
    frames = [Image.new("RGB", (100, 80), (i * 60, 0, 0)) for i in range(4)]
    out = io.BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    answer = upload(author_client, draft_id, out.getvalue(), name="spin.gif").get_json()
    assert answer["url"].endswith(".gif")
    served = Image.open(io.BytesIO(author_client.get(answer["url"]).data))
    assert served.n_frames == 4


@pytest.mark.skipif(not features.check("avif"), reason="this Pillow cannot read AVIF")
def test_avif_is_accepted_where_pillow_reads_it(author_client: FlaskClient, draft_id: int) -> None:
    answer = upload(author_client, draft_id, image_bytes("AVIF", (300, 200)), "a.avif").get_json()
    assert answer["url"].endswith(".avif")
    assert author_client.get(answer["url"]).mimetype == "image/avif"


def test_media_lists_answer_json_for_scripts(
    app: Flask,
    author_client: FlaskClient,
    admin_client: FlaskClient,
    make_article,  # noqa: ANN001
) -> None:
    draft = make_article("Listed", status="draft")
    mine = upload(author_client, draft, image_bytes(size=(300, 200))).get_json()
    other_draft = make_article("Elsewhere", status="draft", author_email=ADMIN)
    theirs = upload(admin_client, other_draft, image_bytes(size=(200, 300))).get_json()
    wants_json = {"Accept": "application/json"}
    listed = author_client.get(f"/studio/{draft}/media", headers=wants_json).get_json()
    assert [item["url"] for item in listed["media"]] == [mine["url"]]
    assert listed["media"][0]["used_in"] == []
    own = author_client.get("/studio/media", headers=wants_json).get_json()
    assert [item["id"] for item in own["media"]] == [mine["id"]]
    every = admin_client.get("/studio/media", headers=wants_json).get_json()
    assert {item["id"] for item in every["media"]} == {mine["id"], theirs["id"]}
    assert author_client.get(f"/studio/{other_draft}/media", headers=wants_json).status_code == 404


def test_a_storage_that_cannot_be_written_is_a_503_with_a_message(
    tmp_path: Path, template_databases: dict[str, Path]
) -> None:
    from blog.api import create_token
    from blog.models import User

    blocked = tmp_path / "not-a-folder"
    blocked.write_text("")
    app = _make_app(tmp_path, template_databases["demo"], MEDIA_ROOT=str(blocked / "media"))
    author = app.test_client()
    login(author, AUTHOR)
    refused = upload(author, _an_article_of(app, AUTHOR), image_bytes())
    assert refused.status_code == 503 and "try again" in refused.get_json()["error"]
    with app.app_context():
        user = db.session.scalar(select(User).filter_by(email=AUTHOR))
        _token, secret = create_token(user, "drafting tool")
        db.session.commit()
    bearer = {"Authorization": f"Bearer {secret}"}
    answer = app.test_client().post("/api/media", headers=bearer, **multipart(image_bytes()))
    assert answer.status_code == 503 and "try again" in answer.get_json()["error"]
    assert media_count(app) == 0


def test_a_disk_storage_that_cannot_be_read_says_so_when_asked_what_it_holds(
    tmp_path: Path,
) -> None:
    """exists() met an OSError as a traceback (a 500 on uploading a known picture again), where
    put(), get() and delete() say the storage is unavailable (a 503 that asks to try again).
    Root reads every folder, so a name too long for the file system stands in for one it may
    not read."""
    from blog.storage import LocalStorage, StorageUnavailable

    storage = LocalStorage(tmp_path / ("x" * 300))
    with pytest.raises(StorageUnavailable, match="cannot read"):
        storage.exists("ab" + "0" * 62 + ".png")


def test_an_image_nobody_can_see_blocks_its_approval(
    app: Flask,
    client: FlaskClient,
    author_client: FlaskClient,
    admin_client: FlaskClient,
    make_article,  # noqa: ANN001
) -> None:
    """An image's address is its hash, which anyone can work out offline. Approved while it
    answered nothing, the picture would appear on the approved page once uploaded, unseen."""
    from blog.media import process
    from blog.models import Article

    picture = image_bytes(size=(300, 200))
    url = f"/media/{process(picture).key}"
    draft = make_article("Unseen picture", body=f"Text.\n\n![A chart]({url})\n", status="in_review")
    for action, publish_at in (("approve", ""), ("schedule", "2031-06-01T09:00")):
        refused = decide(admin_client, draft, {"action": action, "publish_at": publish_at})
        assert refused.status_code == 422
        message = parse(refused).select_one(".flash").get_text(" ")
        assert url in message and "upload" in message
    with app.app_context():
        article = db.session.get(Article, draft)
        assert article.published_revision_id is None and article.status == "in_review"

    assert upload(author_client, draft, picture).get_json()["url"] == url  # now it can be seen
    approved = decide(admin_client, draft, {"action": "approve"})
    assert approved.status_code == 302
    assert client.get(url).status_code == 200


def _a_letter_as_a_reference(url: str) -> str:
    at = next(i for i, char in enumerate(url) if i > len("/media/") and char in "abcdef")
    return f"{url[:at]}&#x{ord(url[at]):x};{url[at + 1 :]}"


@pytest.mark.parametrize(
    ("spelling", "markdown"),
    [
        ("a character reference", lambda url: f"![A chart]({_a_letter_as_a_reference(url)})"),
        ("&sol; for each slash", lambda url: f"![A chart]({url.replace('/', '&sol;')})"),
        ("backslash-escaped slashes", lambda url: f"![A chart]({url.replace('/', chr(92) + '/')})"),
        (
            "a reference definition",
            lambda url: (
                f"![A chart][c]\n\n[c]: <{url.replace('/media/', '/media' + chr(92) + '/')}>"
            ),
        ),
        ("inside a footnote", lambda url: f"Text.[^1]\n\n[^1]: ![A chart]({url})"),
    ],
)
def test_an_image_a_published_page_shows_is_kept_however_its_address_is_spelled(
    client: FlaskClient,
    author_client: FlaskClient,
    make_article,  # noqa: ANN001
    spelling: str,
    markdown,  # noqa: ANN001
) -> None:
    """Markdown reads `&#x61;` as `a` and `\\/` as `/`: the page shows the image, so it stays."""
    scratch = make_article("Scratch", status="draft")
    image = upload(author_client, scratch, image_bytes(size=(300, 200))).get_json()
    url = image["url"]
    shown = make_article("Shows it", body=markdown(url) + "\n")
    with author_client.application.app_context():
        slug = db.session.get(Article, shown).slug
    page = parse(client.get(f"/articles/{slug}"))
    assert url in {img["src"] for img in page.select("img")}, spelling

    refused = author_client.post(
        f"/studio/media/{image['id']}/delete", headers={"Accept": "application/json"}
    )
    assert refused.status_code == 409 and "Shows it" in refused.get_json()["error"], spelling
    assert client.get(url).status_code == 200


def _first_hash_letter_percent_encoded(url: str, percent: str = "%") -> str:
    return f"{url[:7]}{percent}{ord(url[7]):02X}{url[8:]}"  # url[7]: the hash's first character


@pytest.mark.parametrize(
    ("spell", "requested"),
    [
        (_first_hash_letter_percent_encoded, _first_hash_letter_percent_encoded),
        (lambda url: url.replace("/media/", "/%6Dedia/"), lambda url: url.replace("/m", "/%6D")),
        (  # `&#x25;` is Markdown's `%`: the page links to the percent-encoded address above
            lambda url: _first_hash_letter_percent_encoded(url, "&#x25;"),
            _first_hash_letter_percent_encoded,
        ),
    ],
    ids=["a letter of the hash", "a letter of the folder", "the percent as a reference"],
)
def test_an_image_a_page_links_to_by_a_percent_encoded_address_is_kept(
    client: FlaskClient,
    author_client: FlaskClient,
    make_article,  # noqa: ANN001
    spell,  # noqa: ANN001
    requested,  # noqa: ANN001
) -> None:
    """A browser decodes `%61` to `a` before asking: the link works, so the image it names stays."""
    scratch = make_article("Scratch", status="draft")
    image = upload(author_client, scratch, image_bytes(size=(300, 200))).get_json()
    url = image["url"]
    shown = make_article("Links it", body=f"[The full chart]({spell(url)})\n")
    with author_client.application.app_context():
        slug = db.session.get(Article, shown).slug
    page = parse(client.get(f"/articles/{slug}"))
    [link] = [a["href"] for a in page.select("article a") if a.get_text() == "The full chart"]
    assert link == requested(url) != url
    assert client.get(link).status_code == 200  # the link works

    refused = author_client.post(
        f"/studio/media/{image['id']}/delete", headers={"Accept": "application/json"}
    )
    assert refused.status_code == 409 and "Links it" in refused.get_json()["error"]
    assert client.get(url).status_code == 200


def test_finding_where_images_are_used_reads_no_text_however_many_images(
    app: Flask,
    author_client: FlaskClient,
    make_article,  # noqa: ANN001
) -> None:
    """Reading every text that could show an image made the media page take seconds at scale.

    Each revision's image hashes are stored with it, so where_used looks them up by hash: its
    statements read no text, and there are as many for twelve images as for one.
    """
    from sqlalchemy import event

    from blog.media_views import where_used

    scratch = make_article("Scratch", status="draft")
    urls = [
        upload(author_client, scratch, image_bytes(size=(40 + i, 30))).get_json()["url"]
        for i in range(12)
    ]
    make_article("Shows two", body=f"![a]({urls[0]})\n\n![b]({urls[5]})\n")
    with app.app_context():
        media = db.session.scalars(select(Media).order_by(Media.id)).all()
        engine = db.engine
    statements: list[str] = []

    def record(_conn, _cursor, statement, _params, _context, _many):  # noqa: ANN001, ANN202
        if not statement.startswith("BEGIN"):
            statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        with app.app_context():
            one = where_used(media[:1])
            for_one = len(statements)
            statements.clear()
            every = where_used(media)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert len(statements) == for_one
    assert not [s for s in statements if "body" in s or " LIKE " in s]
    with app.app_context():
        assert [a.title for a in one[media[0].id]] == ["Shows two"]
        used = {m.key: [a.title for a in every[m.id]] for m in media}
    assert {key for key, titles in used.items() if titles} == {
        urls[0].removeprefix("/media/"),
        urls[5].removeprefix("/media/"),
    }


def test_an_image_counts_as_used_by_the_newest_and_the_approved_text_only(
    app: Flask,
    author_client: FlaskClient,
    make_article,  # noqa: ANN001
) -> None:
    """An autosave folded into its revision drops the images it no longer shows, and an image
    only an older revision showed is free to delete; the approved text's images stay used."""
    from blog.articles import Draft, save_draft
    from blog.media_views import where_used
    from blog.models import User

    scratch = make_article("Scratch", status="draft")
    first, second, third = (
        upload(author_client, scratch, image_bytes(size=(50 + i, 30))).get_json() for i in range(3)
    )
    live = make_article("Live", body=f"![approved]({first['url']})\n")

    def save(body: str, session: str) -> None:
        with app.app_context():
            article = db.session.get(Article, live)
            author = db.session.scalar(select(User).filter_by(email=AUTHOR))
            draft = Draft(title="Live", body=body, summary="A summary.", category="Backend")
            save_draft(article, draft, author, editing_session=session, autosave=True)
            db.session.commit()

    def used() -> set[int]:
        with app.app_context():
            found = where_used(list(db.session.scalars(select(Media))))
            return {media_id for media_id, articles in found.items() if articles}

    save(f"![new]({second['url']})\n", "one")
    assert used() == {first["id"], second["id"]}
    save(f"![newer]({third['url']})\n", "one")  # folded into the same autosave
    assert used() == {first["id"], third["id"]}
    save("No pictures now.\n", "two")  # a new revision; the older ones show third and second
    assert used() == {first["id"]}
