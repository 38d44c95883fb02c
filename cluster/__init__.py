"""Config, JetStream topology, local stack, Ray job entrypoint, driver client and the `trade` CLI."""
