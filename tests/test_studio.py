"""The studio: permissions, CSRF, the editor, revisions, autosave, diffs, restore and conflicts."""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest
from sqlalchemy import select

from blog.extensions import db
from blog.models import Article, Revision, Status

from .conftest import ADMIN, AUTHOR, _make_app, login, parse


def editor_fields(response) -> dict[str, str]:  # noqa: ANN001
    """Read the editor form's fields as a browser would submit them."""
    form = parse(response).select_one("#editor-form")
    fields = {}
    for element in form.select("input[name], textarea[name]"):
        if element.get("type") == "checkbox":
            if element.has_attr("checked"):
                fields[element["name"]] = element["value"]
        elif element.name == "textarea":
            fields[element["name"]] = element.get_text()
        else:
            fields[element["name"]] = element.get("value", "")
    return fields


def revisions_of(app, article_id: int) -> list[Revision]:  # noqa: ANN001
    with app.app_context():
        rows = db.session.scalars(
            select(Revision).where(Revision.article_id == article_id).order_by(Revision.number)
        ).all()
        for row in rows:
            db.session.expunge(row)
        return list(rows)


def article_row(app, article_id: int) -> Article:  # noqa: ANN001
    with app.app_context():
        article = db.session.get(Article, article_id)
        db.session.expunge(article)
        return article


@pytest.fixture
def own_article(author_client) -> int:
    """A draft written by the demo author through the editor."""
    response = author_client.post(
        "/studio/new",
        data={
            "title": "My draft",
            "summary": "S",
            "category": "Backend",
            "tags": "Python, SQL",
            "body": "First line.\n\nSecond line with words.\n",
        },
    )
    assert response.status_code == 302
    return int(re.search(r"/studio/(\d+)/edit", response.headers["Location"]).group(1))


# -- permissions ------------------------------------------------------------------------------

# Each route about the author's own article, and what its author (or an admin) gets back:
# the status and, for a redirect, exactly where to.
ROUTES = [
    ("GET", "/studio/", 200, None),
    ("GET", "/studio/new", 200, None),
    ("GET", "/studio/{id}/edit", 200, None),
    ("POST", "/studio/{id}/edit", 302, "/studio/{id}/edit"),
    ("POST", "/studio/{id}/autosave", 200, None),
    ("GET", "/studio/{id}/history", 200, None),
    ("GET", "/studio/{id}/diff", 200, None),
    ("POST", "/studio/{id}/revisions/1/restore", 302, "/studio/{id}/edit"),
    ("POST", "/studio/{id}/submit", 302, "/studio/{id}/edit"),
    ("POST", "/studio/{id}/withdraw", 302, "/studio/{id}/edit"),
    ("POST", "/studio/preview", 200, None),
]


@pytest.mark.parametrize(("method", "path", "status", "location"), ROUTES)
@pytest.mark.parametrize("who", ["anonymous", "author", "other", "admin"])
def test_permission_matrix(app, own_article, make_user, method, path, status, location, who):
    client = app.test_client()
    if who == "other":
        make_user("other@example.com", "Other Author")
        login(client, "other@example.com")
    elif who != "anonymous":
        login(client, {"author": AUTHOR, "admin": ADMIN}[who])
    url = path.format(id=own_article)
    data = {"title": "Edited", "body": "Text", "base_revision": "1", "editing_session": "s"}
    response = client.get(url) if method == "GET" else client.post(url, data=data)
    if who == "anonymous" and method == "GET":
        # To the sign-in page, which comes back here afterwards.
        status, location = 302, f"/login?next={quote(url, safe='')}"
    elif who == "anonymous":
        # A form sent without a sign-in: its words handed back there, not dropped in a redirect.
        status, location = 401, None
    elif who == "other" and "{id}" in path:
        # Someone else's article does not exist for them (a 404, never a 403 that reveals it).
        status, location = 404, None
    expected = (status, location and location.format(id=own_article))
    assert (response.status_code, response.headers.get("Location")) == expected, (who, url)


