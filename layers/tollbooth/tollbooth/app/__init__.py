"""The application: the use cases, the ports they need (``ports``), and the one loop that
writes every mutation. Imports the domain and its own ports, never an adapter."""
