"""The dashboard that ``drain serve`` serves: ``GET /`` and its pages, ``/api/...`` JSON.

Server-rendered HTML (Jinja2, autoescaped) and charts drawn by uPlot (vendored under
``static/vendor/uplot`` at a pinned version, with its licence) from the JSON endpoints.
Modules: ``views`` (routes, viewer credentials, security headers), ``registry`` (the pages
and endpoints), ``pages`` (their types), one module per page (``overview``, ``rollups``,
``tags``, ``quarantine``), ``rollupdata`` (any rollup's rows, newest buckets live),
``charts`` (chart JSON), ``db`` (read-only transactions), ``ranges`` (the filters).
docs/dashboard.md describes it for users.
"""

from drain.web.dashboard.views import Dashboard, add_dashboard

__all__ = ["Dashboard", "add_dashboard"]
