"""DRF authentication by ``Authorization: Token <key>`` against the hashed, expiring tokens."""

from __future__ import annotations

from rest_framework import authentication, exceptions

from taxopost.access.models import AccessToken
from taxopost.access.tokens import find_token, touch


class TokenAuthentication(authentication.TokenAuthentication):
    """DRF's header parsing and ``WWW-Authenticate: Token``; the key is looked up by its digest."""

    model = AccessToken

    def authenticate_credentials(self, key: str):
        token = find_token(key)
        if token is None:
            raise exceptions.AuthenticationFailed("Invalid token.")
        if token.revoked_at is not None:
            raise exceptions.AuthenticationFailed("Token revoked.")
        if not token.is_valid:
            raise exceptions.AuthenticationFailed("Token expired.")
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed("User inactive or deleted.")
        touch(token)
        return token.user, token