def test_authors_see_only_their_own_articles_and_admins_see_all(app, own_article, make_user):
    other = app.test_client()
    make_user("other@example.com", "Other Author")
    login(other, "other@example.com")
    assert "My draft" not in other.get("/studio/").get_data(as_text=True)
    admin = app.test_client()
    login(admin, ADMIN)
    listing = parse(admin.get("/studio/"))
    assert "My draft" in listing.get_text() and len(listing.select("tbody tr")) == 9


def test_studio_list_filters_as_you_type(author_client, own_article):
    response = author_client.get("/studio/?q=draft", headers={"HX-Request": "true"})
    soup = parse(response)
    assert soup.find("html") is None and soup.select_one("#articles")
    assert [a.get_text() for a in soup.select("tbody td > a:first-child")] == ["My draft"]
    published = parse(author_client.get("/studio/?status=published"))
    assert len(published.select("tbody tr")) == 8


# -- CSRF -------------------------------------------------------------------------------------


@pytest.fixture
def csrf_app(tmp_path, template_databases):
    return _make_app(tmp_path, template_databases["demo"], WTF_CSRF_ENABLED=True)


def _token(client, path: str = "/login") -> str:  # noqa: ANN001
    return parse(client.get(path)).select_one("input[name=csrf_token]")["value"]


def test_forms_without_a_csrf_token_are_refused(csrf_app):
    client = csrf_app.test_client()
    refused = client.post("/login", data={"email": AUTHOR, "password": "x"})
    assert refused.status_code == 400 and "expired" in parse(refused).get_text()
    token = _token(client)
    assert login(client, AUTHOR, csrf_token=token).status_code == 302
    assert client.post("/studio/new", data={"title": "x", "body": "y"}).status_code == 400
    assert client.post("/logout").status_code == 400


@pytest.mark.parametrize("everywhere", [False, True])
def test_a_save_refused_after_signing_out_shows_the_text_it_did_not_save(csrf_app, everywhere):
    # Signed out in another tab (or everywhere): the editor's Save is refused. The answer must
    # say why and hand the words back, not advise a reload or redirect to a sign-in that drops
    # them. Signing out here ends the CSRF token too (a 400); everywhere else leaves it (401).
    client = csrf_app.test_client()
    login(client, AUTHOR, csrf_token=_token(client))
    fields = editor_fields(client.get("/studio/new"))
    if everywhere:
        other = csrf_app.test_client()
        login(other, AUTHOR, csrf_token=_token(other))
        other.post("/account/sign-out-everywhere", data={"csrf_token": _token(other, "/account")})
    else:
        client.post("/logout", data={"csrf_token": fields["csrf_token"]})
    fields.update(title="Long day", body="Paragraph after paragraph. " * 300)
    refused = client.post("/studio/new", data=fields, headers={"Sec-Fetch-Site": "same-origin"})
    assert refused.status_code in (400, 401)
    page = parse(refused)
    assert "signed out" in page.select_one(".error-page").get_text()
    kept = {area["name"]: area.get_text() for area in page.select(".error-page textarea")}
    assert kept["body"] == fields["body"] and kept["title"] == "Long day"
    assert "csrf_token" not in kept and all(a.has_attr("readonly") for a in page("textarea"))
    assert "reload" not in page.select_one(".error-page").get_text()
    assert refused.headers["Cache-Control"] == "no-store"


def test_a_refused_form_from_another_site_is_not_shown_back(csrf_app):
    # A cross-site form lands here without the cookie (SameSite): its words must not appear on
    # this site's own page, under a "you were signed out" that is not true either.
    client = csrf_app.test_client()
    refused = client.post(
        "/studio/new",
        data={"title": "Click here", "body": "Your account is locked: call 555-0100."},
        headers={"Sec-Fetch-Site": "cross-site"},
    )
    text = parse(refused).select_one(".error-page").get_text()
    assert refused.status_code in (400, 401)
    assert "555-0100" not in text and "signed out" not in text


