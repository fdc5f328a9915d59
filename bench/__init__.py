"""The benchmark's support modules (scripts/bench runs it): a settings module that adds
a query-counting middleware and a reference view, the service's processes, the data,
the scenarios and the load generator. Nothing in the service imports it."""
