"""Bulk import of posts from CSV (preview, then save all or chosen rows) and CSV export."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("post_csv", __name__)
