"""Scheduling: rules, the schedule book, APScheduler wiring, priority resolution, quiet hours."""
