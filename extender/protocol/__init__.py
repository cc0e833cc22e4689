"""The kube-scheduler extender protocol: wire types, the service that answers each verb, its HTTP routes."""
