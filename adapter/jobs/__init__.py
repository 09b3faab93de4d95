"""The scheduler and every periodic job, defined in one place (``scheduler.JOBS``)."""
