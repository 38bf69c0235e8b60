"""HTTP only: parse, call a service, map the result."""
