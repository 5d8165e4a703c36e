"""The OpenAI-compatible /v1 gateway: routing over the serving pool, failover, streaming, token billing."""
