"""ftreview.core: what every ftreview service stands on, and what clients share with them.

The server lifecycle (`server`), the status interceptor and its table (`interceptor`,
`status`, `errors`), transport security (`security`), activities (`activity_hub`,
`activity_service`, over `fanout`), the conversation model with its one flattener
(`conversation`), wire conversions (`wire`) and the shared numbers (`defaults`).

It imports only the generated stubs and gRPC libraries: never a service, never Textual.
"""
