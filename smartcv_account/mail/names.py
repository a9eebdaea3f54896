"""A name a user chose, made fit for mail to an address the account has not proved.

Such mail may reach a stranger (an email change's confirmation goes wherever the user says), so
the name in it must not carry a message of its own: it is cut to MAX_LENGTH characters and
keeps nothing a mail program turns into a link (no URL, domain or address survives).
"""

from __future__ import annotations

import unicodedata

MAX_LENGTH = 50
NEUTRAL_NAME = "A SmartCV user"
# Besides letters, marks and digits of any script: what names are written with.
NAME_PUNCTUATION = frozenset(" '’-")


def _kept(char: str) -> bool:
    """Tell whether a character may stay: a letter, a mark, a digit, a space, ' ’ or -."""
    return char in NAME_PUNCTUATION or unicodedata.category(char)[0] in "LMN"


def third_party_name(name: str) -> str:
    """Return `name` cut to 50 characters, with every character that could help make a link
    (dots, slashes, @, colons, …) turned into a space and spaces collapsed.

    NFKC first, so that look-alikes such as `．` or `⒈` become the `.` they stand for and go
    too. A name with no letter or digit left reads as NEUTRAL_NAME.
    """
    folded = unicodedata.normalize("NFKC", name)
    cleaned = " ".join("".join(c if _kept(c) else " " for c in folded).split())
    cut = cleaned[:MAX_LENGTH].rstrip()
    if not any(unicodedata.category(c)[0] in "LN" for c in cut):
        return NEUTRAL_NAME
    return cut
