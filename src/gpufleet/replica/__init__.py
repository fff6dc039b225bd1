"""The simulated engine served live: the engine model behind vLLM's HTTP surface."""
