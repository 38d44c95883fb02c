"""Stage actors (risk, gateway, allocator, venue simulator), the consumer loop they share, and the
pure domain logic they call."""
