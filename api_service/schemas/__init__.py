"""HTTP bodies: what clients send and receive, with Octavia v2 field names and wrapping."""
