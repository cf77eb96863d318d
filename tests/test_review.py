"""Review: the state machine, races, scheduling, the queue and review pages, the admin area."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest
from sqlalchemy import select

from blog.articles import add_revision, draft_from, latest_revision
from blog.extensions import db
from blog.models import Article, AuditEntry, ReviewEvent, Revision, Status, User
from blog.workflow import TRANSITIONS, TransitionError, transition

from .conftest import ADMIN, AUTHOR, as_read, decide, login, parse

STATES = [s.value for s in Status]


def _users():
    author = db.session.scalar(select(User).filter_by(email=AUTHOR))
    admin = db.session.scalar(select(User).filter_by(email=ADMIN))
    return author, admin


@pytest.fixture
def draft_id(make_article) -> int:
    return make_article("Queue me", body="Some words " * 300, status=Status.DRAFT)


def _set_status(article_id: int, status: str) -> Article:
    article = db.session.get(Article, article_id)
    article.status = status
    db.session.commit()
    return article


@pytest.mark.parametrize("action", sorted(TRANSITIONS))
@pytest.mark.parametrize("state", STATES)
def test_every_transition_is_allowed_or_refused(app, draft_id, action, state):
    sources, target, who = TRANSITIONS[action]
    with app.app_context():
        author, admin = _users()
        article = _set_status(draft_id, state)
        actor = admin if who == "admin" else author
        kwargs = {"comment": "Because.", **as_read(article)}
        if action == "schedule":
            kwargs["publish_at"] = datetime.now(UTC) + timedelta(days=1)
        if state in sources:
            transition(article, action, actor, **kwargs)
            assert db.session.get(Article, draft_id).status == target
            event = db.session.scalars(select(ReviewEvent).filter_by(article_id=draft_id)).all()[-1]
            assert event.action == action and event.actor_id == actor.id
            assert event.revision_id is not None
        else:
            with pytest.raises(TransitionError):
                transition(article, action, actor, **kwargs)
            assert db.session.get(Article, draft_id).status == state


def test_a_decision_is_committed_by_its_caller_with_the_rest_of_its_work(app, draft_id):
    """The domain layer decides; only views and commands commit (one unit of work per request)."""
    with app.app_context():
        author, _admin = _users()
        article = _set_status(draft_id, Status.DRAFT)
        transition(article, "submit", author)
        db.session.rollback()
        assert db.session.get(Article, draft_id).status == Status.DRAFT
        assert db.session.scalars(select(ReviewEvent).filter_by(article_id=draft_id)).all() == []


@pytest.mark.parametrize("action", ["approve", "schedule", "request_changes", "reject"])
def test_authors_cannot_decide(app, draft_id, action):
    with app.app_context():
        author, _admin = _users()
        article = _set_status(draft_id, Status.IN_REVIEW)
        with pytest.raises(TransitionError, match="Only an admin"):
            transition(
                article,
                action,
                author,
                comment="x",
                publish_at=datetime.now(UTC) + timedelta(days=1),
            )


@pytest.mark.parametrize("action", ["request_changes", "reject"])
def test_a_comment_is_required_to_request_changes_or_reject(app, draft_id, action):
    with app.app_context():
        _author, admin = _users()
        article = _set_status(draft_id, Status.IN_REVIEW)
        with pytest.raises(TransitionError, match="say why"):
            transition(article, action, admin, comment="  ", **as_read(article))


def test_two_admins_deciding_at_once_one_wins(app, draft_id, make_user):
    second = make_user("second@example.com", "Second Admin", role="admin")
    with app.app_context():
        _set_status(draft_id, Status.IN_REVIEW)
    barrier = threading.Barrier(2, timeout=30)
    outcomes: dict[str, str] = {}

    def decide_at_once(email: str, action: str) -> None:
        with app.app_context():
            actor = db.session.scalar(select(User).filter_by(email=email))
            article = db.session.get(Article, draft_id)
            read = as_read(article)
            db.session.rollback()  # end the read transaction: it holds SQLite's write lock here
            barrier.wait()
            try:
                transition(article, action, actor, comment="No.", **read)
                db.session.commit()
                outcomes[email] = "won"
            except TransitionError as error:
                outcomes[email] = str(error)

    threads = [
        threading.Thread(target=decide_at_once, args=(ADMIN, "approve")),
        threading.Thread(target=decide_at_once, args=(second.email, "reject")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(o == "won" for o in outcomes.values()) == [False, True]
    loser = next(o for o in outcomes.values() if o != "won")
    assert loser.startswith("Not done:") and "already made a decision" in loser
    with app.app_context():
        decisions = db.session.scalars(
            select(ReviewEvent).filter(
                ReviewEvent.article_id == draft_id, ReviewEvent.action.in_(["approve", "reject"])
            )
        ).all()
        assert len(decisions) == 1


def test_the_loser_of_a_race_is_told_on_the_page(app, draft_id, admin_client, make_user):
    make_user("second@example.com", "Second Admin", role="admin")
    other = app.test_client()
    login(other, "second@example.com")
    with app.app_context():
        _set_status(draft_id, Status.IN_REVIEW)
    mine = parse(admin_client.get(f"/review/{draft_id}"))
    read = {
        name: mine.select_one(f"input[name={name}]")["value"] for name in ("version", "revision")
    }
    decide(other, draft_id, {"action": "reject", "comment": "Off topic."})
    response = decide(admin_client, draft_id, {"action": "approve", **read}, follow_redirects=True)
    flashes = " ".join(f.get_text() for f in parse(response).select(".flash"))
    assert "Second Admin already made a decision" in flashes and "rejected" in flashes


def test_scheduled_publishing_with_a_fixed_clock(app, client, draft_id, clock):
    start = datetime(2030, 1, 1, 12, tzinfo=UTC)
    clock(start)
    with app.app_context():
        _author, admin = _users()
        article = _set_status(draft_id, Status.IN_REVIEW)
        later = start + timedelta(hours=2)
        transition(article, "schedule", admin, publish_at=later, **as_read(article))
        db.session.commit()
        assert db.session.get(Article, draft_id).status == Status.SCHEDULED
    assert client.get("/articles/queue-me").status_code == 404
    assert "Queue me" not in client.get("/").get_data(as_text=True)
    clock(start + timedelta(hours=2, seconds=1))
    assert client.get("/articles/queue-me").status_code == 200
    assert "Queue me" in client.get("/").get_data(as_text=True)


def test_approving_new_text_of_a_scheduled_article_publishes_it_now(
    app, client, admin_client, author_client, make_article
):
    # publish() kept a scheduled date it was not given: "Approve" said "published" and the
    # page stayed 404 until the old date, three days on.
    from .test_studio import editor_fields

    later = datetime.now(UTC) + timedelta(days=3)
    article_id = make_article("On a timer", status=Status.SCHEDULED, published_at=later)
    listing = parse(author_client.get("/studio/"))
    edit = author_client.get(f"/studio/{article_id}/edit")
    fields = {**editor_fields(edit), "body": "Better words, sooner.", "action": "submit"}
    assert author_client.post(f"/studio/{article_id}/edit", data=fields).status_code == 302
    listing = parse(author_client.get("/studio/"))
    row = next(r for r in listing.select("tr, li, article") if "On a timer" in r.get_text())
    assert "goes live" in row.get_text() and "version live" not in row.get_text()
    assert decide(admin_client, article_id, {"action": "approve"}).status_code == 302
    assert "Better words, sooner." in client.get("/articles/on-a-timer").get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Article, article_id).published_at <= datetime.now(UTC)


def test_scheduling_in_the_past_is_refused(app, draft_id):
    with app.app_context():
        _author, admin = _users()
        article = _set_status(draft_id, Status.IN_REVIEW)
        with pytest.raises(TransitionError, match="future"):
            past = datetime(2000, 1, 1, tzinfo=UTC)
            transition(article, "schedule", admin, publish_at=past, **as_read(article))


def test_editing_an_approved_article_needs_a_new_approval(app, client, author_client, admin_client):
    edit = parse(author_client.get("/studio/1/edit"))
    fields = {
        el["name"]: el.get("value", el.get_text())
        for el in edit.select("#editor-form input[name], #editor-form textarea[name]")
        if el.get("type") != "checkbox"
    }
    slug = edit.select_one("#slug")["value"]
    fields.update(body="Rewritten from scratch.", action="submit")
    author_client.post("/studio/1/edit", data=fields)
    assert "Rewritten from scratch." not in client.get(f"/articles/{slug}").get_data(as_text=True)
    queue = parse(admin_client.get("/review/"))
    assert "update to a published article" in queue.get_text()
    review = parse(admin_client.get("/review/1"))
    assert "Changes since the last approved version" in review.get_text()
    decide(admin_client, 1, {"action": "approve"})
    assert "Rewritten from scratch." in client.get(f"/articles/{slug}").get_data(as_text=True)


def test_a_correction_to_a_live_article_is_approved_now_never_scheduled(
    app, client, author_client, admin_client
):
    """Scheduling would replace the live text at once and hide it until then: readers lose it."""
    from .test_studio import editor_fields

    edit = author_client.get("/studio/1/edit")
    fields, slug = editor_fields(edit), parse(edit).select_one("#slug")["value"]
    live = client.get(f"/articles/{slug}").get_data(as_text=True)
    fields.update(body="A correction, for next week.", action="submit")
    author_client.post("/studio/1/edit", data=fields)
    review = parse(admin_client.get("/review/1"))
    assert review.select_one("button[value=approve]") is not None
    assert review.select_one("button[value=schedule]") is None
    assert "a live article's new text is not scheduled" in review.get_text(" ")

    later = (datetime.now(UTC) + timedelta(days=7)).strftime("%Y-%m-%dT%H:%M")
    refused = decide(
        admin_client, 1, {"action": "schedule", "publish_at": later, "timezone": "UTC"}
    )
    assert refused.status_code == 409
    assert "live" in parse(refused).select_one(".flash, .error, [role=alert]").get_text()
    assert client.get(f"/articles/{slug}").get_data(as_text=True) == live
    with app.app_context():
        assert db.session.get(Article, 1).status == Status.IN_REVIEW
        with pytest.raises(TransitionError, match="live"):
            article = db.session.get(Article, 1)
            transition(
                article,
                "schedule",
                _users()[1],
                publish_at=datetime.now(UTC) + timedelta(days=7),
                **as_read(article),
            )


# -- pages ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/review/", "/review/1", "/review/users", "/review/tokens", "/review/audit"]
)
def test_admin_pages_are_403_for_authors_and_need_sign_in(client, author_client, path):
    assert author_client.get(path).status_code == 403
    response = client.get(path)
    assert (response.status_code, response.headers["Location"]) == (
        302,
        f"/login?next={quote(path, safe='')}",
    )


def test_decisions_are_403_for_authors(author_client, draft_id):
    response = decide(author_client, draft_id, {"action": "approve"})
    assert response.status_code == 403


def test_queue_lists_waiting_drafts_oldest_first(app, admin_client, make_article):
    first = make_article("First in", body="```python\ndef broken(:\n```\n", status=Status.DRAFT)
    second = make_article("Second in", summary="", status=Status.DRAFT)
    with app.app_context():
        author, _admin = _users()
        for article_id in (first, second):
            transition(db.session.get(Article, article_id), "submit", author)
        db.session.commit()
    soup = parse(admin_client.get("/review/"))
    rows = soup.select("#queue tbody tr")
    assert [r.select_one("a").get_text() for r in rows] == ["First in", "Second in"]
    assert "Maya Okafor" in rows[0].get_text() and "test-model" in rows[0].get_text()
    assert "Code blocks" in rows[0].get_text()
    assert "Summary, category, tags" in rows[1].get_text()
    fragment = parse(admin_client.get("/review/?q=second", headers={"HX-Request": "true"}))
    assert [a.get_text() for a in fragment.select("tbody a")] == ["Second in"]


def test_review_page_shows_checks_and_buttons(app, admin_client, make_article):
    body = (
        "## Intro\n\nSee [the guide](/articles/no-such-slug) and "
        "[Docker](/articles/docker-to-kubernetes-a-practical-path-for-backend-engineers).\n\n"
        '```json\n{"a": }\n```\n\n```yaml\nkey: [1, 2\n```\n\n```python\nx = 1\n```\n'
    )
    article_id = make_article("Checks", body=body, tags=[], status=Status.IN_REVIEW)
    soup = parse(admin_client.get(f"/review/{article_id}"))
    checks = {li.strong.get_text(): li for li in soup.select(".checklist > li")}
    assert "check-warn" in checks["Code blocks"]["class"]
    assert "2 of 3 do not parse" in checks["Code blocks"].get_text()
    links = checks["Links into this site"]
    assert "/articles/no-such-slug would be a 404" in links.get_text()
    assert "docker-to-kubernetes" not in links.get_text()
    assert "Missing: tags" in checks["Summary, category, tags"].get_text()
    buttons = [b.get_text() for b in soup.select(".decision-form button")]
    assert buttons[:3] == ["Approve", "Request changes", "Reject"]


def test_near_duplicate_is_flagged(app, admin_client, make_article):
    from blog.demo import ARTICLES
    from blog.frontmatter import parse as parse_front_matter

    document = parse_front_matter((ARTICLES / "postgresql-indexing.md").read_text())
    article_id = make_article(
        "PostgreSQL Performance: Indexing Strategies Again",
        summary=document.meta["summary"],
        body=document.body,
        status=Status.IN_REVIEW,
    )
    soup = parse(admin_client.get(f"/review/{article_id}"))
    check = next(li for li in soup.select(".checklist > li") if "Near-duplicates" in li.get_text())
    assert "check-warn" in check["class"]
    assert check.select_one("a")["href"] == (
        "/articles/postgresql-performance-indexing-strategies-that-actually-work"
    )


def test_request_changes_reaches_the_author(app, admin_client, author_client, draft_id):
    with app.app_context():
        _set_status(draft_id, Status.IN_REVIEW)
    refused = decide(
        admin_client,
        draft_id,
        {"action": "request_changes", "comment": ""},
        follow_redirects=True,
    )
    assert "say why" in refused.get_data(as_text=True)
    decide(
        admin_client,
        draft_id,
        {"action": "request_changes", "comment": "Cite the benchmark."},
    )
    editor = parse(author_client.get(f"/studio/{draft_id}/edit"))
    callout = editor.select_one(".callout")
    assert "Dennis Atonya asked for changes" in callout.get_text()
    assert "Cite the benchmark." in callout.get_text()
    assert author_client.post(f"/studio/{draft_id}/submit").status_code == 302
    with app.app_context():
        assert db.session.get(Article, draft_id).status == Status.IN_REVIEW


def test_comment_without_deciding(app, admin_client, draft_id):
    decide(admin_client, draft_id, {"action": "comment", "comment": "Nice."})
    with app.app_context():
        event = db.session.scalars(select(ReviewEvent).filter_by(article_id=draft_id)).all()[-1]
        assert (event.action, event.comment) == ("comment", "Nice.")
        assert db.session.get(Article, draft_id).status == Status.DRAFT


def test_schedule_from_the_review_page(app, admin_client, draft_id):
    with app.app_context():
        _set_status(draft_id, Status.IN_REVIEW)
    when = (datetime.now(UTC) + timedelta(days=3)).strftime("%Y-%m-%dT%H:%M")
    response = decide(
        admin_client,
        draft_id,
        {"action": "schedule", "publish_at": when},
        follow_redirects=True,
    )
    assert "it will be published on" in response.get_data(as_text=True)
    bad = decide(
        admin_client,
        draft_id,
        {"action": "schedule", "publish_at": "soon"},
        follow_redirects=True,
    )
    assert bad.status_code == 422


def test_a_refused_decision_points_at_its_field_and_keeps_what_was_typed(
    app, admin_client, draft_id
):
    # Said at the top in the colours of "Comment added", with the date just typed emptied.
    with app.app_context():
        _set_status(draft_id, Status.IN_REVIEW)
    no_reason = decide(admin_client, draft_id, {"action": "request_changes", "comment": "  "})
    assert no_reason.status_code == 422
    page = parse(no_reason)
    comment = page.select_one("#comment")
    assert comment["aria-invalid"] == "true" and comment.has_attr("autofocus")
    assert "say why" in page.select_one(f"#{comment['aria-describedby']}").get_text()
    assert not page.select(".flash")  # said once, by the field
    past = decide(
        admin_client,
        draft_id,
        {"action": "schedule", "publish_at": "2020-01-01T09:00", "timezone": "UTC"},
    )
    assert past.status_code == 422
    page = parse(past)
    when = page.select_one("#publish_at")
    assert when["value"] == "2020-01-01T09:00" and when["aria-invalid"] == "true"
    assert when.has_attr("autofocus") and not page.select_one("#comment").has_attr("autofocus")
    assert "must be in the future" in page.select_one(f"#{when['aria-describedby']}").get_text()
    unreadable = decide(admin_client, draft_id, {"action": "schedule", "publish_at": "soon"})
    assert parse(unreadable).select_one("#publish_at")["value"] == "soon"
    with app.app_context():
        assert db.session.get(Article, draft_id).status == Status.IN_REVIEW


def test_an_error_message_looks_and_reads_as_one(admin_client, draft_id):
    refused = decide(admin_client, draft_id, {"action": "dance"})
    assert refused.status_code == 422
    (message,) = parse(refused).select(".flash")
    assert "flash-error" in message["class"] and message["role"] == "alert"
    assert message.get_text() == "Choose one of the decisions."
    said = decide(admin_client, draft_id, {"action": "comment", "comment": "Fine."})
    (message,) = parse(admin_client.get(said.headers["Location"])).select(".flash")
    assert "flash-info" in message["class"] and not message.has_attr("role")


def test_a_time_scheduled_in_utc_is_said_once(app, admin_client, draft_id):
    with app.app_context():
        _set_status(draft_id, Status.IN_REVIEW)
    when = datetime.now(UTC) + timedelta(days=3)
    response = decide(
        admin_client,
        draft_id,
        {"action": "schedule", "publish_at": f"{when:%Y-%m-%dT%H:%M}", "timezone": "UTC"},
        follow_redirects=True,
    )
    said = parse(response).select_one(".flash").get_text()
    assert said == f"Approved; it will be published on {when:%d %b %Y at %H:%M} (UTC)."


def test_users_admin(app, admin_client, author_client):
    response = admin_client.post(
        "/review/users",
        data={
            "op": "create",
            "email": "new@example.com",
            "name": "New Person",
            "role": "author",
            "password": "long enough",
        },
        follow_redirects=True,
    )
    assert "Created author new@example.com" in response.get_data(as_text=True)
    with app.app_context():
        author = db.session.scalar(select(User).filter_by(email=AUTHOR))
        author_id = author.id
    admin_client.post("/review/users", data={"op": "deactivate", "user_id": author_id})
    assert author_client.get("/studio/").status_code == 302  # signed out at once
    admin_client.post("/review/users", data={"op": "activate", "user_id": author_id})
    admin_client.post("/review/users", data={"op": "role", "user_id": author_id, "role": "admin"})
    with app.app_context():
        assert db.session.get(User, author_id).is_admin


def test_tokens_admin(app, admin_client):
    with app.app_context():
        author, _admin = _users()
        author_id = author.id
    page = parse(
        admin_client.post(
            "/review/tokens", data={"op": "create", "user_id": author_id, "name": "ci"}
        )
    )
    secret = page.select_one("#new-token").get_text()
    assert secret.startswith("tbk_")
    response = admin_client.post(
        "/api/drafts",
        json={"title": "t", "body_markdown": "b"},
        headers={"Authorization": f"Bearer {secret}"},
    )
    assert response.status_code == 201
    listing = parse(admin_client.get("/review/tokens"))
    assert "never" not in listing.select_one("tbody tr").get_text()  # last use is shown
    token_id = listing.select_one("input[name=token_id]")["value"]
    admin_client.post("/review/tokens", data={"op": "revoke", "token_id": token_id})
    response = admin_client.post(
        "/api/drafts",
        json={"title": "t", "body_markdown": "b"},
        headers={"Authorization": f"Bearer {secret}"},
    )
    assert response.status_code == 401


def test_audit_log_records_decisions_sign_ins_and_token_use(app, admin_client, draft_id):
    with app.app_context():
        _set_status(draft_id, Status.IN_REVIEW)
    decide(admin_client, draft_id, {"action": "approve"})
    soup = parse(admin_client.get("/review/audit"))
    actions = [row.select("td")[2].get_text() for row in soup.select("tbody tr")]
    assert "approve" in actions and "sign in" in actions
    with app.app_context():
        assert db.session.scalar(select(AuditEntry).filter_by(action="approve")).actor_id


@pytest.mark.parametrize("q", ["%", "_"])
def test_queue_filter_treats_like_wildcards_as_text(app, admin_client, draft_id, q):
    with app.app_context():
        _set_status(draft_id, Status.IN_REVIEW)
    assert "Queue me" in admin_client.get("/review/").get_data(as_text=True)
    soup = parse(admin_client.get("/review/", query_string={"q": q}))
    assert soup.select("#queue tbody tr") == []


def test_only_the_workflow_sets_an_articles_status():
    """Every status change goes through blog/workflow.py, where the states' rules live."""
    import ast
    from pathlib import Path

    import blog

    offenders = []
    for path in Path(blog.__file__).parent.rglob("*.py"):
        if path.name == "workflow.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets = node.targets if isinstance(node, ast.Assign) else []
            for target in targets:
                sets_status = isinstance(target, ast.Attribute) and target.attr == "status"
                if sets_status and "Status." in ast.unparse(node.value):
                    offenders.append(f"{path.name}:{node.lineno}")
    assert offenders == []


