"""The API's side of the broker: commands out (outbox), results in."""
