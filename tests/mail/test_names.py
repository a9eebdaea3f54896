"""A name in mail to an address the account has not proved: 50 characters, nothing to click."""

from __future__ import annotations

import re
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smartcv_account.mail.names import MAX_LENGTH, NEUTRAL_NAME, third_party_name

from ..helpers import change_email, signed_up
from .conftest import link_in

# What links are made of, mixed into arbitrary text so the examples look like links often.
LINK_PARTS = st.sampled_from(
    ["http://", "https://", "www.", ".", "/", "@", ":", "．", "⒈", "。", "evil", "example", "com"]
)
NAMES = st.lists(st.text(max_size=20) | LINK_PARTS, max_size=12).map("".join)
# A name a mail program could make a link of: a scheme, a dot between words, an address.
CLICKABLE = re.compile(r"://|\w\.\w|@|www\.", re.IGNORECASE)


def kept(char: str) -> bool:
    """Letters, marks and digits of any script, the space, apostrophes and the hyphen."""
    return char in " '’-" or unicodedata.category(char)[0] in "LMN"


@settings(max_examples=500, deadline=None)
@given(name=NAMES)
def test_a_name_for_another_address_is_short_and_has_nothing_to_click(name):
    shown = third_party_name(name)
    assert 0 < len(shown) <= MAX_LENGTH
    # Also after NFKC, which mail programs and IDNA apply: no look-alike of a dot survives.
    assert all(kept(c) for c in unicodedata.normalize("NFKC", shown))
    assert not CLICKABLE.search(unicodedata.normalize("NFKC", shown))
    assert third_party_name(shown) == shown


@settings(max_examples=300, deadline=None)
@given(
    name=st.text(
        alphabet=st.characters(categories=["Lu", "Ll", "Lo"]), min_size=1, max_size=MAX_LENGTH
    )
)
def test_a_name_of_letters_is_kept_as_written(name):
    if unicodedata.normalize("NFKC", name) == name:
        assert third_party_name(name) == name


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("Visit evil.example/win", "Visit evil example win"),
        ("http://x.y", "http x y"),
        ("a@b.co", "a b co"),
        ("www.example.com", "www example com"),
        ("ｅｖｉｌ．ｃｏｍ", "evil com"),
        ("x" * 200, "x" * 50),
        ("Zoë Δημήτρης 王小明 محمد", "Zoë Δημήτρης 王小明 محمد"),
        ("Ana O’Brien-López", "Ana O’Brien-López"),
        ("Дмитрий Шостакович", "Дмитрий Шостакович"),
        ("...", NEUTRAL_NAME),
    ],
)
def test_names_for_another_address(name, shown):
    assert third_party_name(name) == shown


def test_the_confirmation_to_a_new_address_shows_the_name_made_safe(mail_app, deliver, inbox):
    client = mail_app.test_client()
    signed_up(client, name="Win at evil.example/prize " + "x" * 60)
    assert change_email(client, "ann.new@example.com").status_code == 202
    deliver()
    message = inbox.only("ann.new@example.com")
    text = message.get_content()
    assert "Hello Win at evil example prize " + "x" * 24 + "," in text.splitlines()
    assert "evil.example" not in text
    assert link_in(message)["path"] == "confirm-email"


def test_mail_to_the_verified_address_keeps_the_name(mail_app, deliver, inbox):
    client = mail_app.test_client()
    signed_up(client, name="Dr. Ann")
    deliver()
    token = link_in(inbox.only("ann@example.com"))["token"]
    assert client.post("/api/auth/verify-email", json={"token": token}).status_code == 200
    client.post("/api/auth/password-reset/request", json={"email": "ann@example.com"})
    deliver()
    assert "Hello Dr. Ann," in inbox.to("ann@example.com")[-1].get_content()
