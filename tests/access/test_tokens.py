"""API tokens: only a digest is stored, the key is shown once, tokens expire and can be revoked."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from taxopost.access.models import AccessToken, Membership
from taxopost.access.tokens import create_token, digest
from taxopost.errors import InputError

pytestmark = pytest.mark.django_db

PASSWORD = "a-token-password-1"


@pytest.fixture
def member(platform, django_user_model, fast_passwords):
    user = django_user_model.objects.create_user("member", "member@example.org", PASSWORD)
    Membership.objects.create(user=user, project=platform.project, role="viewer")
    return user


def bearer(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def stored_values() -> str:
    """Every column of every token row, as text."""
    return repr(list(AccessToken.objects.values_list()))


def test_only_the_digest_is_stored_and_the_key_authenticates(member):
    token, key = create_token(member, name="script")
    assert len(key) == 40 and token.prefix == key[:8] and token.digest == digest(key)
    assert key not in stored_values()
    assert bearer(key).get("/api/v1/capture-sets/").status_code == 200
    token.refresh_from_db()
    assert token.last_used_at is not None


def test_tokens_expire_after_the_configured_days(member, settings):
    settings.TOKEN_TTL_DAYS = 2
    token, key = create_token(member)
    assert abs(token.expires_at - (timezone.now() + timedelta(days=2))) < timedelta(minutes=1)
    AccessToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    response = bearer(key).get("/api/v1/capture-sets/")
    assert response.status_code == 401 and response.json() == {"detail": "Token expired."}
    assert response["WWW-Authenticate"] == "Token"


@pytest.mark.parametrize("days", ["3000000", "1e12"])
def test_a_life_past_what_a_date_holds_is_a_form_error_not_a_server_error(member, client, days):
    member.is_staff = True
    member.save()
    client.force_login(member)
    response = client.post("/admin/access/accesstoken/add/", {"name": "cron", "days": days})
    assert response.status_code == 200 and "less than or equal to 36500" in response.content.decode()
    assert not AccessToken.objects.exists()
    with pytest.raises(InputError, match="at most 36,500"):  # taxopost manage create_token --days
        create_token(member, days=float(days))


def test_a_revoked_or_unknown_token_is_refused(member):
    token, key = create_token(member)
    assert bearer(key).post(f"/api/v1/tokens/{token.pk}/revoke/").status_code == 200
    assert bearer(key).get("/api/v1/capture-sets/").json() == {"detail": "Token revoked."}
    assert bearer("0" * 40).get("/api/v1/capture-sets/").json() == {"detail": "Invalid token."}


def test_the_token_endpoint_shows_the_key_once(member):
    client = APIClient()
    made = client.post("/api/v1/tokens/", {"username": "member", "password": PASSWORD, "name": "cron"}, format="json")
    assert made.status_code == 201, made.content
    key = made.json()["key"]
    assert made.json()["name"] == "cron" and key not in stored_values()
    listed = bearer(key).get("/api/v1/tokens/").json()
    assert [t["prefix"] for t in listed["results"]] == [key[:8]] and key not in repr(listed)
    assert "key" not in bearer(key).get(f"/api/v1/tokens/{made.json()['id']}/").json()


def test_a_user_sees_and_revokes_only_their_own_tokens(member, django_user_model):
    other = django_user_model.objects.create_user("other", password=PASSWORD)
    theirs, _ = create_token(other)
    _, key = create_token(member)
    assert bearer(key).get(f"/api/v1/tokens/{theirs.pk}/").status_code == 404
    assert bearer(key).post(f"/api/v1/tokens/{theirs.pk}/revoke/").status_code == 404
    theirs.refresh_from_db()
    assert theirs.revoked_at is None


def test_wrong_passwords_lock_the_token_endpoint_even_for_the_right_one(member, settings):
    settings.LOGIN_FAILURES_ALLOWED = 3
    client = APIClient()
    for _ in range(3):
        wrong = client.post("/api/v1/tokens/", {"username": "member", "password": "nope"}, format="json")
        assert wrong.status_code == 400
    right = client.post("/api/v1/tokens/", {"username": "member", "password": PASSWORD}, format="json")
    assert right.status_code == 400 and "Too many failed logins" in right.json()["non_field_errors"][0]
    assert not AccessToken.objects.exists()
    elsewhere = APIClient(REMOTE_ADDR="10.1.2.3")  # another address is not locked out
    assert (
        elsewhere.post("/api/v1/tokens/", {"username": "member", "password": PASSWORD}, format="json").status_code
        == 201
    )


def test_the_token_endpoint_is_rate_limited(member, monkeypatch):
    from rest_framework.throttling import ScopedRateThrottle

    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {"token": "3/minute"})
    client = APIClient()
    statuses = [
        client.post("/api/v1/tokens/", {"username": "member", "password": PASSWORD}, format="json").status_code
        for _ in range(4)
    ]
    assert statuses == [201, 201, 201, 429]
    assert AccessToken.objects.count() == 3


def test_the_token_rate_counts_by_address_whatever_forwarded_header_a_client_sends(member, monkeypatch):
    from rest_framework.throttling import ScopedRateThrottle

    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {"token": "3/minute"})
    client = APIClient()
    body = {"username": "nobody", "password": "wrong"}
    statuses = [
        client.post("/api/v1/tokens/", body, format="json", HTTP_X_FORWARDED_FOR=f"10.0.0.{i}").status_code
        for i in range(5)
    ]
    assert statuses == [400, 400, 400, 429, 429]
    elsewhere = APIClient(REMOTE_ADDR="10.9.9.9")  # another address has a count of its own
    assert elsewhere.post("/api/v1/tokens/", body, format="json").status_code == 400


def test_requests_for_pages_do_not_push_the_token_rate_out_of_the_cache(member, platform, monkeypatch):
    from rest_framework.throttling import ScopedRateThrottle

    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {"token": "3/minute"})
    platform.project.public = True
    platform.project.save()
    api = APIClient()
    body = {"username": "nobody", "password": "wrong"}
    assert [api.post("/api/v1/tokens/", body, format="json").status_code for _ in range(4)] == [400, 400, 400, 429]
    browser = APIClient()
    for i in range(150):  # more pages than the page cache holds (100 entries)
        assert browser.get(f"/evaluation/capture-sets/{platform.pk}/?algorithm=made-up-{i}").status_code == 400
    assert api.post("/api/v1/tokens/", body, format="json").status_code == 429


def test_the_admin_never_shows_a_key_again(member, django_user_model, client, fast_passwords):
    boss = django_user_model.objects.create_superuser("boss", "boss@example.org", PASSWORD)
    keys = [create_token(user)[1] for user in (member, boss)]
    client.force_login(boss)
    added = client.post("/admin/access/accesstoken/add/", {"user": member.pk, "name": "from the admin", "days": "3"},
                        follow=True)  # fmt: skip
    assert added.status_code == 200
    [message] = [str(m) for m in added.context["messages"] if "token-key" in str(m)]
    new_key = message.split('<code class="token-key">')[1].split("</code>")[0]
    assert len(new_key) == 40 and bearer(new_key).get("/api/v1/capture-sets/").status_code == 200
    made = AccessToken.objects.get(name="from the admin")
    assert made.user == member and made.expires_at < timezone.now() + timedelta(days=3, minutes=1)
    pages = [client.get("/admin/access/accesstoken/").content.decode()]
    pages += [
        client.get(f"/admin/access/accesstoken/{t.pk}/change/").content.decode() for t in AccessToken.objects.all()
    ]
    for key in [*keys, new_key]:
        assert not any(key in page for page in pages)
        assert key not in stored_values()


def test_revoking_from_the_admin(member, django_user_model, client):
    boss = django_user_model.objects.create_superuser("boss", "boss@example.org", PASSWORD)
    token, key = create_token(member)
    client.force_login(boss)
    response = client.post("/admin/access/accesstoken/", {"action": "revoke_tokens", "_selected_action": [token.pk],
                                                          "index": 0})  # fmt: skip
    assert response.status_code == 302
    assert bearer(key).get("/api/v1/capture-sets/").status_code == 401
