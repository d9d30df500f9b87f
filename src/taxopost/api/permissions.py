"""Who may do what: any logged-in user reads; only staff create, cancel or revert jobs."""

from __future__ import annotations

from rest_framework.permissions import SAFE_METHODS, BasePermission


class ReadLoggedInWriteStaff(BasePermission):
    message = "Creating, canceling and reverting jobs requires a staff account."

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False
        return request.method in SAFE_METHODS or user.is_staff
