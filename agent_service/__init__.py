"""The lbaas agent: applies load-balancer commands to devices through drivers.

It consumes every command shard queue, runs each command under its device's
lock through the driver the command names, publishes the outcome as a
``Result`` and only then acknowledges the command. It never
touches the database.
"""
