from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from taxopost.access.models import Membership
from taxopost.access.roles import VIEWER
from taxopost.access.tokens import create_token
from tests.web import platform, staff, sync_jobs, user  # noqa: F401


@pytest.fixture
def anonymous() -> APIClient:
    return APIClient()


@pytest.fixture
def reader(user, platform) -> APIClient:  # noqa: F811
    """A user who may view the platform's project and nothing more (token auth)."""
    Membership.objects.create(user=user, project=platform.project, role=VIEWER)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {create_token(user)[1]}")
    return client


@pytest.fixture
def admin_client_api(staff) -> APIClient:  # noqa: F811
    """A superuser (session auth, as the admin's pages use it)."""
    client = APIClient()
    client.force_login(staff)
    return client


@pytest.fixture
def clients(anonymous, reader, admin_client_api) -> dict[str, APIClient]:
    return {"anonymous": anonymous, "user": reader, "staff": admin_client_api}
