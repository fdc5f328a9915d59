"""Settings for the test suite: the service's own, made hermetic and fast.

A developer's .env is never read; the database comes from DATABASE_URL (SQLite by
default, MariaDB when the test command sets it).
"""

import os

os.environ["DJANGO_ENV_FILE"] = ""

from payments_project.settings import *  # noqa: F403

SECURE_SSL_REDIRECT = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
