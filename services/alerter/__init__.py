"""The alerter's adapters: where alerts are stored, how they are delivered, and the secrets
and signed links that go with them."""
