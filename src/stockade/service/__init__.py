"""Service-side storage and accounting: tenants, API keys, quotas, rate limits, audit log."""
