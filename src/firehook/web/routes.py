"""The UI's router: every page module's routes, under ``/`` (the API lives under ``/api``)."""

from __future__ import annotations

from fastapi import APIRouter

from firehook.web import (
    views_activities,
    views_assets,
    views_dryrun,
    views_integrations,
    views_projects,
    views_session,
    views_storage,
)
from firehook.web.render import UIRoute

router = APIRouter(route_class=UIRoute, include_in_schema=False)
for module in (views_assets, views_session, views_projects, views_activities, views_integrations, views_storage,
               views_dryrun):
    router.include_router(module.router)
