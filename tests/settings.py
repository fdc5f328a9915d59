"""Settings for the test suite: the service's own, made hermetic and fast.

A developer's .env is never read; the database comes from DATABASE_URL (SQLite by
default, MariaDB when the test command sets it).
"""

import os

os.environ["DJANGO_ENV_FILE"] = ""

from payments_project.settings import *  # noqa: F403

SECURE_SSL_REDIRECT = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# DEBUG stays off as in production, so the key must pass the production check.
SECRET_KEY = "test-suite-signing-key-that-is-long-enough-for-the-production-check"