def test_htmx_requests_carry_the_token_in_a_header(csrf_app):
    client = csrf_app.test_client()
    login(client, AUTHOR, csrf_token=_token(client))
    page = parse(client.get("/studio/new"))
    headers = page.body["data-hx-headers-inherited"]
    token = re.search(r'"X-CSRFToken": "([^"]+)"', headers).group(1)
    assert client.post("/studio/preview", data={"body": "# Hi"}).status_code == 400
    ok = client.post("/studio/preview", data={"body": "# Hi"}, headers={"X-CSRFToken": token})
    assert ok.status_code == 200


# -- the editor -------------------------------------------------------------------------------


def test_new_article_is_a_draft_with_revision_one(app, author_client, own_article):
    article = article_row(app, own_article)
    assert article.status == Status.DRAFT and article.slug == "my-draft"
    [revision] = revisions_of(app, own_article)
    assert revision.number == 1 and revision.tags == "Python, SQL"
    fields = editor_fields(author_client.get(f"/studio/{own_article}/edit"))
    assert fields["title"] == "My draft" and fields["base_revision"] == "1"
    assert fields["body"].startswith("First line.")


def test_invalid_input_is_shown_and_nothing_is_lost(author_client, own_article):
    response = author_client.post(
        "/studio/new", data={"title": "", "body": "Precious words", "slug": "Bad Slug!"}
    )
    assert response.status_code == 422
    soup = parse(response)
    assert "A title is required." in soup.select_one("[role=alert]").get_text()
    assert soup.select_one("#body").get_text() == "Precious words"
    taken = author_client.post("/studio/new", data={"title": "T", "body": "B", "slug": "my-draft"})
    assert taken.status_code == 422
    assert "Another article already uses this slug." in parse(taken).get_text()


def test_every_save_is_a_revision_and_unchanged_saves_are_not(app, author_client, own_article):
    fields = editor_fields(author_client.get(f"/studio/{own_article}/edit"))
    fields["body"] += "\nThird line.\n"
    assert author_client.post(f"/studio/{own_article}/edit", data=fields).status_code == 302
    fields = editor_fields(author_client.get(f"/studio/{own_article}/edit"))
    author_client.post(f"/studio/{own_article}/edit", data=fields)
    assert [r.number for r in revisions_of(app, own_article)] == [1, 2]


def test_autosaves_fold_into_one_revision_per_editing_session(app, author_client, own_article):
    fields = editor_fields(author_client.get(f"/studio/{own_article}/edit"))
    for word in ("one", "two", "three"):
        fields["body"] += f" {word}"
        response = author_client.post(
            f"/studio/{own_article}/autosave", data=fields, headers={"HX-Request": "true"}
        )
        assert response.status_code == 200 and "Autosaved at" in response.get_data(as_text=True)
    revisions = revisions_of(app, own_article)
    assert [(r.number, r.kind) for r in revisions] == [(1, "edit"), (2, "autosave")]
    assert revisions[-1].body.endswith("one two three")
    fields["body"] += " four"
    author_client.post(f"/studio/{own_article}/edit", data=fields)  # the explicit save folds in
    revisions = revisions_of(app, own_article)
    assert [(r.number, r.kind) for r in revisions] == [(1, "edit"), (2, "edit")]
    assert revisions[0].body == "First line.\n\nSecond line with words.\n"  # untouched


def test_preview_renders_like_the_public_page(author_client):
    response = author_client.post(
        "/studio/preview", data={"body": "## Hi\n\n<script>x</script>\n\n" + "word " * 401}
    )
    soup = parse(response)
    assert soup.select_one("#reading-time").get_text() == "3 min read"
    assert soup.select_one(".prose h2")["id"] == "sec-hi" and soup.find("script") is None


def test_submit_and_withdraw(app, author_client, own_article):
    assert author_client.post(f"/studio/{own_article}/submit").status_code == 302
    assert article_row(app, own_article).status == Status.IN_REVIEW
    author_client.post(f"/studio/{own_article}/withdraw")
    assert article_row(app, own_article).status == Status.DRAFT
    # Withdrawing again is refused with a message, not an error page.
    response = author_client.post(f"/studio/{own_article}/withdraw", follow_redirects=True)
    assert response.status_code == 200
    assert "Not done" in " ".join(f.get_text() for f in parse(response).select(".flash"))


