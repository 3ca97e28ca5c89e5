"""``make bench``: the deployments service's create endpoint against a bare FastAPI baseline."""
