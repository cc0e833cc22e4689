"""Running it: gunicorn, TLS, request limits, metrics, logs, decision logging."""
