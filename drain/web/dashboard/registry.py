"""The dashboard's pages and ``/api/...`` endpoints, in navigation order.

Adding a page is a module that defines its loader, :class:`~drain.web.dashboard.pages.Page`
and :class:`~drain.web.dashboard.pages.Endpoint` (see drain.web.dashboard.quarantine for a
small one), a template in ``templates/``, and one entry in :data:`PAGES` below; the views
(drain.web.dashboard.views) route, authenticate, filter and render every entry the same
way. docs/dashboard.md walks through it.
"""

from __future__ import annotations

from drain.web.dashboard import overview, quarantine, rollups, tags
from drain.web.dashboard.pages import Endpoint, Page

__all__ = ["ENDPOINTS", "NAV", "PAGES"]

#: every page; a path with ``{name}`` is routed after the fixed ones
PAGES: tuple[Page, ...] = (
    overview.PAGE,
    rollups.LIST_PAGE,
    rollups.PAGE,
    tags.PAGE,
    quarantine.PAGE,
)

#: every endpoint, each once (a ``.csv`` path before the same path without it)
ENDPOINTS: tuple[Endpoint, ...] = tuple(
    dict.fromkeys(endpoint for page in PAGES for endpoint in page.endpoints)
)

#: the navigation bar: (path, title) of the pages that are their own entry
NAV: tuple[tuple[str, str], ...] = tuple((p.path, p.title) for p in PAGES if p.nav is None)