def test_save_and_submit_in_one_step(app, author_client, own_article):
    fields = editor_fields(author_client.get(f"/studio/{own_article}/edit"))
    fields.update(body="Ready now.", action="submit")
    author_client.post(f"/studio/{own_article}/edit", data=fields)
    assert article_row(app, own_article).status == Status.IN_REVIEW


def test_editing_a_published_article_keeps_the_public_text(app, author_client):
    edit = author_client.get("/studio/1/edit")
    fields = editor_fields(edit)
    slug = parse(edit).select_one("#slug")["value"]
    original = fields["body"]
    fields["body"] = "A completely new text."
    author_client.post("/studio/1/edit", data=fields)
    article = article_row(app, 1)
    assert article.status == Status.DRAFT and article.body == original
    public = author_client.get(f"/articles/{slug}")
    assert public.status_code == 200 and "A completely new text." not in public.get_data(
        as_text=True
    )
    listing = parse(author_client.get("/studio/?status=draft"))
    assert "Draft · published version live" in listing.get_text()


# -- history, diff, restore -------------------------------------------------------------------


def test_history_diff_and_restore(app, author_client, own_article):
    fields = editor_fields(author_client.get(f"/studio/{own_article}/edit"))
    fields["body"] = "First line.\n\nSecond line with more words.\n"
    fields["title"] = "My better draft"
    author_client.post(f"/studio/{own_article}/edit", data=fields)

    history = parse(author_client.get(f"/studio/{own_article}/history"))
    rows = history.select("tbody tr")
    assert len(rows) == 2 and "Maya Okafor" in rows[0].get_text()

    diff = parse(author_client.get(f"/studio/{own_article}/diff?a=1&b=2"))
    assert [i.get_text() for i in diff.select(".diff ins")] == ["more "]
    assert diff.select(".diff del") == []
    assert "My better draft" in diff.select_one(".field-changes").get_text()

    response = author_client.post(f"/studio/{own_article}/revisions/1/restore")
    assert response.status_code == 302
    revisions = revisions_of(app, own_article)
    assert [(r.number, r.kind) for r in revisions] == [(1, "edit"), (2, "edit"), (3, "restore")]
    assert revisions[2].body == revisions[0].body and revisions[2].title == "My draft"


def test_unknown_revision_numbers_are_404(author_client, own_article):
    assert author_client.get(f"/studio/{own_article}/diff?a=1&b=9").status_code == 404
    assert author_client.post(f"/studio/{own_article}/revisions/9/restore").status_code == 404


# -- conflicts --------------------------------------------------------------------------------


def test_a_save_over_a_newer_version_is_a_conflict(app, own_article):
    first, second = app.test_client(), app.test_client()
    login(first, AUTHOR)
    login(second, ADMIN)
    mine = editor_fields(first.get(f"/studio/{own_article}/edit"))
    theirs = editor_fields(second.get(f"/studio/{own_article}/edit"))

    theirs["body"] = "The admin's version."
    assert second.post(f"/studio/{own_article}/edit", data=theirs).status_code == 302

    mine["body"] = "The author's version."
    conflict = first.post(f"/studio/{own_article}/edit", data=mine)
    assert conflict.status_code == 409
    soup = parse(conflict)
    assert "Dennis Atonya" in soup.select_one("[role=alert]").get_text()
    assert soup.select_one("#body").get_text() == "The author's version."
    assert "The admin's version." in soup.select_one(".theirs").get_text()
    assert [r.body for r in revisions_of(app, own_article)][-1] == "The admin's version."

    # Autosave refuses too, and says why.
    refused = first.post(f"/studio/{own_article}/autosave", data=mine)
    assert refused.status_code == 409 and "newer version" in refused.get_data(as_text=True)

    # "Save mine as a new revision" posts the conflict form, based on their revision.
    resolution = {
        el["name"]: el.get("value", el.get_text())
        for el in soup.select("form.form input[name], form.form textarea[name]")
    }
    resolution["body"] = "The author's version, merged with the admin's."
    assert first.post(f"/studio/{own_article}/edit", data=resolution).status_code == 302
    bodies = [r.body for r in revisions_of(app, own_article)]
    assert bodies[-2:] == ["The admin's version.", "The author's version, merged with the admin's."]


