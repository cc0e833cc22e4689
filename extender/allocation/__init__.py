"""The global scheduler's allocation API: request, replica planner, store, service, routes."""
