"""The HTTP side of lbaas: validates requests, stores desired state, publishes commands."""
