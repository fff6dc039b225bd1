"""gpufleet: orchestrate LLM inference on GPU fleets."""

__version__ = "0.1.0"
