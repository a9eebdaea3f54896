"""The service starts, answers health checks and keeps its error envelope."""


def test_healthz_reports_ok_when_database_answers(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json == {"status": "ok"}


def test_register_then_read_account(client):
    response = client.post(
        "/api/auth/register",
        json={"email": "new@example.com", "password": "correct horse battery staple", "name": "N"},
    )
    assert response.status_code == 201
    account = client.get("/api/account").json["data"]
    assert account["email"] == "new@example.com"
    assert account["subscriptionType"] == "FREE"


def test_signed_in_user_reads_own_account(auth_client, user):
    assert auth_client.get("/api/account").json["data"]["id"] == user.public_id
