"""Wire contracts: the HTTP API's bodies and the usage messages workers send, shared by the
API, the use cases that keep answers for replay, and the worker client."""
