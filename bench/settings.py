"""The service's own settings, plus what the benchmark measures with.

- ``bench.middleware.QueryCount`` (outermost) answers every request's SQL query count
  in an ``X-Queries`` header;
- ``bench.urls`` serves the service's URLs and ``bench/reference``, the one-INSERT view
  every scenario is compared with.
"""

from payments_project.settings import *  # noqa: F403
from payments_project.settings import MIDDLEWARE

MIDDLEWARE = ["bench.middleware.QueryCount", *MIDDLEWARE]
ROOT_URLCONF = "bench.urls"

# The sandbox channel refuses to start with DEBUG off (config.E010): it takes no money.
# The benchmark runs with DEBUG off as production does, and still measures a payment
# started through the sandbox beside one started through the Ping++ double.
SILENCED_SYSTEM_CHECKS = [*globals().get("SILENCED_SYSTEM_CHECKS", []), "config.E010"]
