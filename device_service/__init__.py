"""``lbaas-device``: the management daemon of a HAProxy device host.

It runs one HAProxy process (master-worker) per load balancer, each in its own
directory under the state directory; checks every configuration with
``haproxy -c`` before it replaces the running one; reloads without dropping
connections; supervises and adopts the processes; and serves health and
counters read from each instance's stats socket. Its HTTP API is
:mod:`shared.device_api`. It imports only ``shared``.
"""
