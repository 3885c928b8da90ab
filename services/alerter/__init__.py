"""The alerter's adapters: its checkpoint in Redis and the cheap reading of whose a relayed
message is, for alerters that share the tenants (docs/ALERTS.md, "Checkpoint and scale-out")."""
