"""The node process: worker pool, lease scheduler, object store, log forwarding."""
