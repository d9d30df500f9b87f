from __future__ import annotations

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.web import platform, staff, sync_jobs, user  # noqa: F401


@pytest.fixture
def anonymous() -> APIClient:
    return APIClient()


@pytest.fixture
def reader(user) -> APIClient:  # noqa: F811
    """A logged-in user who is not staff (token auth)."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


@pytest.fixture
def admin_client_api(staff) -> APIClient:  # noqa: F811
    """A staff user (session auth, as the admin's pages use it)."""
    client = APIClient()
    client.force_login(staff)
    return client


@pytest.fixture
def clients(anonymous, reader, admin_client_api) -> dict[str, APIClient]:
    return {"anonymous": anonymous, "user": reader, "staff": admin_client_api}