def test_own_autosave_is_not_a_conflict(app, author_client, own_article):
    fields = editor_fields(author_client.get(f"/studio/{own_article}/edit"))
    fields["body"] += " typed"
    author_client.post(f"/studio/{own_article}/autosave", data=fields)
    fields["body"] += " and saved"
    assert author_client.post(f"/studio/{own_article}/edit", data=fields).status_code == 302


@pytest.mark.parametrize("q", ["%", "_", "\\"])
def test_studio_filter_treats_like_wildcards_as_text(author_client, own_article, q):
    soup = parse(author_client.get("/studio/", query_string={"q": q}))
    assert soup.select("tbody tr") == []


# -- the editor for long pieces (issue 11) ----------------------------------------------------


def test_editor_puts_title_and_body_first_and_folds_the_settings(author_client, own_article):
    soup = parse(author_client.get(f"/studio/{own_article}/edit"))
    form = soup.select_one("#editor-form")
    names = [el["name"] for el in form.select("input[name]:not([type=hidden]), textarea[name]")]
    assert names[:2] == ["title", "body"]
    settings = form.select_one("details.editor-settings")
    assert settings is not None and not settings.has_attr("open")
    assert {"slug", "summary", "category", "tags", "ai_model"} <= {
        el["name"] for el in settings.select("[name]")
    }


def test_save_state_is_a_machine_readable_time(author_client, own_article):
    soup = parse(author_client.get(f"/studio/{own_article}/edit"))
    time = soup.select_one("#autosave-status time[datetime]")
    assert time is not None and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", time["datetime"])
    assert soup.select_one(".editor-bar #autosave-status") is not None  # in the sticky bar

    fields = editor_fields(author_client.get(f"/studio/{own_article}/edit"))
    fields["body"] += " more"
    saved = author_client.post(f"/studio/{own_article}/autosave", data=fields)
    assert saved.headers["HX-Trigger"] == "saved"  # the checks panel looks again
    time = parse(saved).select_one("[data-saved=yes] time[data-local-time]")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", time["datetime"])


def test_a_new_article_autosaves_before_its_first_save(app, author_client):
    page = parse(author_client.get("/studio/new"))
    form = page.select_one("#editor-form")
    assert form["data-hx-post"] == "/studio/new?autosave=1"
    session = form.select_one("[name=editing_session]")["value"]
    fields = {"editing_session": session, "base_revision": "0", "title": "", "body": "Fir"}

    first = author_client.post("/studio/new?autosave=1", data=fields)
    assert first.status_code == 200
    status = parse(first).select_one("[data-saved=yes]")
    article_id = int(status["data-article-id"])
    assert first.headers["HX-Replace-Url"] == f"/studio/{article_id}/edit"
    assert status["data-autosave-url"] == f"/studio/{article_id}/autosave"
    assert status["data-save-url"] == f"/studio/{article_id}/edit"
    assert article_row(app, article_id).title == "Untitled draft"

    # The page goes on autosaving into that article; the session's revisions fold into one.
    fields["body"] = "First words"
    author_client.post(status["data-autosave-url"], data=fields)
    # A lost answer makes the page post to /studio/new again: the same article, no second one.
    fields["body"] = "First words, and more"
    again = author_client.post("/studio/new?autosave=1", data=fields)
    assert parse(again).select_one("[data-saved=yes]") is not None
    fields.update(title="A real title")
    author_client.post("/studio/new", data=fields)  # the explicit save, without the script
    revisions = revisions_of(app, article_id)
    assert [(r.number, r.kind, r.body) for r in revisions] == [(1, "edit", "First words, and more")]
    assert article_row(app, article_id).title == "A real title"
    with app.app_context():
        titles = db.session.scalars(select(Article.title)).all()
    assert titles.count("A real title") == 1 and "Untitled draft" not in titles


