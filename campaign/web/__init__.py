"""The web layer: one blueprint per area. Nothing outside this package imports it."""
