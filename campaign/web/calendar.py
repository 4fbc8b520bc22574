"""Calendar week and month views, and the private iCal feed of planned posts."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("calendar", __name__)
