"""The domain: inventory, the VM request of a pod, capacity arithmetic, what a bound pod uses up."""
