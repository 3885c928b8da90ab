"""The alerter's adapters: channel senders (and, after the move, the process, store, webhooks)."""
