"""Local processes: simulated engines started and stopped on this machine."""
