"""Model backends: the only package that talks to upstream model servers or runs local models."""
