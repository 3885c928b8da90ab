"""Who is asking and what they may see: credentials, roles and their scopes."""
