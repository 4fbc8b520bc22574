"""Settings for planning: each channel's queue slots and the academic year's key dates."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("planning_settings", __name__)
