"""Writing and scheduling posts, the post page with its history, and approvals."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("planning", __name__)
