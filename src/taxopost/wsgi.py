import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "taxopost.settings")
application = get_wsgi_application()

from taxopost.security import refuse_public_key, warn_if_insecure  # noqa: E402  (needs the settings loaded above)

refuse_public_key()  # a served deployment on the public key would let anyone forge its signatures
warn_if_insecure()
