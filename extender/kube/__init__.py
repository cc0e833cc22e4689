"""The Kubernetes adapters: cluster access (`config`), the node/pod watch cache (`cache`), the binder
(`binder`). Everything that calls the API server lives here; `ApiException` never leaves (`api`)."""
