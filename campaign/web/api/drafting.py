"""Campaigns, messages, variants and posts through the API."""

from __future__ import annotations
