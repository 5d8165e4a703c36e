"""Jobs: submit, placement, dispatch by lease, liveness, retries, output and live events."""
