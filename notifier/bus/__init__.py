"""The bus: envelopes, transports, the relay, publishing and signatures."""
