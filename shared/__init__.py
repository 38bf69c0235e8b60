"""The contract between ``api_service`` and ``agent_service``.

Message schemas, status enums, the AMQP topology, settings and logging. This
package imports neither service.
"""