def test_an_explicit_first_save_still_needs_a_title(author_client):
    response = author_client.post("/studio/new", data={"title": "", "body": "Text"})
    assert response.status_code == 422
    assert "A title is required." in parse(response).select_one("#form-errors").get_text()


def test_preview_shows_the_header_readers_will_see(author_client):
    response = author_client.post(
        "/studio/preview",
        data={
            "title": "Pools",
            "summary": "Why sizes matter.",
            "category": "Database",
            "tags": "PostgreSQL, Performance",
            "body": "Text.",
        },
    )
    header = parse(response).select_one(".post-header")
    assert header.select_one(".post-title").get_text() == "Pools"
    assert header.select_one(".post-summary").get_text() == "Why sizes matter."
    assert header.select_one(".eyebrow").get_text() == "Database"
    assert [t.get_text() for t in header.select(".tag")] == ["PostgreSQL", "Performance"]
    assert "1 min read" in header.get_text()


def test_a_live_article_warns_before_the_first_edit(app, author_client):
    soup = parse(author_client.get("/studio/1/edit"))
    warning = soup.select_one("#live-warning")
    assert "Your first change starts a new draft" in warning.get_text()
    assert warning.select_one("button[data-unlock]").get_text() == "Start a new draft"
    fields = editor_fields(author_client.get("/studio/1/edit"))
    fields["body"] += "\nA change."
    author_client.post("/studio/1/edit", data=fields)
    # Once the draft exists, the page says readers still see the published version.
    soup = parse(author_client.get("/studio/1/edit"))
    assert soup.select_one("#live-warning") is None
    assert "Readers see the published version" in soup.select_one("[role=note]").get_text()


def test_the_checks_panel_loads_and_refreshes_after_each_save(author_client, own_article):
    checks = parse(author_client.get(f"/studio/{own_article}/edit")).select_one("#checks")
    assert checks["data-hx-get"] == f"/studio/{own_article}/checks"
    assert checks["data-hx-trigger"] == "load, saved from:body"


def test_a_conflict_with_your_own_other_tab_says_so_and_folds_the_diff(app, own_article):
    client = app.test_client()
    login(client, AUTHOR)
    long_body = "".join(f"Line {n} of a long article.\n" for n in range(200))
    first = editor_fields(client.get(f"/studio/{own_article}/edit"))
    first["body"] = long_body
    client.post(f"/studio/{own_article}/edit", data=first)
    mine = editor_fields(client.get(f"/studio/{own_article}/edit"))  # this tab
    other = editor_fields(client.get(f"/studio/{own_article}/edit"))  # another tab
    other["body"] = long_body.replace("Line 150 of", "Line 150, changed, of")
    client.post(f"/studio/{own_article}/edit", data=other)

    mine["body"] = long_body.replace("Line 20 of", "Line 20, mine, of")
    refused = client.post(f"/studio/{own_article}/autosave", data=mine)
    assert refused.status_code == 409
    assert "You (in another tab or window) saved a newer version" in refused.get_data(as_text=True)
    conflict = parse(client.post(f"/studio/{own_article}/edit", data=mine))
    assert conflict.h1.get_text() == "You saved a newer version in another tab"
    assert "Someone else" not in conflict.get_text()
    rows = conflict.select(".diff tbody tr")
    skipped = [r for r in rows if "diff-skip" in r.get("class", [])]
    assert skipped and len(rows) < 30  # 200 lines, 2 changed: the unchanged ones are folded


