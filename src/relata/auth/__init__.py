"""Access control: users, web sessions, API keys, permissions, and the audit log."""
