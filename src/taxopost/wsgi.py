import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "taxopost.settings")
application = get_wsgi_application()

from taxopost.security import warn_if_insecure  # noqa: E402  (needs the settings loaded above)

warn_if_insecure()
