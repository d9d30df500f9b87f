"""API tokens: get one with a username and password (its key is shown once), list and revoke your own.

``POST /api/v1/tokens/`` with ``{"username", "password", "name"?}`` answers 201 with the token and
its ``key``; the key is not stored (only its SHA-256) and is never shown again. The endpoint is
throttled per client address (``TAXOPOST_TOKEN_RATE``), and failed passwords count toward the
same lock as the admin's login (:mod:`taxopost.access.login_limits`).
"""

from __future__ import annotations

from django.contrib.auth import authenticate
from django.core.cache import caches
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle

from taxopost.access import login_limits
from taxopost.access.models import AccessToken
from taxopost.access.tokens import create_token, revoke


class TokenSerializer(serializers.ModelSerializer):
    class Meta:
        model = AccessToken
        fields = ("id", "name", "prefix", "created_at", "expires_at", "last_used_at", "revoked_at")


class NewTokenSerializer(TokenSerializer):
    key = serializers.CharField(help_text="Send as 'Authorization: Token <key>'. Shown only in this response.")

    class Meta(TokenSerializer.Meta):
        fields = (*TokenSerializer.Meta.fields, "key")


class TokenRequestSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=4096, trim_whitespace=False, style={"input_type": "password"})
    name = serializers.CharField(max_length=255, required=False, default="", allow_blank=True)


class TokenRequestThrottle(ScopedRateThrottle):
    """DRF's scoped rate, per the address the login lock counts by, in a cache of its own.

    DRF's own identity is the client's ``X-Forwarded-For`` header when it sends one: a new
    made-up header per request would never be throttled.
    """

    @property
    def cache(self):
        return caches["rates"]

    def get_ident(self, request) -> str:
        return login_limits.client_address(request)


class TokenViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    queryset = AccessToken.objects.none()  # a user's own tokens, in get_queryset
    serializer_class = TokenSerializer
    throttle_scope = "token"
    lookup_value_regex = "[0-9]+"

    def get_queryset(self):
        if not self.request.user.is_authenticated:  # the schema generator asks without a user
            return AccessToken.objects.none()
        return AccessToken.objects.filter(user=self.request.user).order_by("-created_at", "-id")

    def get_permissions(self):
        return [AllowAny()] if self.action == "create" else [IsAuthenticated()]

    def get_throttles(self):
        return [TokenRequestThrottle()] if self.action == "create" else []

    def get_serializer_class(self):
        return TokenRequestSerializer if self.action == "create" else TokenSerializer

    @extend_schema(
        request=TokenRequestSerializer,
        responses={
            201: NewTokenSerializer,
            400: OpenApiResponse(description="Wrong username or password, or too many failures"),
        },
    )
    def create(self, request, *args, **kwargs):
        """A new token for the user whose username and password these are."""
        given = TokenRequestSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        username, password = given.validated_data["username"], given.validated_data["password"]
        address = login_limits.client_address(request)
        if not login_limits.attempt(username, address):
            raise exceptions.ValidationError({"non_field_errors": [login_limits.locked_message()]})
        user = authenticate(request._request, username=username, password=password)
        if user is None or not user.is_active:  # the attempt stays counted
            raise exceptions.ValidationError({"non_field_errors": ["Unable to log in with these credentials."]})
        login_limits.succeeded(username, address)
        token, key = create_token(user, name=given.validated_data["name"])
        return Response({**TokenSerializer(token).data, "key": key}, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={200: TokenSerializer})
    @action(detail=True, methods=["post"])
    def revoke(self, request, pk=None):
        """Revoke one of your tokens (the one this request uses, too): it stops working at once."""
        token = self.get_object()
        revoke(AccessToken.objects.filter(pk=token.pk))
        token.refresh_from_db()
        return Response(TokenSerializer(token).data)
