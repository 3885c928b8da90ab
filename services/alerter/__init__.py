"""The alerter's adapters: where alerts are stored, how they are delivered, the secrets and
signed links that go with them, and its checkpoint for alerters that share the tenants."""
