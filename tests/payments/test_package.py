"""What every payment module keeps to: it never ends the service's transaction, and only the
Stripe gateway's package talks to `stripe`."""

from __future__ import annotations

import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "smartcv_account"
PAYMENTS = PACKAGE / "payments"
IMPORTS_STRIPE = re.compile(r"^\s*(import stripe\b|from stripe\b)", re.MULTILINE)


def test_no_payment_module_commits_or_rolls_back_the_session():
    modules = sorted(PAYMENTS.rglob("*.py"))
    assert PAYMENTS / "local" / "subscriptions.py" in modules
    for path in modules:
        text = path.read_text()
        assert "db.session.commit" not in text, path
        assert "rollback" not in text, path


def test_only_the_stripe_package_imports_stripe():
    importers = {
        path.relative_to(PACKAGE).parts[:2]
        for path in PACKAGE.rglob("*.py")
        if IMPORTS_STRIPE.search(path.read_text())
    }
    assert importers == {("payments", "stripe")}
