"""The admin's login: after too many failures of one username from one address, the right password fails too."""

from __future__ import annotations

import threading
import time

import pytest
from django.contrib.auth.backends import ModelBackend
from django.db import connections
from django.test import Client
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db

PASSWORD = "a-login-password-1"
LOGIN = "/admin/login/?next=/admin/"


@pytest.fixture
def boss(django_user_model, fast_passwords):
    return django_user_model.objects.create_superuser("boss", "boss@example.org", PASSWORD)


def log_in(client: Client, password: str, username: str = "boss") -> bool:
    response = client.post(LOGIN, {"username": username, "password": password})
    return response.status_code == 302 and "_auth_user_id" in client.session


def test_thirty_wrong_passwords_then_the_right_one_is_refused(boss, settings):
    client = Client()
    assert not any(log_in(client, f"guess-{i}") for i in range(30))
    response = client.post(LOGIN, {"username": "boss", "password": PASSWORD})
    assert response.status_code == 200 and "Too many failed logins" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_the_lock_holds_per_username_and_address_and_expires(boss, django_user_model, settings):
    settings.LOGIN_FAILURES_ALLOWED, settings.LOGIN_LOCK_SECONDS = 3, 1
    django_user_model.objects.create_superuser("other", "other@example.org", PASSWORD)
    client = Client()
    for _ in range(3):
        assert not log_in(client, "wrong")
    assert not log_in(client, PASSWORD)
    assert log_in(Client(), PASSWORD, username="other")  # another username from the same address
    assert log_in(Client(REMOTE_ADDR="10.9.8.7"), PASSWORD)  # the same username from another address
    time.sleep(1.2)
    assert log_in(Client(), PASSWORD)


def test_a_success_clears_the_failures(boss, settings):
    settings.LOGIN_FAILURES_ALLOWED = 3
    for _ in range(2):
        assert not log_in(Client(), "wrong")
    assert log_in(Client(), PASSWORD)
    for _ in range(2):
        assert not log_in(Client(), "wrong")
    assert log_in(Client(), PASSWORD)


def test_failures_at_the_token_endpoint_lock_the_admin_too(boss, settings):
    settings.LOGIN_FAILURES_ALLOWED = 3
    api = APIClient()
    for _ in range(3):
        assert api.post("/api/v1/tokens/", {"username": "boss", "password": "no"}, format="json").status_code == 400
    assert not log_in(Client(), PASSWORD)


def test_failures_of_other_usernames_do_not_push_a_count_out(boss, settings):
    """An attacker cannot reset a username's count by failing with many others in between."""
    settings.LOGIN_FAILURES_ALLOWED = 3
    for _ in range(2):
        assert not log_in(Client(), "wrong")
    for i in range(150):  # more usernames than a small cache holds
        assert not log_in(Client(), "wrong", username=f"nobody-{i}")
    assert not log_in(Client(), "wrong")
    assert not log_in(Client(), PASSWORD)


def test_the_count_is_shared_by_every_server_process(boss, settings):
    """Processes share no memory: what one counted, another sees (here the cache is emptied, as a
    second process's local cache would be)."""
    from django.core.cache import cache

    settings.LOGIN_FAILURES_ALLOWED = 3
    for _ in range(3):
        assert not log_in(Client(), "wrong")
        cache.clear()
    assert not log_in(Client(), PASSWORD)


class SlowBackend(ModelBackend):
    """Django's backend, with a password check that takes 0.3 s as a real hash does (without the CPU)."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        time.sleep(0.3)
        return super().authenticate(request, username=username, password=password, **kwargs)


@pytest.mark.postgresql
@pytest.mark.django_db(transaction=True)
def test_guesses_sent_at_the_same_moment_get_no_more_checks_than_allowed(boss, settings):
    """Each attempt is counted before its password is checked: twenty at once cannot all pass a
    check made before any of them failed."""
    settings.AUTHENTICATION_BACKENDS = ["tests.access.test_login_limits.SlowBackend"]
    settings.LOGIN_FAILURES_ALLOWED = 5
    barrier, outcomes = threading.Barrier(20), []

    def guess(i: int) -> None:
        try:
            client = Client()
            barrier.wait()
            response = client.post(LOGIN, {"username": "boss", "password": f"guess-{i}"})
            outcomes.append("locked" if "Too many failed logins" in response.content.decode() else "checked")
        finally:
            connections.close_all()

    threads = [threading.Thread(target=guess, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes.count("checked") == 5 and outcomes.count("locked") == 15
    assert not log_in(Client(), PASSWORD)


def test_an_empty_password_does_not_clear_the_count(boss, settings):
    """A post without a password authenticates no one, so it is no success that clears the count."""
    settings.LOGIN_FAILURES_ALLOWED = 3
    for _ in range(3):
        assert not log_in(Client(), "wrong")
        Client().post(LOGIN, {"username": "boss", "password": ""})
    assert not log_in(Client(), PASSWORD)


def test_a_member_without_is_staff_logs_in_to_the_review_pages_under_the_same_limit(
    platform, django_user_model, fast_passwords, settings
):
    from taxopost.access.models import Membership

    settings.LOGIN_FAILURES_ALLOWED = 3
    member = django_user_model.objects.create_user("member", password=PASSWORD)
    Membership.objects.create(user=member, project=platform.project, role="viewer")
    review = f"/review/capture-sets/{platform.pk}/"
    client = Client()
    to_login = client.get(review)
    assert to_login.status_code == 302 and to_login["Location"] == f"/login/?next={review}"
    assert client.get(to_login["Location"]).status_code == 200
    logged_in = client.post(to_login["Location"], {"username": "member", "password": PASSWORD})
    assert logged_in.status_code == 302 and logged_in["Location"] == review
    assert client.get(review).status_code == 200
    # The admin's login still takes staff only.
    admin = Client().post(LOGIN, {"username": "member", "password": PASSWORD})
    assert admin.status_code == 200 and "staff account" in admin.content.decode()
    locked = Client()
    for _ in range(3):
        assert locked.post("/login/", {"username": "member", "password": "wrong"}).status_code == 200
    response = locked.post("/login/", {"username": "member", "password": PASSWORD})
    assert response.status_code == 200 and "Too many failed logins" in response.content.decode()
