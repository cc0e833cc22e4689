"""The `site-extender` command line."""
