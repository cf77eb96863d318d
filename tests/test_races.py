"""Two writers at once: each test releases two threads together on the same write.

They run on SQLite in `make test` and on PostgreSQL in `make test-postgres`. SQLite queues the
writers (BEGIN IMMEDIATE), so there they check that queueing keeps the outcome right; PostgreSQL
lets both transactions run side by side, which is the race several servers produce: both read
the same max(number), pick the same slug or create the same tag before either commits. Each
test races several rounds, so that a broken writer is caught even when one round happens to
interleave harmlessly.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import TypeVar

import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from blog.articles import Draft, add_revision, create_article, save_draft
from blog.extensions import db
from blog.models import Article, Category, Media, Revision, Status, Tag, User
from blog.retry import retry_unique, unique_violation

from .conftest import ADMIN, AUTHOR, login
from .test_studio import editor_fields

ROUNDS = 4
T = TypeVar("T")


def race(*work: Callable[[], T]) -> list[T]:
    """Run each callable in its own thread, all released at once; return their results.

    A thread's exception is raised here, so a writer that lost a race with an error fails the test.
    """
    barrier = threading.Barrier(len(work))

    def start(job: Callable[[], T]) -> T:
        barrier.wait(timeout=60)
        return job()

    with ThreadPoolExecutor(max_workers=len(work)) as pool:
        futures = [pool.submit(start, job) for job in work]
        return [future.result(timeout=120) for future in futures]


def _user(email: str) -> User:
    user = db.session.scalar(select(User).filter_by(email=email))
    assert user is not None
    return user


def test_two_new_revisions_of_one_article_get_the_next_two_numbers(app: Flask, make_article):
    article_id = make_article("Racing revisions", status=Status.DRAFT)
    with app.app_context():
        start_version = db.session.get(Article, article_id).version

    def writer(name: str) -> Callable[[], int]:
        def write() -> int:
            with app.app_context():
                article = db.session.get(Article, article_id)
                draft = Draft(title="Racing revisions", body=f"Text by {name}.")
                number = add_revision(article, draft, _user(AUTHOR)).number
                db.session.commit()
                return number

        return write

    numbers: list[int] = []
    for round_ in range(ROUNDS):
        numbers += race(writer(f"first {round_}"), writer(f"second {round_}"))

    assert sorted(numbers) == list(range(2, 2 + 2 * ROUNDS))
    with app.app_context():
        stored = db.session.scalars(
            select(Revision.number).where(Revision.article_id == article_id)
        ).all()
        assert sorted(stored) == list(range(1, 2 + 2 * ROUNDS))
        # Every save bumped the version: none was lost to the other writer's stale copy.
        assert db.session.get(Article, article_id).version == start_version + 2 * ROUNDS


def test_two_saves_from_the_same_base_are_one_save_and_one_conflict(app: Flask):
    author, admin = app.test_client(), app.test_client()
    assert login(author, AUTHOR).status_code == 302
    assert login(admin, ADMIN).status_code == 302
    created = author.post(
        "/studio/new", data={"title": "Shared draft", "body": "The first text.", "tags": ""}
    )
    article_id = int(created.headers["Location"].split("/")[-2])

    for round_ in range(ROUNDS):
        mine = editor_fields(author.get(f"/studio/{article_id}/edit"))
        theirs = editor_fields(admin.get(f"/studio/{article_id}/edit"))
        assert mine["base_revision"] == theirs["base_revision"]
        mine["body"] = f"The author's text, round {round_}."
        theirs["body"] = f"The admin's text, round {round_}."

        answers = race(
            partial(author.post, f"/studio/{article_id}/edit", data=mine),
            partial(admin.post, f"/studio/{article_id}/edit", data=theirs),
        )

        # One save wins; the other is told about it instead of silently saving on top of it.
        assert sorted(answer.status_code for answer in answers) == [302, 409]
        with app.app_context():
            newest = db.session.scalars(
                select(Revision.body)
                .where(Revision.article_id == article_id)
                .order_by(Revision.number.desc())
            ).all()
        assert len(newest) == 2 + round_
        assert newest[0] in (mine["body"], theirs["body"])


def test_two_articles_with_the_same_title_get_two_slugs(app: Flask):
    def writer(title: str, body: str) -> Callable[[], str]:
        def write() -> str:
            with app.app_context():
                article, _ = create_article(Draft(title=title, body=body), _user(AUTHOR))
                db.session.commit()
                return article.slug

        return write

    for round_ in range(ROUNDS):
        title = f"Same title {round_}"
        slugs = race(writer(title, "One."), writer(title, "Two."))
        assert sorted(slugs) == [f"same-title-{round_}", f"same-title-{round_}-2"]

    with app.app_context():
        count = db.session.scalar(
            select(func.count()).select_from(Article).where(Article.title.like("Same title %"))
        )
        assert count == 2 * ROUNDS


def test_a_crowd_of_articles_with_one_title_all_get_slugs(app: Flask):
    # Many servers at once (an AI pipeline fanning out): each collision costs a retry, and
    # trying -2, -3, ... in turn ran out of retries with more than five writers.
    writers = 12

    def writer(n: int) -> Callable[[], str]:
        def write() -> str:
            with app.app_context():
                article, _ = create_article(Draft(title="Crowd", body=f"{n}."), _user(AUTHOR))
                db.session.commit()
                return article.slug

        return write

    slugs = race(*(writer(n) for n in range(writers)))
    assert len(set(slugs)) == writers and all(slug.startswith("crowd") for slug in slugs)


def test_two_drafts_wanting_the_same_slug_get_two_slugs(app: Flask, make_article):
    ids = [make_article(f"Draft {n}", status=Status.DRAFT) for n in range(2)]

    def writer(article_id: int, wanted: str) -> Callable[[], str]:
        def write() -> str:
            with app.app_context():
                article = db.session.get(Article, article_id)
                draft = Draft(title=article.title, body=f"Now at {wanted}.", slug=wanted)
                save_draft(
                    article, draft, _user(AUTHOR), editing_session=f"s{article_id}", autosave=False
                )
                db.session.commit()
                return article.slug

        return write

    for round_ in range(ROUNDS):
        wanted = f"wanted-{round_}"
        slugs = race(writer(ids[0], wanted), writer(ids[1], wanted))
        assert sorted(slugs) == [wanted, f"{wanted}-2"]


def test_two_drafts_creating_the_same_tag_and_category_share_them(app: Flask):
    def writer(title: str, round_: int) -> Callable[[], int]:
        def write() -> int:
            with app.app_context():
                draft = Draft(
                    title=title,
                    body="Text.",
                    category=f"Brand new category {round_}",
                    tags=[f"Brand new tag {round_}", f"Second new tag {round_}"],
                )
                article, _ = create_article(draft, _user(AUTHOR))
                db.session.commit()
                return article.id

        return write

    for round_ in range(ROUNDS):
        ids = race(writer(f"Tagged one {round_}", round_), writer(f"Tagged two {round_}", round_))
        with app.app_context():
            tags = db.session.scalars(select(Tag).where(Tag.name.like(f"% new tag {round_}"))).all()
            categories = db.session.scalars(
                select(Category).filter_by(name=f"Brand new category {round_}")
            ).all()
            assert sorted(tag.slug for tag in tags) == [
                f"brand-new-tag-{round_}",
                f"second-new-tag-{round_}",
            ]
            assert len(categories) == 1
            for article_id in ids:
                article = db.session.get(Article, article_id)
                assert article.category_id == categories[0].id
                assert {tag.id for tag in article.tags} == {tag.id for tag in tags}


@pytest.fixture
def token(runner) -> str:  # noqa: ANN001
    result = runner.invoke(args=["token", "create", AUTHOR, "--name", "racing pipeline"])
    assert result.exit_code == 0, result.output
    return result.stdout.strip().splitlines()[0]


def test_two_requests_with_the_same_idempotency_key_make_one_draft(app: Flask, token: str):
    def sender(key: str, body: str) -> Callable[[], tuple[int, str, bool]]:
        client = app.test_client()

        def send() -> tuple[int, str, bool]:
            response = client.post(
                "/api/drafts",
                data=body,
                headers={
                    "Authorization": f"Bearer {token}",
                    "Content-Type": "application/json",
                    "Idempotency-Key": key,
                },
            )
            replayed = response.headers.get("Idempotent-Replayed") == "true"
            return response.status_code, response.get_data(as_text=True), replayed

        return send

    for round_ in range(ROUNDS):
        title = f"Sent twice {round_}"
        body = json.dumps({"title": title, "body_markdown": "The same draft, sent twice."})
        key = f"retry-{round_}"
        first, second = race(sender(key, body), sender(key, body))

        assert first[0] == second[0] == 201
        assert first[1] == second[1]  # the replay is the first answer, word for word
        assert sorted([first[2], second[2]]) == [False, True]
        with app.app_context():
            count = db.session.scalar(
                select(func.count()).select_from(Article).filter_by(title=title)
            )
            assert count == 1


def test_retry_runs_the_work_again_only_for_the_named_constraint(app: Flask, make_article):
    make_article("Taken", status=Status.DRAFT)  # slug "taken"
    with app.app_context():
        kept = Tag(slug="kept-before-the-savepoint", name="Kept")
        db.session.add(kept)
        db.session.flush()
        wanted = iter(["taken", "taken", "free-at-last"])
        article = db.session.scalar(select(Article).filter_by(slug="taken"))
        other = Article(author=article.author, title="Other", slug="")

        def claim() -> str:
            other.slug = next(wanted)  # as if another writer had just committed "taken"
            db.session.add(other)
            return other.slug

        assert retry_unique(claim, "articles", ["slug"]) == "free-at-last"
        # A duplicate on another constraint is not this retry's business: it is raised.
        duplicate = Tag(slug="kept-before-the-savepoint", name="Again")
        with pytest.raises(IntegrityError) as raised:
            retry_unique(lambda: db.session.add(duplicate), "articles", ["slug"])
        assert unique_violation(raised.value) == ("tags", ("slug",))
        # The rest of the transaction survived both rollbacks to a savepoint.
        db.session.commit()
        assert db.session.scalar(select(Tag).filter_by(slug="kept-before-the-savepoint"))
        assert db.session.scalar(select(Article).filter_by(slug="free-at-last"))


def test_the_same_new_picture_saved_twice_at_once_is_one_row_per_uploader(app: Flask):
    # Two tabs, or a retried request. On PostgreSQL the second INSERT failed on the picture's
    # unique key (a 500): both had looked first and found no row.
    from blog.media import process, save

    from .test_media import image_bytes

    def uploader(email: str | None, processed) -> Callable[[], int]:  # noqa: ANN001
        def upload() -> int:
            with app.app_context():
                media = save(processed, _user(email).id if email else None)
                db.session.commit()
                return media.id

        return upload

    for round_ in range(ROUNDS):
        processed = process(image_bytes(size=(600 + round_, 400)))
        ids = race(uploader(AUTHOR, processed), uploader(AUTHOR, processed))
        assert ids[0] == ids[1]
        # Two people at once get a row each (blog.models.Media says why).
        processed = process(image_bytes(size=(400, 600 + round_)))
        ids = race(uploader(AUTHOR, processed), uploader(ADMIN, processed))
        assert ids[0] != ids[1]
        # Two imports at once (no uploader): a unique key lets NULLs differ, so each added one.
        processed = process(image_bytes(size=(500 + round_, 500)))
        ids = race(uploader(None, processed), uploader(None, processed))
        assert ids[0] == ids[1]


def test_two_people_deleting_their_uploads_of_a_used_picture_at_once_leave_one(
    app: Flask, make_article
):
    # On PostgreSQL each saw the other's row, skipped the "is it used?" check, and both rows
    # went (18 rounds of 20): the published picture had no row left to name it.
    from .test_media import image_bytes, upload

    clients = {}
    for email in (AUTHOR, ADMIN):
        clients[email] = app.test_client()
        assert login(clients[email], email).status_code == 302
    draft = make_article("Pictures", status="draft")
    for round_ in range(ROUNDS):
        picture = image_bytes(size=(300 + round_, 200))
        ids = [upload(clients[email], draft, picture).get_json() for email in (AUTHOR, ADMIN)]
        make_article(f"Shows it {round_}", body=f"![chart]({ids[0]['url']})")

        def deleting(email: str, media_id: int) -> Callable[[], int]:
            return lambda: clients[email].post(f"/studio/media/{media_id}/delete").status_code

        race(deleting(AUTHOR, ids[0]["id"]), deleting(ADMIN, ids[1]["id"]))
        with app.app_context():
            left = db.session.scalar(
                select(func.count()).select_from(Media).where(Media.id.in_([i["id"] for i in ids]))
            )
        assert left == 1


def test_an_upload_while_the_last_row_of_its_picture_is_deleted_keeps_its_files(
    app: Flask, make_article, monkeypatch: pytest.MonkeyPatch
):
    # The delete removed the files after its commit: an upload of the same picture in between
    # found no row and wrote them (SQLite), or found the row being deleted and skipped them
    # (PostgreSQL), and then lost them. Its image was broken from the start.
    from blog.media import media_keys
    from blog.storage import LocalStorage

    from .test_media import image_bytes, stored_files, upload

    clients = {}
    for email in (AUTHOR, ADMIN):
        clients[email] = app.test_client()
        assert login(clients[email], email).status_code == 302
    draft = make_article("Pictures", status="draft")
    picture = image_bytes(size=(320, 200))
    first = upload(clients[AUTHOR], draft, picture).get_json()
    uploads: list[dict] = []
    real_delete = LocalStorage.delete

    def delete_while_uploading(storage: LocalStorage, key: str) -> None:
        if not uploads:  # the first file: the other upload comes now
            worker = threading.Thread(
                target=lambda: uploads.append(upload(clients[ADMIN], draft, picture).get_json())
            )
            worker.start()
            worker.join(timeout=1)  # it may be made to wait for this delete: then go on
            uploads.append({"worker": worker})
        real_delete(storage, key)

    monkeypatch.setattr(LocalStorage, "delete", delete_while_uploading)
    response = clients[AUTHOR].post(
        f"/studio/media/{first['id']}/delete", headers={"Accept": "application/json"}
    )
    assert response.status_code == 200
    uploads[-1]["worker"].join(timeout=30)
    second = next(item for item in uploads if "url" in item)
    with app.app_context():
        row = db.session.scalars(select(Media)).one()
        assert row.id == second["id"]
        wanted = set(media_keys(row))
    assert len(wanted) > 1  # the original and its WebP widths
    assert wanted <= {path.name for path in stored_files(app)}


def test_one_upload_deleted_twice_at_once_is_deleted_once(app: Flask, make_article):
    # A double click. On PostgreSQL both requests had loaded the row; the second then deleted
    # no row (SQLAlchemy warned) and answered that it had deleted it.
    from .test_media import image_bytes, upload

    clients = [app.test_client(), app.test_client()]
    for client in clients:
        assert login(client, AUTHOR).status_code == 302
    draft = make_article("Pictures", status="draft")
    for round_ in range(ROUNDS):
        media_id = upload(clients[0], draft, image_bytes(size=(300 + round_, 200))).json["id"]

        def deleting(client, media_id: int = media_id) -> Callable[[], int]:  # noqa: ANN001
            path = f"/studio/media/{media_id}/delete"
            headers = {"Accept": "application/json"}
            return lambda: client.post(path, headers=headers).status_code

        codes = sorted(race(*map(deleting, clients)))
        assert codes == [200, 404]
