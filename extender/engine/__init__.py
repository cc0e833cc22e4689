"""The placement engine: snapshots of what is placed, site columns, the plugin registry, filter and score. Pure: no Flask, no Kubernetes client."""
