"""Review: the state machine, races, scheduling, the queue and review pages, the admin area."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest
from sqlalchemy import select

from blog.extensions import db
from blog.models import Article, AuditEntry, ReviewEvent, Status, User
from blog.workflow import TRANSITIONS, TransitionError, transition

from .conftest import ADMIN, AUTHOR, login, parse

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
        kwargs = {"comment": "Because."}
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
            transition(article, action, admin, comment="  ")


def test_two_admins_deciding_at_once_one_wins(app, draft_id, make_user):
    second = make_user("second@example.com", "Second Admin", role="admin")
    with app.app_context():
        _set_status(draft_id, Status.IN_REVIEW)
    barrier = threading.Barrier(2, timeout=30)
    outcomes: dict[str, str] = {}

    def decide(email: str, action: str) -> None:
        with app.app_context():
            actor = db.session.scalar(select(User).filter_by(email=email))
            article = db.session.get(Article, draft_id)
            version = article.version
            db.session.rollback()  # end the read transaction: it holds SQLite's write lock here
            barrier.wait()
            try:
                transition(article, action, actor, comment="No.", expected_version=version)
                db.session.commit()
                outcomes[email] = "won"
            except TransitionError as error:
                outcomes[email] = str(error)

    threads = [
        threading.Thread(target=decide, args=(ADMIN, "approve")),
        threading.Thread(target=decide, args=(second.email, "reject")),
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
    version = mine.select_one("input[name=version]")["value"]
    other.post(f"/review/{draft_id}/decide", data={"action": "reject", "comment": "Off topic."})
    response = admin_client.post(
        f"/review/{draft_id}/decide",
        data={"action": "approve", "version": version},
        follow_redirects=True,
    )
    flashes = " ".join(f.get_text() for f in parse(response).select(".flash"))
    assert "Second Admin already made a decision" in flashes and "rejected" in flashes


def test_scheduled_publishing_with_a_fixed_clock(app, client, draft_id, clock):
    start = datetime(2030, 1, 1, 12, tzinfo=UTC)
    clock(start)
    with app.app_context():
        _author, admin = _users()
        article = _set_status(draft_id, Status.IN_REVIEW)
        transition(article, "schedule", admin, publish_at=start + timedelta(hours=2))
        db.session.commit()
        assert db.session.get(Article, draft_id).status == Status.SCHEDULED
    assert client.get("/articles/queue-me").status_code == 404
    assert "Queue me" not in client.get("/").get_data(as_text=True)
    clock(start + timedelta(hours=2, seconds=1))
    assert client.get("/articles/queue-me").status_code == 200
    assert "Queue me" in client.get("/").get_data(as_text=True)


def test_scheduling_in_the_past_is_refused(app, draft_id):
    with app.app_context():
        _author, admin = _users()
        article = _set_status(draft_id, Status.IN_REVIEW)
        with pytest.raises(TransitionError, match="future"):
            transition(article, "schedule", admin, publish_at=datetime(2000, 1, 1, tzinfo=UTC))


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
    admin_client.post("/review/1/decide", data={"action": "approve"})
    assert "Rewritten from scratch." in client.get(f"/articles/{slug}").get_data(as_text=True)


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
    response = author_client.post(f"/review/{draft_id}/decide", data={"action": "approve"})
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
    refused = admin_client.post(
        f"/review/{draft_id}/decide",
        data={"action": "request_changes", "comment": ""},
        follow_redirects=True,
    )
    assert "say why" in refused.get_data(as_text=True)
    admin_client.post(
        f"/review/{draft_id}/decide",
        data={"action": "request_changes", "comment": "Cite the benchmark."},
    )
    editor = parse(author_client.get(f"/studio/{draft_id}/edit"))
    callout = editor.select_one(".callout")
    assert "Dennis Atonya asked for changes" in callout.get_text()
    assert "Cite the benchmark." in callout.get_text()
    assert author_client.post(f"/studio/{draft_id}/submit").status_code == 302
    with app.app_context():
        assert db.session.get(Article, draft_id).status == Status.IN_REVIEW


def test_comment_without_deciding(app, admin_client, draft_id):
    admin_client.post(f"/review/{draft_id}/decide", data={"action": "comment", "comment": "Nice."})
    with app.app_context():
        event = db.session.scalars(select(ReviewEvent).filter_by(article_id=draft_id)).all()[-1]
        assert (event.action, event.comment) == ("comment", "Nice.")
        assert db.session.get(Article, draft_id).status == Status.DRAFT


def test_schedule_from_the_review_page(app, admin_client, draft_id):
    with app.app_context():
        _set_status(draft_id, Status.IN_REVIEW)
    when = (datetime.now(UTC) + timedelta(days=3)).strftime("%Y-%m-%dT%H:%M")
    response = admin_client.post(
        f"/review/{draft_id}/decide",
        data={"action": "schedule", "publish_at": when},
        follow_redirects=True,
    )
    assert "it will be published on" in response.get_data(as_text=True)
    bad = admin_client.post(
        f"/review/{draft_id}/decide",
        data={"action": "schedule", "publish_at": "soon"},
        follow_redirects=True,
    )
    assert bad.status_code == 200


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
    admin_client.post(f"/review/{draft_id}/decide", data={"action": "approve"})
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
