"""The shared page cache and HTTP caching: what readers get stays right while pages are reused.

These apps use a real cache (SimpleCache, or files shared by two apps as by two servers); the
rest of the suite runs without one, so its direct database edits need no invalidation.
"""

from __future__ import annotations

import gzip
import os
import secrets
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import brotli
import pytest
from flask import Flask, flash, template_rendered
from flask.testing import FlaskClient
from flask_wtf.csrf import generate_csrf
from sqlalchemy import select

from blog import create_app
from blog.articles import latest_revision, publish
from blog.extensions import db
from blog.models import Article, User

from .conftest import ADMIN, AUTHOR, _config, _make_app, login, parse
from .test_studio import editor_fields

try:
    from compression import zstd  # Python 3.14
except ImportError:  # before it, Flask-Compress brings the backport
    from backports import zstd

SLUG = "postgresql-performance-indexing-strategies-that-actually-work"


@pytest.fixture
def reader(cached_app: Flask) -> FlaskClient:
    """An anonymous visitor."""
    return cached_app.test_client()


@pytest.fixture
def admin(cached_app: Flask) -> FlaskClient:
    client = cached_app.test_client()
    assert login(client, ADMIN).status_code == 302
    return client


@pytest.fixture
def author(cached_app: Flask) -> FlaskClient:
    client = cached_app.test_client()
    assert login(client, AUTHOR).status_code == 302
    return client


@pytest.fixture
def renders(cached_app: Flask) -> Iterator[list[str]]:
    """The names of the templates rendered, to tell a stored page from a fresh one."""
    rendered: list[str] = []

    def record(sender: Flask, template, context) -> None:  # noqa: ANN001
        rendered.append(template.name)

    template_rendered.connect(record, cached_app)
    yield rendered
    template_rendered.disconnect(record, cached_app)


def card_titles(response) -> list[str]:  # noqa: ANN001
    return [a.get_text(strip=True) for a in parse(response).select(".card-title a")]


def approve(admin: FlaskClient, article_id: int, action: str = "approve", **extra: str) -> None:
    """Decide from the review page, with the version and revision the page showed."""
    form = parse(admin.get(f"/review/{article_id}")).select_one("form.decision-form")
    fields = {field["name"]: field.get("value", "") for field in form.select("input[name]")}
    fields.update(action=action, **extra)
    response = admin.post(f"/review/{article_id}/decide", data=fields)
    assert response.status_code == 302


