"""The admin routes of the API (see :mod:`notifier.web.api`)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["admin"])
