"""Each kind of emailed link is declared once (services/tokens.py), and what it names exists."""

from __future__ import annotations

from pathlib import Path

import pytest

from smartcv_account.services import tokens

TEMPLATES = Path(__file__).parents[2] / "smartcv_account" / "templates" / "mail"


@pytest.mark.parametrize("kind", sorted(tokens.KINDS))
def test_each_link_kind_names_a_template_that_shows_its_link(kind):
    template = TEMPLATES / f"{tokens.KINDS[kind].template}.txt"
    assert "{{ link }}" in template.read_text(encoding="utf-8")


def test_link_pages_are_distinct_paths_of_the_front_end():
    pages = [kind.page for kind in tokens.KINDS.values()]
    assert len(set(pages)) == len(pages)
    assert all(page.replace("-", "").isalpha() for page in pages)
