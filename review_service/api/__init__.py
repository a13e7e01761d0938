"""The Review as a gRPC service: the servicer, its wire conversion, and the server that
wires adapters into the use cases."""