def test_the_editor_suggests_no_names_only_another_authors_draft_uses(
    app, author_client, admin_client, make_article, make_user
):
    # Category and tag names a draft creates are its author's unreviewed words: they reach
    # other authors neither on public pages nor through the editor's suggestions.
    make_user("bob@example.com", "Bob")
    make_article(
        "Bob's secret launch",
        category="Project Nightingale",
        tags=["nightingale-launch"],
        status=Status.DRAFT,
        author_email="bob@example.com",
    )
    make_article("Maya's own", category="Maya's corner", tags=["maya-only"], status=Status.DRAFT)
    mine = author_client.get("/studio/new").get_data(as_text=True)
    assert "Nightingale" not in mine and "nightingale-launch" not in mine
    assert "Maya&#39;s corner" in mine and "maya-only" in mine
    assert "Backend" in mine  # a public category
    assert "Nightingale" in admin_client.get("/studio/new").get_data(as_text=True)


@pytest.mark.parametrize("path", ["edit", "autosave"])
def test_a_base_revision_past_the_database_integer_keeps_the_text(author_client, path):
    """An out-of-range base is no base: the save is checked against every revision, not lost."""
    fields = editor_fields(author_client.get("/studio/1/edit"))
    fields.update(body="Words the author typed.", base_revision=str(2**63))
    response = author_client.post(f"/studio/1/{path}", data=fields)
    assert response.status_code == 409  # a conflict with the newest revision, not a 500
    expected = "Not autosaved" if path == "autosave" else "Words the author typed."
    assert expected in response.get_data(as_text=True)


FULL_TABLE = "|" + "a|" * 50 + "\n|" + "-|" * 50 + "\n" + "b\n" * 99  # a table of 5,000 cells
TABLES_PAST_A_LIMIT = {
    # 160,400 cells as GFM reads it: every short row is filled up to the header's width.
    "one table": (
        "|" + "a|" * 400 + "\n|" + "-|" * 400 + "\n" + "b\n" * 400,
        "more than 5,000 cells",
    ),
    # 45,000 characters of tables: 13 s to save, 6.4 MB of preview.
    "in all": ("\n".join([FULL_TABLE] * 100), "more than 10,000 cells in all"),
}


@pytest.mark.parametrize("case", TABLES_PAST_A_LIMIT, ids=list(TABLES_PAST_A_LIMIT))
def test_tables_past_a_cell_limit_are_refused_and_kept(author_client, case):
    body, message = TABLES_PAST_A_LIMIT[case]
    refused = author_client.post("/studio/new", data={"title": "Data", "body": body})
    assert refused.status_code == 422
    page = parse(refused)
    assert message in page.select_one("#body-error").get_text()
    assert page.select_one("#body").get_text() == body


def test_a_tag_without_a_letter_or_digit_is_refused_not_dropped(author_client):
    data = {"title": "Odd tags", "body": "Text.", "tags": "Python, ***, ?"}
    refused = author_client.post("/studio/new", data=data)
    assert refused.status_code == 422
    page = parse(refused)
    assert page.select_one("#tags-error").get_text() == (
        "A tag needs a letter or a digit: “***”, “?”."
    )
    assert page.select_one("#tags")["value"] == "Python, ***, ?"


def test_a_summary_or_tags_too_long_are_refused_and_every_word_is_kept(app, author_client):
    # A 1.9 MB summary went out on every card and search (12-33 s a search once approved); a
    # 2 MB tags field took 2 s to split and slug before anything said no.
    fields = {"title": "Long fields", "body": "Some text.", "category": "Backend"}
    summary = "word " * 400  # 2,000 characters
    refused = author_client.post("/studio/new", data={**fields, "summary": summary})
    assert refused.status_code == 422
    page = parse(refused)
    assert "longer than 1,000 characters" in page.select_one("#summary-error").get_text()
    assert page.select_one("#summary").get_text() == summary.strip()
    tags = ", ".join(f"tag{n}" for n in range(20_000))  # ~170 kB, every one distinct
    refused = author_client.post("/studio/new", data={**fields, "tags": tags})
    assert refused.status_code == 422  # refused as typed, before it is split
    page = parse(refused)
    assert "longer than 2,000 characters" in page.select_one("#tags-error").get_text()
    assert page.select_one("#tags")["value"] == tags
    with app.app_context():
        assert db.session.scalar(select(Article).filter_by(title="Long fields")) is None