def ai_draft(app: Flask, title: str) -> int:
    """Send an AI draft through the API (it waits in the review queue); return its id."""
    runner = app.test_cli_runner()
    token = runner.invoke(args=["token", "create", AUTHOR]).stdout.strip().splitlines()[0]
    body = {
        "title": title,
        "summary": "A summary.",
        "category": "Backend",
        "tags": ["Redis"],
        "body_markdown": "## Buckets\n\nA token bucket refills at a fixed rate.\n",
        "ai_model": "gpt-test",
    }
    response = app.test_client().post(
        "/api/drafts", json=body, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 201
    return response.json["id"]


def article_id(app: Flask, slug: str) -> int:
    with app.app_context():
        return db.session.scalar(select(Article.id).filter_by(slug=slug))


# -- stored once, served to every anonymous reader ---------------------------------------------


@pytest.mark.parametrize(
    "path",
    ["/", "/?q=postgres", f"/articles/{SLUG}", "/feed.xml", "/sitemap.xml", "/sitemap-1.xml"],
)
def test_a_public_page_is_rendered_once_then_served_as_stored(reader, renders, path):
    first = reader.get(path)
    assert first.status_code == 200 and first.headers["X-Cache"] == "MISS"
    assert renders, "the first request renders"
    renders.clear()
    second = reader.get(path)
    assert second.headers["X-Cache"] == "HIT" and renders == []
    assert second.data == first.data
    assert second.headers["Content-Type"] == first.headers["Content-Type"]
    assert "public" in second.headers["Cache-Control"]
    assert "stale-while-revalidate" in second.headers["Cache-Control"]


def test_the_fragment_the_page_and_a_history_restore_are_kept_apart(reader):
    fragment = {"HX-Request": "true"}
    restore = {"HX-Request": "true", "HX-History-Restore-Request": "true"}
    assert parse(reader.get("/", headers=fragment)).find("html") is None
    page = reader.get("/")
    assert page.headers["X-Cache"] == "MISS" and parse(page).find("html") is not None
    restored = reader.get("/", headers=restore)
    assert restored.headers["X-Cache"] == "MISS" and parse(restored).find("html") is not None
    again = reader.get("/", headers=fragment)
    assert again.headers["X-Cache"] == "HIT" and parse(again).find("html") is None
    vary = {part.strip() for part in page.headers["Vary"].split(",")}
    assert {"HX-Request", "HX-History-Restore-Request", "Cookie", "Accept-Encoding"} <= vary
    # The query string is part of the key.
    assert reader.get("/?q=docker").headers["X-Cache"] == "MISS"
    assert card_titles(reader.get("/?q=docker")) != card_titles(reader.get("/"))


@pytest.mark.parametrize(
    "path",
    [
        f"/articles/{SLUG}?fbclid=IwAR0xyz",
        f"/articles/{SLUG}?utm_source=news&utm_medium=social&gclid=Cj0K",
        f"/articles/{SLUG}?msclkid=1&mc_eid=2",
    ],
)
def test_a_link_with_tracking_parameters_gets_the_stored_page(reader, renders, path):
    # Ad and mail platforms give every click its own value: keyed on, each would render anew.
    plain = reader.get(f"/articles/{SLUG}")
    renders.clear()
    tracked = reader.get(path)
    assert tracked.headers["X-Cache"] == "HIT" and renders == []
    assert tracked.data == plain.data


def test_two_spellings_of_one_name_keep_their_order_in_the_key():
    from blog.pagecache import cache_query

    # "é" sent raw (UTF-8 bytes, latin-1 in the WSGI string) and percent-encoded: one name.
    raw, encoded = "\xc3\xa9=1", "%C3%A9=2"
    assert cache_query(f"{raw}&{encoded}") != cache_query(f"{encoded}&{raw}")
    assert cache_query("a=1&b=2") == cache_query("b=2&a=1")
    assert cache_query("q=x&utm_source=y&fbclid=z") == "q=x"


def test_an_empty_parameter_shares_the_page_without_it(reader):
    # Clearing the search box sends q= : the same list as none, one stored page.
    assert reader.get("/?category=database").headers["X-Cache"] == "MISS"
    assert reader.get("/?q=&category=database").headers["X-Cache"] == "HIT"
    assert reader.get("/?category=database&page=&q=").headers["X-Cache"] == "HIT"
    # But an empty first value hides a later one (request.args reads the first): kept apart.
    assert reader.get("/?q=docker").headers["X-Cache"] == "MISS"
    assert reader.get("/?q=&q=docker").headers["X-Cache"] == "MISS"


def test_the_same_filters_in_another_order_share_a_page_and_other_values_do_not(reader):
    assert reader.get("/?q=postgres&category=database").headers["X-Cache"] == "MISS"
    assert reader.get("/?category=database&q=postgres").headers["X-Cache"] == "HIT"
    assert reader.get("/?utm_campaign=x&category=database&q=postgres").headers["X-Cache"] == "HIT"
    # Only the first value of a parameter counts: the same names in another order differ.
    first, second = reader.get("/?q=docker&q=postgres"), reader.get("/?q=postgres&q=docker")
    assert second.headers["X-Cache"] == "MISS" and card_titles(first) != card_titles(second)


# -- each kind of change turns the cache over ------------------------------------------------


def test_publishing_shows_on_the_list_the_feed_the_sitemap_and_the_article(
    cached_app, reader, admin
):
    draft = ai_draft(cached_app, "Token buckets at the edge")
    for path in ("/", "/feed.xml", "/sitemap.xml", "/articles/token-buckets-at-the-edge"):
        reader.get(path)
    assert "Token buckets at the edge" not in card_titles(reader.get("/"))
    approve(admin, draft)
    assert card_titles(reader.get("/"))[0] == "Token buckets at the edge"
    assert "Token buckets at the edge" in reader.get("/feed.xml").get_data(as_text=True)
    assert "/articles/token-buckets-at-the-edge" in reader.get("/sitemap.xml").get_data(
        as_text=True
    )
    assert reader.get("/articles/token-buckets-at-the-edge").status_code == 200


def test_an_edit_after_approval_shows_once_it_is_approved_again(cached_app, reader, author, admin):
    with cached_app.app_context():
        article = db.session.scalar(
            select(Article).join(User, Article.author_id == User.id).where(User.email == AUTHOR)
        )
        target, slug = article.id, article.slug
    assert "A paragraph added after approval." not in reader.get(f"/articles/{slug}").text
    fields = editor_fields(author.get(f"/studio/{target}/edit"))
    fields["body"] += "\n\nA paragraph added after approval.\n"
    assert author.post(f"/studio/{target}/edit", data=fields).status_code == 302
    # Saved but not reviewed: readers keep the approved text, and the stored page stays good.
    page = reader.get(f"/articles/{slug}")
    assert page.headers["X-Cache"] == "HIT" and "added after approval" not in page.text
    assert author.post(f"/studio/{target}/submit").status_code == 302
    approve(admin, target)
    page = reader.get(f"/articles/{slug}")
    assert page.headers["X-Cache"] == "MISS" and "A paragraph added after approval." in page.text


def test_a_take_down_empties_the_article_the_list_and_the_feed(cached_app, reader, admin):
    title = "PostgreSQL Performance: Indexing Strategies That Actually Work"
    assert reader.get(f"/articles/{SLUG}").status_code == 200
    assert title in card_titles(reader.get("/"))
    assert title in reader.get("/feed.xml").text
    response = admin.post(
        f"/review/{article_id(cached_app, SLUG)}/take-down", data={"reason": "Wrong numbers."}
    )
    assert response.status_code == 302
    assert reader.get(f"/articles/{SLUG}").status_code == 410
    assert title not in card_titles(reader.get("/"))
    assert title not in reader.get("/feed.xml").text
    assert f"/articles/{SLUG}" not in reader.get("/sitemap.xml").text


def test_a_scheduled_article_appears_when_its_time_passes_with_no_request_changing_it(
    cached_app, reader, admin, clock
):
    now = datetime.now(UTC).replace(microsecond=0)
    clock(now)
    draft = ai_draft(cached_app, "Scheduled for later")
    at = now + timedelta(hours=1)
    approve(admin, draft, action="schedule", publish_at=at.strftime("%Y-%m-%dT%H:%M"))
    assert "Scheduled for later" not in card_titles(reader.get("/"))
    assert reader.get("/").headers["X-Cache"] == "HIT"  # stored while it is still hidden
    assert reader.get("/articles/scheduled-for-later").status_code == 404

    clock(at + timedelta(seconds=1))
    assert card_titles(reader.get("/"))[0] == "Scheduled for later"
    assert reader.get("/articles/scheduled-for-later").status_code == 200
    assert "Scheduled for later" in reader.get("/feed.xml").text


def test_a_drafts_new_category_is_not_public_and_leaves_the_cache_alone(
    cached_app, reader, author, renders
):
    def chips() -> list[str]:
        soup = parse(reader.get("/"))
        return [a.contents[0].strip() for a in soup.select("nav[aria-label=Categories] a")]

    assert "Quantum" not in chips()
    fields = editor_fields(author.get("/studio/new"))
    fields.update(title="Qubits for backend people", body="Some text.", category="Quantum")
    assert author.post("/studio/new", data=fields).status_code == 302
    renders.clear()
    assert "Quantum" not in chips()
    assert renders == []  # the draft's category is unreviewed text: no page changed
    with cached_app.app_context():
        article = db.session.scalar(select(Article).filter_by(title="Qubits for backend people"))
        admin = db.session.scalar(select(User).filter_by(email=ADMIN))
        publish(article, latest_revision(article), admin)
        db.session.commit()
    assert "Quantum" in chips()


def test_a_drafts_new_tag_is_not_public_and_leaves_the_cache_alone(reader, author, renders):
    assert reader.get("/?tag=qubits").status_code == 200
    renders.clear()
    fields = editor_fields(author.get("/studio/new"))
    fields.update(title="Qubits for backend people", body="Some text.", tags="Qubits")
    assert author.post("/studio/new", data=fields).status_code == 302
    renders.clear()
    page = reader.get("/?tag=qubits")
    assert renders == [] and page.headers["X-Cache"] == "HIT"
    assert "There is no tag" in parse(page).select_one(".empty-state").get_text()
    fresh = author.get("/?tag=qubits")  # signed in: rendered now, not shared
    assert "There is no tag" in parse(fresh).select_one(".empty-state").get_text()


# -- never shared -------------------------------------------------------------------------------


def test_a_signed_in_page_is_never_stored_nor_served_from_the_cache(reader, author):
    signed_in = author.get("/")  # a cold cache: this must not fill it
    assert parse(signed_in).select_one("form[action='/logout']") is not None
    assert signed_in.headers["Cache-Control"] == "no-store" and "X-Cache" not in signed_in.headers
    anonymous = reader.get("/")
    assert anonymous.headers["X-Cache"] == "MISS"
    assert parse(anonymous).select_one("form[action='/logout']") is None
    assert "csrf_token" not in anonymous.text and "X-CSRFToken" not in anonymous.text
    assert reader.get("/").headers["X-Cache"] == "HIT"  # stored now, for readers only
    again = author.get("/")
    assert "X-Cache" not in again.headers and parse(again).select_one("form[action='/logout']")
    assert author.get(f"/articles/{SLUG}").headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("path", ["/no-such-page", "/articles/no-such-article", "/tags/x/y"])
def test_any_signed_in_page_is_no_store_even_an_error(author, path):
    # Its sign-out form carries a CSRF token: no browser or proxy may keep it.
    page = author.get(path)
    assert page.status_code == 404 and 'name="csrf_token"' in page.text
    assert page.headers["Cache-Control"] == "no-store"


def test_a_remember_cookie_whose_sign_in_ended_is_deleted_and_the_cache_serves_again(
    cached_app, reader
):
    elsewhere = cached_app.test_client()
    login(elsewhere, AUTHOR, remember="1")
    here = cached_app.test_client()
    login(here, AUTHOR, remember="1")
    assert here.post("/account/sign-out-everywhere").status_code == 302
    # The other browser's cookies now sign nobody in: the first page says to drop them...
    first = elsewhere.get("/")
    assert first.headers["Cache-Control"] == "no-store"
    assert elsewhere.get_cookie("remember_token") is None
    # ...and from then on it is an anonymous reader like any other.
    reader.get("/")
    assert elsewhere.get("/").headers["X-Cache"] == "HIT"


def test_a_server_start_turns_the_shared_pages_over(cached_app, reader):
    # A start may follow a restore (README): pages of the replaced database must not outlive it.
    from types import SimpleNamespace

    from blog import gunicorn_conf

    reader.get(f"/articles/{SLUG}")
    assert reader.get(f"/articles/{SLUG}").headers["X-Cache"] == "HIT"
    server = SimpleNamespace(app=SimpleNamespace(wsgi=lambda: cached_app))
    gunicorn_conf.when_ready(server)
    assert reader.get(f"/articles/{SLUG}").headers["X-Cache"] == "MISS"


def test_a_file_asked_for_with_only_a_remember_cookie_sets_no_cookie(cached_app, reader):
    # A public, immutable file must never carry a session: a cache in front could share it.
    remembered = cached_app.test_client()
    login(remembered, AUTHOR, remember="1")
    remembered.delete_cookie("session")  # the browser restarted: the remember cookie is left
    href = parse(reader.get("/")).select_one("link[rel=stylesheet]")["href"]
    with remembered.get(href) as response:
        assert response.status_code == 200 and "Set-Cookie" not in response.headers


def test_another_sites_remember_cookie_leaves_this_sites_session_alone(cached_app):
    # A cookie of the same name set by another app on a parent domain: not ours to act on.
    visitor = cached_app.test_client()
    visitor.set_cookie("remember_token", "1|not-signed-by-this-site")
    for _ in range(2):  # each time: nothing to delete, nothing to set
        assert "Set-Cookie" not in visitor.get("/").headers


def test_a_response_that_embeds_a_csrf_token_is_never_stored(tmp_path, template_databases):
    app = _make_app(tmp_path, template_databases["demo"], CACHE_TYPE="SimpleCache")

    @app.before_request
    def a_form_for_everyone() -> None:  # what a layout with a form for anonymous readers does
        generate_csrf()

    reader = app.test_client()
    # The session gets its token, then Flask-Login marks it not fresh: two cookies, then none.
    reader.get("/")
    reader.get("/")
    for _ in range(2):
        response = reader.get("/", headers={"Accept-Encoding": "gzip"})
        assert "Set-Cookie" not in response.headers  # the token alone keeps it private
        assert response.headers["Cache-Control"] == "no-store"
        assert "X-Cache" not in response.headers
        assert "Content-Encoding" not in response.headers  # BREACH: see compress_response


def test_a_visitor_with_a_flash_message_waiting_gets_their_own_page(tmp_path, template_databases):
    app = _make_app(tmp_path, template_databases["demo"], CACHE_TYPE="SimpleCache")

    @app.get("/flash-me")
    def flash_me() -> str:
        flash("Only for you.", "info")
        return "ok"

    other = app.test_client()
    other.get("/")  # stored
    visitor = app.test_client()
    visitor.get("/flash-me")
    page = visitor.get("/")
    assert "Only for you." in page.text and page.headers["Cache-Control"] == "no-store"
    assert "Only for you." not in other.get("/").text


# -- conditional requests and compression ------------------------------------------------------


@pytest.mark.parametrize("encoding", [None, "gzip", "br"])
def test_a_matching_if_none_match_answers_304(cached_app, reader, admin, encoding):
    headers = {"Accept-Encoding": encoding} if encoding else {}
    first = reader.get("/", headers=headers)
    etag = first.headers["ETag"]
    assert first.headers.get("Content-Encoding") == encoding
    for validator in (etag, f"W/{etag}"):  # W/: a proxy that re-compressed it says so
        again = reader.get("/", headers={**headers, "If-None-Match": validator})
        assert again.status_code == 304 and again.data == b""
        assert again.headers["ETag"] == etag
    if encoding:  # a compressed variant's ETag never validates the plain bytes
        plain = reader.get("/", headers={"Accept-Encoding": "identity", "If-None-Match": etag})
        assert plain.status_code == 200 and plain.headers["ETag"] != etag
    # After a change the old ETag no longer matches.
    admin.post(f"/review/{article_id(cached_app, SLUG)}/take-down", data={"reason": "Gone."})
    changed = reader.get("/", headers={**headers, "If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag


@pytest.mark.parametrize("encoding", [None, "zstd"])
@pytest.mark.parametrize(
    "path", [f"/articles/{SLUG}", "/feed.xml", "/sitemap.xml", "/sitemap-1.xml", "/robots.txt"]
)
def test_the_article_feed_and_sitemap_answer_304_to_their_etag(reader, path, encoding):
    headers = {"Accept-Encoding": encoding} if encoding else {}
    for _ in range(2):  # rendered, then served as stored
        etag = reader.get(path, headers=headers).headers["ETag"]
        again = reader.get(path, headers={**headers, "If-None-Match": etag})
        assert again.status_code == 304 and again.data == b""
        assert again.headers["ETag"] == etag


def test_a_changed_site_setting_turns_the_shared_pages_over(tmp_path, template_databases):
    """A deploy that renames the blog must not keep serving pages with the old name."""
    shared = {"CACHE_TYPE": "FileSystemCache", "CACHE_DIR": str(tmp_path / "shared-cache")}
    (tmp_path / "one").mkdir()
    before = _make_app(tmp_path / "one", template_databases["demo"], **shared)
    url = before.config["SQLALCHEMY_DATABASE_URI"]
    config = _config(tmp_path / "unused", SQLALCHEMY_DATABASE_URI=url, **shared)
    same = create_app(config, instance_path=str(tmp_path / "two"))
    renamed = create_app({**config, "SITE_TITLE": "Renamed Blog"}, instance_path=str(tmp_path))
    assert before.test_client().get("/").headers["X-Cache"] == "MISS"
    assert same.test_client().get("/").headers["X-Cache"] == "HIT"  # the same settings share
    page = renamed.test_client().get("/")
    assert page.headers["X-Cache"] == "MISS" and "Renamed Blog" in page.text
    for app in (before, same, renamed):
        with app.app_context():
            db.engine.dispose()


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/", {}),
        ("/?q=postgres", {"HX-Request": "true"}),
        (f"/articles/{SLUG}", {}),
        ("/feed.xml", {}),
        ("/sitemap.xml", {}),
    ],
)
def test_compressed_responses_decode_to_the_same_bytes(reader, path, headers):
    plain = reader.get(path, headers={**headers, "Accept-Encoding": "identity"})
    assert "Content-Encoding" not in plain.headers
    decoders: dict[str, Callable[[bytes], bytes]] = {
        "gzip": gzip.decompress,
        "br": brotli.decompress,
        "zstd": zstd.decompress,  # what Chrome and Firefox get: Flask-Compress prefers it
    }
    for encoding, decode in decoders.items():
        for _ in range(2):  # rendered, then served from the cache
            packed = reader.get(path, headers={**headers, "Accept-Encoding": encoding})
            assert packed.headers["Content-Encoding"] == encoding
            assert len(packed.data) < len(plain.data)
            assert decode(packed.data) == plain.data
            assert packed.headers["ETag"] != plain.headers["ETag"]


def test_signed_in_pages_are_not_compressed(author):
    """They hold a CSRF token and can echo what was typed: compressing them invites BREACH."""
    response = author.get("/?q=postgres", headers={"Accept-Encoding": "gzip, br"})
    assert response.status_code == 200 and "Content-Encoding" not in response.headers


# -- static files ------------------------------------------------------------------------------


def test_static_urls_carry_the_file_hash_and_are_kept_for_a_year(reader):
    page = parse(reader.get("/"))
    href = page.select_one("link[rel=stylesheet]")["href"]
    assert href.startswith("/static/css/site.css?v=")
    for script in page.select("script[src]"):
        assert "?v=" in script["src"]

    def fetch(url: str, **headers: str) -> tuple[str, str | None, bytes]:
        with reader.get(url, headers=headers) as response:  # a file: close it
            assert response.status_code == 200
            return response.headers["Cache-Control"], response.content_encoding, response.data

    cache_control, encoding, packed = fetch(href, **{"Accept-Encoding": "gzip"})
    assert cache_control == "public, max-age=31536000, immutable" and encoding == "gzip"
    assert gzip.decompress(packed) == fetch(href)[2]
    # Without the hash, or with an old one, a browser must ask again.
    assert fetch("/static/css/site.css")[0] == "no-cache"
    assert fetch("/static/css/site.css?v=0ld")[0] == "no-cache"


def test_files_do_not_vary_on_cookies(reader, author):
    # Vary: Cookie would make a CDN or nginx keep a copy of the same file per visitor's cookie.
    href = parse(reader.get("/")).select_one("link[rel=stylesheet]")["href"]
    for client in (reader, author):
        with client.get(href) as response:
            assert "Cookie" not in response.vary and "Accept-Encoding" in response.vary
    # A page still varies on them: a signed-in visitor gets another one at the same URL.
    assert "Cookie" in reader.get("/").vary


def test_a_first_visit_to_the_list_fetches_only_what_it_shows(reader):
    """The list shows no code, and the icon travels in the page: neither costs a request."""
    home = parse(reader.get("/"))
    fetched = [link["href"] for link in home.select("link[rel~=stylesheet], link[rel~=icon]")]
    assert [url.split("?")[0] for url in fetched if not url.startswith("data:")] == [
        "/static/css/site.css"
    ]
    icon = home.select_one("link[rel~=icon]")["href"]
    assert icon.startswith("data:image/svg+xml,%3Csvg") and "#" not in icon and " " not in icon
    article = parse(reader.get(f"/articles/{SLUG}"))
    assert article.select_one("link[href^='/static/css/highlight.css?v=']")


def test_a_browser_gets_this_releases_files_compressed_once_at_the_highest_quality(reader):
    src = parse(reader.get("/")).select_one("script[src*=htmx]")["src"]
    browser = {"Accept-Encoding": "gzip, deflate, br, zstd"}
    with reader.get(src, headers=browser) as packed:
        assert packed.content_encoding == "br"
        body, etag = packed.data, packed.headers["ETag"]
    static = Path(__file__).parents[1] / "static"
    original = (static / src.split("?")[0].removeprefix("/static/")).read_bytes()
    assert brotli.decompress(body) == original
    assert len(body) < len(brotli.compress(original, quality=4))  # Flask-Compress's own level
    with reader.get(src, headers={**browser, "If-None-Match": etag}) as again:
        assert again.status_code == 304 and not again.data


def test_static_files_carry_nosniff_and_leave_the_document_policies_to_pages(reader):
    page = reader.get("/")
    assert "Content-Security-Policy" in page.headers and "X-Frame-Options" in page.headers
    with reader.get(parse(page).select_one("script[src]")["src"]) as script:
        assert script.headers["X-Content-Type-Options"] == "nosniff"
        assert "Content-Security-Policy" not in script.headers
        assert "X-Frame-Options" not in script.headers


# -- across workers and servers ----------------------------------------------------------------


def _backends() -> list[str]:
    found = ["FileSystemCache"]
    if os.environ.get("TEST_REDIS_URL"):
        found.append("RedisCache")
    return found


@pytest.mark.parametrize("backend", _backends())
def test_a_change_made_through_one_server_turns_over_the_pages_of_another(
    tmp_path, template_databases, backend
):
    shared: dict[str, object] = {"CACHE_TYPE": backend}
    if backend == "FileSystemCache":
        shared["CACHE_DIR"] = str(tmp_path / "shared-cache")
    else:
        shared["CACHE_REDIS_URL"] = os.environ["TEST_REDIS_URL"]
        shared["CACHE_KEY_PREFIX"] = f"test-{secrets.token_hex(4)}:"
    (tmp_path / "one").mkdir()
    one = _make_app(tmp_path / "one", template_databases["demo"], **shared)
    url = one.config["SQLALCHEMY_DATABASE_URI"]
    two = create_app(
        _config(tmp_path / "unused", SQLALCHEMY_DATABASE_URI=url, **shared),
        instance_path=str(tmp_path / "two"),
    )
    reader_one, reader_two = one.test_client(), two.test_client()
    assert reader_one.get(f"/articles/{SLUG}").headers["X-Cache"] == "MISS"
    assert reader_two.get(f"/articles/{SLUG}").headers["X-Cache"] == "HIT"  # shared
    admin = one.test_client()
    login(admin, ADMIN)
    admin.post(f"/review/{article_id(one, SLUG)}/take-down", data={"reason": "Wrong numbers."})
    assert reader_two.get(f"/articles/{SLUG}").status_code == 410
    for app in (one, two):
        with app.app_context():
            db.engine.dispose()
