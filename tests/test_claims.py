"""Site-wide claims about how articles were written stay true of the articles listed."""

from __future__ import annotations

from .conftest import parse


def test_site_wide_claims_hold_when_human_written_articles_are_listed(client, make_article):
    make_article("Hand written", ai_generated=False)
    soup = parse(client.get("/"))
    cards = [p.get_text(" ", strip=True) for p in soup.select(".card-provenance")]
    assert any(line.startswith("Written by") for line in cards)  # not everything is AI-generated
    hero = soup.select_one(".hero .provenance").get_text(" ", strip=True)
    footer = soup.select_one(".site-footer").get_text(" ", strip=True)
    assert hero == "Articles labelled AI-generated are reviewed by Dennis Atonya"
    assert "Every article" not in footer
    assert "Articles labelled AI-generated are reviewed by a person before publication." in footer
