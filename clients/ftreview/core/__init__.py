"""ftreview.core: what every ftreview service stands on, and what clients share with them.

The server lifecycle (`server`), the status interceptor and its table (`interceptor`,
`status`, `errors`), transport security and every client channel (`security`), activities
(`activity_hub`, `activity_service`, over `fanout`), the conversation model with its one
flattener (`conversation`), wire conversions (`wire`), and the shared defaults with the one
reader of the config file (`defaults`).

It imports only the generated stubs, gRPC libraries and json-five: never a service, never
Textual.
"""
