"""End-to-end happy path of a subscription through the HTTP API."""


def test_subscribe_upgrade_cancel_reactivate(auth_client, plans, frozen_clock):
    created = auth_client.post(
        "/api/account/subscription",
        json={"planId": "plan_premium_monthly", "paymentMethodId": "pm_card_visa"},
    )
    assert created.status_code == 201, created.json
    assert created.json["data"]["status"] == "ACTIVE"
    view = auth_client.get("/api/account/subscription").json["data"]
    assert view["currentPeriodEnd"] == "2025-02-01T00:00:00Z"
    assert view["paymentMethod"]["last4"] == "4242"
    changed = auth_client.put(
        "/api/account/subscription", json={"action": "upgrade", "planId": "plan_premium_yearly"}
    )
    assert changed.status_code == 200, changed.json
    assert changed.json["data"]["prorationAmount"] == 270.0
    cancel = auth_client.put("/api/account/subscription", json={"action": "cancel"})
    assert cancel.json["data"]["effectiveDate"] == "2026-01-01T00:00:00Z"
    again = auth_client.put("/api/account/subscription", json={"action": "reactivate"})
    assert again.status_code == 200