# -- the review loop (issue 11) ----------------------------------------------------------------


FIRST_BODY = "\n\n".join(f"Paragraph {i}: " + "first words " * 15 for i in range(20))


def _in_review(app, make_article, title: str = "Loop me", body: str = FIRST_BODY) -> int:
    """Make an article the author submitted (revision 1, sealed, in review)."""
    article_id = make_article(title, body=body, status=Status.DRAFT, tags=["python"])
    with app.app_context():
        author = db.session.scalar(select(User).filter_by(email=AUTHOR))
        transition(db.session.get(Article, article_id), "submit", author)
        db.session.commit()
    return article_id


def _author_saves(author_client, article_id: int, body: str) -> None:
    """Save the editor's form as the author does, with a new body."""
    edit = parse(author_client.get(f"/studio/{article_id}/edit"))
    fields = {
        el["name"]: el.get("value", el.get_text())
        for el in edit.select("#editor-form input[name], #editor-form textarea[name]")
        if el.get("type") != "checkbox"
    }
    fields["body"] = body
    assert author_client.post(f"/studio/{article_id}/edit", data=fields).status_code == 302


@pytest.mark.parametrize(
    "sent",
    [{}, {"revision": "abc", "version": "abc"}, {"revision": "1"}, {"version": "2"}],
    ids=["neither", "not-numbers", "no-version", "no-revision"],
)
@pytest.mark.parametrize("action", ["approve", "schedule", "request_changes", "reject"])
def test_a_decision_that_does_not_say_what_was_read_is_refused(
    app, admin_client, author_client, make_article, action, sent
):
    # Without the form's revision and version the stale-text check was skipped: an approval
    # sent by hand published text the author saved after the admin read the page.
    article_id = _in_review(app, make_article, title="Read first")
    _author_saves(author_client, article_id, "Words the admin never read. " * 40)
    later = (datetime.now(UTC) + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    data = {"action": action, "comment": "Because.", "publish_at": later, **sent}
    refused = admin_client.post(f"/review/{article_id}/decide", data=data)
    assert refused.status_code == 409
    message = parse(refused).select_one(".flash-error").get_text()
    assert "did not say which revision you read" in message
    with app.app_context():
        article = db.session.get(Article, article_id)
        assert article.status == Status.IN_REVIEW and article.published_revision_id is None
    assert app.test_client().get("/articles/read-first").status_code == 404


def test_the_domain_refuses_an_approval_that_does_not_say_what_was_read(app, make_article):
    article_id = _in_review(app, make_article, title="Read first")
    with app.app_context():
        _author, admin = _users()
        article = db.session.get(Article, article_id)
        with pytest.raises(TransitionError, match="did not say which revision"):
            transition(article, "approve", admin)
        with pytest.raises(TransitionError, match="did not say which revision"):
            transition(article, "approve", admin, revision_number=1)


def test_a_new_address_while_in_review_refuses_a_decision_on_the_old_one(
    app, client, admin_client, author_client, make_article
):
    # A slug-only save changed the address readers would get without a revision or a version
    # bump ("No changes to save"): the admin's approval published it under a name never shown.
    from .test_studio import editor_fields

    article_id = _in_review(app, make_article, title="Read first")
    page = parse(admin_client.get(f"/review/{article_id}"))
    assert "/articles/read-first" in page.select_one(".review-address").get_text()
    read = {
        name: page.select_one(f"input[name={name}]")["value"] for name in ("version", "revision")
    }
    fields = editor_fields(author_client.get(f"/studio/{article_id}/edit"))
    saved = author_client.post(
        f"/studio/{article_id}/edit", data={**fields, "slug": "this-vendor-is-a-scam"}
    )
    assert "No changes" not in parse(author_client.get(saved.headers["Location"])).get_text()
    refused = admin_client.post(f"/review/{article_id}/decide", data={"action": "approve", **read})
    assert refused.status_code == 409
    message = parse(refused).select_one(".flash-error").get_text()
    assert "/articles/this-vendor-is-a-scam" in message and "read it again" in message
    page = parse(refused)
    assert "/articles/this-vendor-is-a-scam" in page.select_one(".review-address").get_text()
    assert "/articles/read-first → /articles/this-vendor-is-a-scam" in page.get_text()  # history
    assert client.get("/articles/this-vendor-is-a-scam").status_code == 404
    assert decide(admin_client, article_id, {"action": "approve"}).status_code == 302
    assert client.get("/articles/this-vendor-is-a-scam").status_code == 200


def test_an_article_taken_down_keeps_its_address(
    app, client, admin_client, author_client, make_article
):
    from .test_studio import editor_fields

    article_id = make_article("Was live")
    taken = admin_client.post(f"/review/{article_id}/take-down", data={"reason": "Wrong claim."})
    assert taken.status_code == 302
    edit = author_client.get(f"/studio/{article_id}/edit")
    assert parse(edit).select_one("#slug").has_attr("readonly")
    fields = {**editor_fields(edit), "slug": "somewhere-else"}
    author_client.post(f"/studio/{article_id}/edit", data=fields)
    author_client.post(f"/studio/{article_id}/autosave", data=fields)
    with app.app_context():
        assert db.session.get(Article, article_id).slug == "was-live"
    assert client.get("/articles/was-live").status_code == 410


def test_a_comment_survives_an_edit_made_while_the_reviewer_read(
    app, admin_client, author_client, make_article
):
    article_id = _in_review(app, make_article)
    page = parse(admin_client.get(f"/review/{article_id}"))
    read = page.select_one(".decision-form input[name=revision]")["value"]
    _author_saves(author_client, article_id, "Second words, rewritten while in review. " * 40)
    long_comment = "Please cite the benchmark and explain the second table. " * 20
    refused = decide(
        admin_client,
        article_id,
        {"action": "request_changes", "comment": long_comment, "revision": read},
    )
    assert refused.status_code == 409
    soup = parse(refused)
    assert soup.select_one(".decision-form textarea[name=comment]").get_text() == long_comment
    notice = soup.select_one("#changed-under-you")
    assert "You read revision 1" in notice.get_text()
    assert "rewritten while in review" in notice.select_one("table.diff").get_text()
    assert "the text changed since you opened it" in soup.select_one(".flash-error").get_text()
    newest = soup.select_one(".decision-form input[name=revision]")["value"]
    assert newest == "2"
    # One click decides on the new text, with the comment as typed.
    decided = decide(
        admin_client,
        article_id,
        {
            "action": "request_changes",
            "comment": long_comment,
            "revision": newest,
            "version": soup.select_one(".decision-form input[name=version]")["value"],
        },
    )
    assert decided.status_code == 302
    with app.app_context():
        assert db.session.get(Article, article_id).status == Status.CHANGES_REQUESTED
        event = db.session.scalars(select(ReviewEvent).filter_by(article_id=article_id)).all()[-1]
        assert (event.action, event.comment, event.revision.number) == (
            "request_changes",
            long_comment.strip(),
            2,
        )


def test_a_refused_decision_keeps_the_comment_whatever_the_reason(app, admin_client, make_article):
    article_id = _in_review(app, make_article)
    response = decide(
        admin_client,
        article_id,
        {"action": "schedule", "publish_at": "soon", "comment": "Keep me."},
    )
    assert response.status_code == 422
    assert parse(response).select_one("#comment").get_text() == "Keep me."


def test_both_sides_see_edits_made_in_review(app, admin_client, author_client, make_article):
    article_id = _in_review(app, make_article)
    panel = parse(author_client.get(f"/studio/{article_id}/checks"))
    assert "In review: revision 1 is waiting" in panel.select_one(".review-notice").get_text()
    _author_saves(author_client, article_id, "Edited after submitting. " * 60)
    panel = parse(author_client.get(f"/studio/{article_id}/checks"))
    assert "revision 2 has been saved since" in panel.select_one(".review-notice").get_text()
    review = parse(admin_client.get(f"/review/{article_id}"))
    notice = review.select_one(".edited-notice").get_text(" ", strip=True)
    assert (
        "Maya" in notice
        and "newer revision (2)" in notice
        and "after submitting revision 1" in notice
    )
    current = review.select_one(".diff-tabs [aria-current]")
    assert current.get_text().startswith("Since submitted (revision 1)")


def test_two_diffs_from_the_same_revision_are_one_tab(
    app, admin_client, author_client, make_article
):
    # An AI draft submitted as it came, then edited: "since submitted" and "since the AI's
    # original" are both revision 1, and two tabs with the same diff read as a mistake.
    article_id = make_article("Loop me", body=FIRST_BODY, status=Status.DRAFT, kind="ai_original")
    with app.app_context():
        author = db.session.scalar(select(User).filter_by(email=AUTHOR))
        transition(db.session.get(Article, article_id), "submit", author)
        db.session.commit()
    _author_saves(author_client, article_id, FIRST_BODY + " One more word.")
    review = parse(admin_client.get(f"/review/{article_id}"))
    tabs = [tab.get_text() for tab in review.select(".diff-tabs a")]
    assert tabs == ["Since submitted, the AI's original (revision 1)"]
    stats = review.select_one(".diff-stats").get_text(" ", strip=True)
    assert stats.startswith("+3 words −0 words"), stats
    notice = review.select_one(".edited-notice").get_text(" ", strip=True)
    assert "saved a newer revision (2) under a minute ago," in notice  # not "0 min ago"
    for wanted in ("original", "submitted"):  # either address still shows that diff
        page = parse(admin_client.get(f"/review/{article_id}?diff={wanted}"))
        assert page.select_one(".diff-tabs [aria-current]").get_text() == tabs[0]


def test_one_word_is_one_word(app, admin_client, author_client, make_article):
    article_id = _in_review(app, make_article)
    _author_saves(author_client, article_id, FIRST_BODY + " Plus.")
    stats = parse(admin_client.get(f"/review/{article_id}")).select_one(".diff-stats")
    assert stats.get_text(" ", strip=True).startswith("+1 word −0 words")


def test_the_studio_checks_panel_is_the_reviewers_checks(
    app, author_client, admin_client, make_article, make_user
):
    body = "See [this](/articles/no-such-slug).\n\n```python\ndef (:\n```\n"
    article_id = make_article("Dead link", body=body, status=Status.DRAFT)
    response = author_client.get(f"/studio/{article_id}/checks")
    assert response.status_code == 200 and "<html" not in response.get_data(as_text=True)
    checks = {li.strong.get_text(): li for li in parse(response).select(".checklist > li")}
    assert "/articles/no-such-slug would be a 404" in checks["Links into this site"].get_text()
    assert "check-warn" in checks["Code blocks"]["class"]
    assert parse(response).select_one(".review-notice") is None  # a draft: no review notice
    make_user("other@example.com", "Other Author")
    other = app.test_client()
    login(other, "other@example.com")
    assert other.get(f"/studio/{article_id}/checks").status_code == 404


def test_the_decision_form_shows_only_review_decisions(app, admin_client, make_article):
    draft_id = make_article("Just a draft", status=Status.DRAFT)
    page = parse(admin_client.get(f"/review/{draft_id}"))
    assert page.select_one(".decision-form") is None
    assert "not waiting for a decision" in page.select_one(".review-side").get_text()
    waiting = parse(admin_client.get(f"/review/{_in_review(app, make_article)}"))
    buttons = [b.get_text() for b in waiting.select(".decision-form button")]
    assert buttons == ["Approve", "Request changes", "Reject", "Approve and schedule"]


def test_an_admin_fixes_and_approves_in_place(app, admin_client, make_article, client):
    article_id = _in_review(app, make_article, body="A typo: teh cache. " * 100)
    page = parse(admin_client.get(f"/review/{article_id}"))
    form = page.select_one("#edit-in-place form")
    fields = {el["name"]: el.get("value", el.get_text()) for el in form.select("[name]")}
    fields.update(body=fields["body"].replace("teh", "the"), action="approve")
    response = admin_client.post(form["action"], data=fields)
    assert response.status_code == 302 and response.headers["Location"] == "/review/"
    with app.app_context():
        article = db.session.get(Article, article_id)
        assert article.status == Status.PUBLISHED
        published = db.session.get(Revision, article.published_revision_id)
        assert (published.number, published.created_by.email) == (2, ADMIN)
        assert "teh" not in client.get(f"/articles/{article.slug}").get_data(as_text=True)


def test_an_edit_in_place_over_a_newer_save_keeps_the_admins_text(
    app, admin_client, author_client, make_article
):
    article_id = _in_review(app, make_article)
    page = parse(admin_client.get(f"/review/{article_id}"))
    form = page.select_one("#edit-in-place form")
    fields = {el["name"]: el.get("value", el.get_text()) for el in form.select("[name]")}
    _author_saves(author_client, article_id, "The author's own rewrite. " * 50)
    fields.update(body="The admin's careful fix. " * 50, action="save")
    response = admin_client.post(form["action"], data=fields)
    assert response.status_code == 409
    soup = parse(response)
    assert soup.select_one("#edit-in-place")["open"] is not None
    assert "The admin's careful fix." in soup.select_one("#edit-body").get_text()
    assert soup.select_one("#edit-in-place input[name=base_revision]")["value"] == "2"
    with app.app_context():
        assert "careful fix" not in latest_revision(db.session.get(Article, article_id)).body


def _edit_in_place_fields(admin_client, article_id: int) -> tuple[str, dict[str, str]]:
    """Read the review page's edit-in-place form as the admin's browser would send it."""
    form = parse(admin_client.get(f"/review/{article_id}")).select_one("#edit-in-place form")
    return form["action"], {
        el["name"]: el.get("value", el.get_text()) for el in form.select("[name]")
    }


def test_save_and_approve_refuses_a_draft_changed_in_place_since_it_was_read(
    app, admin_client, author_client, make_article
):
    # An autosave folds into the revision the admin is reading: its number stays, its category
    # and tags change. Approving "the newest revision" would publish a category nobody read.
    article_id = _in_review(app, make_article)
    edit = parse(author_client.get(f"/studio/{article_id}/edit"))
    autosave = {
        el["name"]: el.get("value", el.get_text())
        for el in edit.select("#editor-form input[name], #editor-form textarea[name]")
        if el.get("type") != "checkbox"
    }
    autosave.update(editing_session="s" * 16, category="Databases", tags="sql")
    assert author_client.post(f"/studio/{article_id}/autosave", data=autosave).status_code == 200
    action, fields = _edit_in_place_fields(admin_client, article_id)
    autosave.update(category="Sponsored: buy at evil.example", tags="crypto-scam")
    assert author_client.post(f"/studio/{article_id}/autosave", data=autosave).status_code == 200
    fields.update(body=fields["body"] + "\n\nA line the admin added.", action="approve")
    response = admin_client.post(action, data=fields)
    assert response.status_code == 409
    assert "A line the admin added." in parse(response).select_one("#edit-body").get_text()
    with app.app_context():
        article = db.session.get(Article, article_id)
        assert (article.status, article.published_revision_id) == (Status.IN_REVIEW, None)
        assert "admin added" not in latest_revision(article).body


def test_save_and_approve_approves_the_admins_revision_not_a_later_one(
    app, admin_client, author_client, make_article, client
):
    # The author restores the first text right after the admin's save commits, before the
    # approval: the approval must not fall on the restore, which the admin never read.
    from sqlalchemy import event
    from sqlalchemy.orm import Session

    article_id = _in_review(app, make_article, body="EVIL TEXT the admin never approved. " * 40)
    _author_saves(author_client, article_id, "Good text. " * 40)
    action, fields = _edit_in_place_fields(admin_client, article_id)
    restored = []

    def the_author_restores(session):
        thread = threading.Thread(
            target=lambda: restored.append(
                author_client.post(f"/studio/{article_id}/revisions/1/restore").status_code
            )
        )
        thread.start()
        thread.join()

    event.listen(Session, "after_commit", the_author_restores, once=True)
    try:
        fields.update(body="Good text, fixed by the admin. " * 40, action="approve")
        response = admin_client.post(action, data=fields)
    finally:
        if event.contains(Session, "after_commit", the_author_restores):
            event.remove(Session, "after_commit", the_author_restores)
    assert restored == [302]
    assert response.status_code == 302
    with app.app_context():
        article = db.session.get(Article, article_id)
        assert article.published_revision_id is None and article.status == Status.IN_REVIEW
        assert latest_revision(article).kind == "restore"
    page = admin_client.get(response.headers["Location"]).get_data(as_text=True)
    assert "but not approved" in page


def test_a_re_review_opens_on_the_changes_since_the_request(
    app, admin_client, author_client, make_article
):
    article_id = _in_review(app, make_article)
    decide(
        admin_client,
        article_id,
        {"action": "request_changes", "comment": "Add a conclusion.", "revision": "1"},
    )
    _author_saves(author_client, article_id, FIRST_BODY + "\n\nIn conclusion, cache.")
    assert author_client.post(f"/studio/{article_id}/submit").status_code == 302
    page = parse(admin_client.get(f"/review/{article_id}"))
    diffs = page.select_one("#diffs")
    # The diffs come before the text as readers see it, and the first answers the re-review.
    assert page.select("#diffs, #as-readers")[0]["id"] == "diffs"
    assert (
        diffs.select_one("[aria-current]")
        .get_text()
        .startswith("Since you asked for changes (revision 1)")
    )
    assert "In conclusion, cache." in diffs.select_one("table.diff").get_text()
    assert diffs.select_one(".diff-skip") is not None  # unchanged lines folded


def test_the_queue_flags_every_failing_check_and_has_an_author_tab(app, admin_client, make_article):
    body = "Read [the old post](/articles/gone-for-good) first. " * 200
    flagged = _in_review(app, make_article, "Dead link only", body=body)
    waiting = _in_review(app, make_article, "Waiting on Maya")
    decide(
        admin_client,
        waiting,
        {"action": "request_changes", "comment": "More detail.", "revision": "1"},
    )
    rows = parse(admin_client.get("/review/")).select("#queue tbody tr")
    row = next(r for r in rows if "Dead link only" in r.get_text())
    flags = [b.get_text() for b in row.select(".queue-flags .badge")]
    assert flags == ["Links into this site"]
    assert all("Waiting on Maya" not in r.get_text() for r in rows)
    author_tab = parse(admin_client.get("/review/?tab=author"))
    assert (
        author_tab.select_one(".queue-tabs [aria-current]")
        .get_text()
        .startswith("Waiting on the author")
    )
    rows = author_tab.select("#queue tbody tr")
    assert [r.select_one("a").get_text() for r in rows] == ["Waiting on Maya"]
    assert rows[0].select("td")[3].get_text() == "under a minute"
    assert flagged != waiting


def test_old_stored_flags_are_computed_again(app, admin_client, make_article):
    body = "Read [the old post](/articles/gone-for-good) first. " * 200
    article_id = _in_review(app, make_article, "Stale flags", body=body)
    with app.app_context():
        revision = latest_revision(db.session.get(Article, article_id))
        revision.check_flags = "[]"  # what the first queue stored: code and metadata only
        db.session.commit()
    row = parse(admin_client.get("/review/")).select_one("#queue tbody tr")
    assert "Links into this site" in row.get_text()


def test_schedule_in_the_admins_time_zone(app, admin_client, make_article):
    article_id = _in_review(app, make_article)
    response = decide(
        admin_client,
        article_id,
        {"action": "schedule", "publish_at": "2031-06-01T09:00", "timezone": "Europe/Paris"},
        follow_redirects=True,
    )
    assert (
        "09:00 (Europe/Paris), 01 Jun 2031 07:00 UTC"
        in parse(response).select_one(".flash").get_text()
    )
    with app.app_context():
        published_at = db.session.get(Article, article_id).published_at
        assert published_at == datetime(2031, 6, 1, 7, tzinfo=UTC)
    other = _in_review(app, make_article, "Other")
    refused = decide(
        admin_client,
        other,
        {"action": "schedule", "publish_at": "2031-06-01T09:00", "timezone": "Mars/Olympus"},
    )
    assert refused.status_code == 422


@pytest.mark.parametrize(
    ("when", "zone"), [("9999-12-31 23:59", "America/New_York"), ("0001-01-01 00:00", "Asia/Tokyo")]
)
def test_a_time_that_leaves_the_calendar_in_utc_is_refused_keeping_the_comment(
    app, admin_client, make_article, when, zone
):
    article_id = _in_review(app, make_article)
    refused = decide(
        admin_client,
        article_id,
        {"action": "schedule", "publish_at": when, "timezone": zone, "comment": "Keep me."},
    )
    assert refused.status_code == 422
    assert parse(refused).select_one("#comment").get_text() == "Keep me."


def test_approval_links_to_the_live_article(app, admin_client, make_article):
    article_id = _in_review(app, make_article, "Live soon")
    response = decide(admin_client, article_id, {"action": "approve"}, follow_redirects=True)
    link = parse(response).select_one(".flash a")
    with app.app_context():
        slug = db.session.get(Article, article_id).slug
    assert link["href"] == f"/articles/{slug}" and "Live soon" in link.get_text()


def test_approve_and_revoke_ask_first(app, admin_client, make_article, runner):
    page = parse(admin_client.get(f"/review/{_in_review(app, make_article)}"))
    approve = page.select_one(".decision-form button[value=approve]")
    assert "now?" in approve["data-confirm"] and page.select_one("dialog#confirm-dialog")
    assert page.select_one("script[src*='js/review.js']") is not None
    runner.invoke(args=["token", "create", AUTHOR])
    tokens = parse(admin_client.get("/review/tokens"))
    assert "stop working at once" in tokens.select_one("button.button-danger")["data-confirm"]


def test_inviting_a_person_gives_a_one_time_link(app, admin_client):
    response = admin_client.post(
        "/review/users",
        data={"op": "create", "email": "new@example.com", "name": "New Person", "role": "author"},
    )
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    link = parse(response).select_one("#invite-link")["value"]
    path = link.split("//", 1)[1].split("/", 1)[1]
    newcomer = app.test_client()
    chosen = {"new_password": "chosen by me", "new_password_again": "chosen by me"}
    assert newcomer.post(f"/{path}", data=chosen).status_code == 302
    assert login(newcomer, "new@example.com", "chosen by me").status_code == 302
    assert newcomer.post(f"/{path}", data=chosen).status_code == 410  # once only


def test_audit_rows_link_to_the_article(app, admin_client, make_article):
    article_id = _in_review(app, make_article, "Audited article")
    decide(admin_client, article_id, {"action": "approve"})
    audit = parse(admin_client.get("/review/audit?action=approve"))
    link = audit.select_one("tbody a")
    assert link.get_text() == "Audited article" and link["href"] == f"/review/{article_id}"


def test_after_signing_in_people_land_where_they_work(app):
    author, admin = app.test_client(), app.test_client()
    form = parse(author.get("/login")).select_one("form input[name=next]")
    assert login(author, AUTHOR, next=form["value"]).headers["Location"] == "/studio/"
    assert login(admin, ADMIN).headers["Location"] == "/review/"
    asked = app.test_client()
    assert login(asked, AUTHOR, next="/articles/x").headers["Location"] == "/articles/x"


def test_what_the_reviewer_changed_reads_as_prose(app, admin_client, client, make_article):
    article_id = make_article(
        "Prose changes", body=FIRST_BODY, status=Status.DRAFT, kind="ai_original"
    )
    with app.app_context():
        article = db.session.get(Article, article_id)
        author = db.session.scalar(select(User).filter_by(email=AUTHOR))
        draft = draft_from(latest_revision(article))
        draft.body = FIRST_BODY.replace("Paragraph 7: first", "Paragraph 7: better")
        add_revision(article, draft, author)
        transition(article, "submit", author)
        db.session.commit()
        slug = article.slug
    decide(admin_client, article_id, {"action": "approve"})
    page = parse(client.get(f"/articles/{slug}/changes"))
    assert page.select_one("table") is None  # paragraphs, not a table of numbered lines
    was, now = page.select_one(".prose-delete"), page.select_one(".prose-insert")
    assert (
        was.select_one("del").get_text() == "first" and now.select_one("ins").get_text() == "better"
    )
    assert page.get_text().count("% of the") <= 1 and page.select_one(".diff-stats") is None


@pytest.mark.parametrize(
    ("url", "data"),
    [
        ("/review/users", {"op": "role", "role": "admin"}),
        ("/review/users", {"op": "deactivate"}),
        ("/review/tokens", {"op": "revoke"}),
        ("/review/tokens", {"op": "create", "name": "bot"}),
    ],
)
@pytest.mark.parametrize("number", ["99999999999999999999", "-1", "1e3", "²", "١٢"])
def test_an_id_no_database_can_hold_is_no_such_account_or_token(admin_client, url, data, number):
    # SQLite cannot bind an integer past 2**63: reading one as an id was an OverflowError (500).
    field = "token_id" if data["op"] == "revoke" else "user_id"
    response = admin_client.post(url, data={**data, field: number})
    assert response.status_code in (302, 404)


def test_a_taken_down_article_sent_back_is_compared_with_what_was_taken_down(
    app, admin_client, author_client, make_article
):
    article_id = _in_review(app, make_article, body="First line.\n\nA wrong claim.\n" * 20)
    decide(admin_client, article_id, {"action": "approve"})
    taken = admin_client.post(f"/review/{article_id}/take-down", data={"reason": "Wrong claim."})
    assert taken.status_code == 302
    _author_saves(author_client, article_id, "First line.\n\nA corrected claim.\n" * 20)
    assert author_client.post(f"/studio/{article_id}/submit").status_code == 302
    page = parse(admin_client.get(f"/review/{article_id}"))
    tabs = [a.get_text() for a in page.select(".diff-tabs a")]
    assert "Since the version taken down (revision 1)" in tabs
    diff = page.select_one("#diffs table.diff").get_text()
    assert "A corrected claim." in diff and "A wrong claim." in diff


def test_a_comment_sent_after_another_admin_decided_is_kept(app, admin_client, make_article):
    article_id = _in_review(app, make_article)
    form = parse(admin_client.get(f"/review/{article_id}")).select_one("form.decision-form")
    fields = {field["name"]: field.get("value", "") for field in form.select("input[name]")}
    with app.app_context():  # another admin approves first
        _author, admin = _users()
        article = db.session.get(Article, article_id)
        transition(article, "approve", admin, **as_read(article))
        db.session.commit()
    reason = "Needs ten more minutes of fact checking on the second table."
    refused = decide(admin_client, article_id, {**fields, "action": "reject", "comment": reason})
    assert refused.status_code == 409
    assert reason in parse(refused).select_one("#note").get_text()


@pytest.mark.parametrize("field", ["version", "revision"])
def test_a_decision_with_a_number_int_would_misread_is_refused_not_a_500(
    admin_client, draft_id, field
):
    # "²" is a digit to str.isdigit() and no number to int(): the check let it through.
    response = decide(admin_client, draft_id, {"action": "approve", field: "²"})
    assert response.status_code in (302, 409, 422)


SITE = "https://blog.example.com"


def _production_admin(tmp_path, template_databases):  # noqa: ANN001, ANN202
    """An app configured as in production (TRUSTED_HOSTS defaults from SITE_URL alone, so
    "localhost" is not trusted) and an admin signed in to it on the site's own address."""
    from .conftest import PASSWORD, _make_app

    config = {"SITE_URL": SITE, "TRUSTED_HOSTS": None}
    app = _make_app(tmp_path, template_databases["demo"], **config)
    admin = app.test_client()
    signed_in = admin.post("/login", data={"email": ADMIN, "password": PASSWORD}, base_url=SITE)
    assert signed_in.status_code == 302
    return app, admin


def _invite(admin):  # noqa: ANN001, ANN202
    data = {"op": "create", "email": "new@example.com", "name": "New Person", "role": "author"}
    return admin.post("/review/users", data=data, base_url=SITE)


def test_an_invitation_link_needs_no_trusted_localhost(tmp_path, template_databases):
    app, admin = _production_admin(tmp_path, template_databases)
    response = _invite(admin)
    assert response.status_code == 200
    link = parse(response).select_one("#invite-link")["value"]
    assert link.startswith(f"{SITE}/account/reset/")
    assert app.test_client().get(link).status_code == 200


def test_an_invitation_whose_link_fails_leaves_no_account_behind(app, admin_client, monkeypatch):
    """The account and its link are one transaction: were the account kept without a link, the
    admin could not invite the person again ("already has an account") nor see the link."""
    from blog import review

    def no_link(user: User) -> tuple[str, bool]:
        raise RuntimeError("the link could not be made")

    monkeypatch.setattr(review, "reset_link", no_link)
    data = {"op": "create", "email": "new@example.com", "name": "New Person", "role": "author"}
    with pytest.raises(RuntimeError):
        admin_client.post("/review/users", data=data)
    with app.app_context():
        assert db.session.scalar(select(User).filter_by(email="new@example.com")) is None
        assert db.session.scalar(select(AuditEntry).filter_by(action="user_created")) is None
    monkeypatch.undo()
    again = admin_client.post("/review/users", data=data)
    assert again.status_code == 200
    assert parse(again).select_one("#invite-link")["value"].startswith("http://blog.test/account/")
