"""Who may do what on which project: memberships with roles, API tokens, login limits.

Every entrance (the admin, the REST API, the review and evaluation pages) asks
:mod:`taxopost.access.roles` and nothing else: ``can(user, action, project)`` for one object,
``projects_where(user, action)`` and ``scoped(queryset, user, path)`` for lists. docs/access.md
describes the model.
"""
