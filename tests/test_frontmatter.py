"""Front matter: YAML and TOML, where the body starts, and errors that name the line."""

from __future__ import annotations

import pytest

from blog.frontmatter import FRONT_MATTER_MAX, FrontMatterError, parse


def test_yaml_front_matter_and_body_line():
    document = parse("---\ntitle: Hello\nTags: [a, b]\n---\n\nBody text.\n")
    assert document.meta == {"title": "Hello", "tags": ["a", "b"]}
    assert document.body == "\nBody text.\n" and document.body_line == 5


def test_toml_front_matter():
    document = parse('+++\ntitle = "Hello"\ndraft = true\n+++\nBody\n')
    assert document.meta == {"title": "Hello", "draft": True} and document.body == "Body\n"


def test_yaml_may_end_with_three_dots_and_a_bom_is_ignored():
    assert parse("\ufeff---\ntitle: x\n...\nBody").meta == {"title": "x"}


def test_no_front_matter_is_all_body():
    document = parse("# Just Markdown\n")
    assert document.meta == {} and document.body == "# Just Markdown\n"


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("---\ntitle: x\nbad: [1, 2\n---\nBody", 4, "YAML front matter"),
        ('+++\ntitle = "x"\nbad = =\n+++\nBody', 3, "TOML front matter: Invalid value"),
        ('+++\ntitle = "x"\nlist = [1,\n+++\nBody', 3, "TOML front matter"),
        ("---\ntitle: x\nBody without a closing fence\n", 1, "blank line before it"),
        ("---\n- a list\n---\nBody", 2, "must be a mapping"),
    ],
)
def test_errors_name_the_file_line(text, line, words):
    with pytest.raises(FrontMatterError) as caught:
        parse(text)
    assert caught.value.line == line and words in caught.value.message


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("---\ntitle: x\ntags: &a [*a]\n---\nBody", 3, "refers to itself"),
        ("---\ntitle: x\nmeta: &m {self: *m}\n---\nBody", 3, "refers to itself"),
        ("---\ntitle: x\ndate: 2025-02-30\n---\nBody", 3, "2025-02-30"),
        ("---\ntitle: x\nn: " + "9" * 5000 + "\n---\nBody", 3, "YAML front matter"),
        ("---\ntitle: x\ntags: " + "[" * 5000 + "]" * 5000 + "\n---\nBody", 3, "nested"),
        # tomllib says nothing about where it gave up.
        ("+++\ntitle = 'x'\ntags = " + "[" * 5000 + "]" * 5000 + "\n+++\nBody", None, "nested"),
    ],
    ids=[
        "recursive-list",
        "recursive-mapping",
        "no-such-day",
        "huge-int",
        "deep-yaml",
        "deep-toml",
    ],
)
def test_hostile_front_matter_is_an_error_on_its_line(text, line, words):
    with pytest.raises(FrontMatterError) as caught:
        parse(text)
    assert words in caught.value.message and caught.value.line == line


def test_shared_aliases_are_not_cycles():
    document = parse("---\ntitle: x\nbase: &b [a, b]\ntags: *b\nmore: [*b, *b]\n---\nBody")
    assert document.meta["tags"] == ["a", "b"] and document.meta["more"] == [["a", "b"]] * 2


def test_a_control_character_yaml_forbids_names_its_line():
    with pytest.raises(FrontMatterError) as caught:
        parse("---\ntitle: x\nsummary: a\x01b\n---\nBody")
    assert caught.value.line == 3 and "special characters are not allowed" in caught.value.message


@pytest.mark.parametrize("fence", ["---", "+++"])
def test_front_matter_past_its_limit_is_refused_before_it_is_read(fence):
    # 2 MB of tags took PyYAML 1.4 s to build (a list) or split_tags 1.1 s (a string): a
    # post's front matter is a few hundred characters, and a file is read whole up to 2 MB.
    tags = ", ".join(f"tag{i}" for i in range(FRONT_MATTER_MAX // 5))
    text = f"{fence}\ntitle: x\ntags: '{tags}'\n{fence}\nBody"
    with pytest.raises(FrontMatterError) as caught:
        parse(text)
    assert caught.value.line == 1
    assert f"longer than {FRONT_MATTER_MAX:,} characters" in caught.value.message


def test_front_matter_at_its_limit_is_read():
    filler = "x" * (FRONT_MATTER_MAX - len("title: x\nnote: \n"))
    assert parse(f"---\ntitle: x\nnote: {filler}\n---\nBody").meta["note"] == filler
