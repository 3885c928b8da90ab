"""`salespulse backup` / `restore`: the event store's database to one checksummed file and back."""
