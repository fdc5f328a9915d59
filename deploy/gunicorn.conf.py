"""gunicorn settings: gunicorn -c deploy/gunicorn.conf.py payments_project.wsgi

Read from the same declared variables as the service (payments_project/config.py):
WEB_CONCURRENCY workers, LOG_FORMAT and LOG_LEVEL for gunicorn's error log (stderr)
and access log (stdout), formatted and redacted like the service's own records.
"""

import multiprocessing
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
if str(PROJECT) not in sys.path:
    sys.path.insert(0, str(PROJECT))

# Not "config": gunicorn would take that name for its own setting.
from payments_project import config as declaration  # noqa: E402
from payments_project.logging import gunicorn_logging_config  # noqa: E402

declaration.read_env_file()
ENV = declaration.load()

wsgi_app = "payments_project.wsgi:application"
chdir = str(PROJECT)
bind = ["0.0.0.0:8000"]
workers = ENV["WEB_CONCURRENCY"] or multiprocessing.cpu_count() * 2 + 1
# A provider call gives up after 10 s to connect and 30 s to read; a request gets more.
timeout = 60
graceful_timeout = 30
keepalive = 5
# The reverse proxy in front terminates TLS and sets X-Forwarded-Proto.
forwarded_allow_ips = "*"

loglevel = ENV["LOG_LEVEL"].lower()
accesslog = "-"
errorlog = "-"
access_log_format = '%(h)s "%(r)s" %(s)s %(B)s %(M)sms "%(f)s" "%(a)s"'
logconfig_dict = gunicorn_logging_config(log_format=ENV["LOG_FORMAT"], level=ENV["LOG_LEVEL"])
