"""Public ids and email addresses: how they are made, stored and compared."""

from __future__ import annotations

import secrets

from email_validator import EmailNotValidError, validate_email


def new_public_id(prefix: str) -> str:
    """Return an opaque public id such as `user_3f9c…`."""
    return f"{prefix}_{secrets.token_hex(12)}"


def normalise_email(email: str) -> str:
    """Return an address as it is stored and compared: trimmed, Unicode NFC, the domain
    checked as IDNA (its A-label and U-label forms are one domain), all in lower case.

    Something that is not an address is only trimmed and lower-cased: a look-up finds nothing.
    """
    email = email.strip()
    try:
        email = validate_email(email, check_deliverability=False).normalized
    except EmailNotValidError:
        pass
    return email.lower()
