"""The worker: APScheduler runs fixed ticks; the database holds all the work."""
