"""The live control plane: the autoscaling loop, its actuators and preemption handling.

An I/O edge around the pure policy (`gpufleet.sim.autoscale.AutoscalePolicy`, the same
object the simulator steps on virtual time):

- `snapshot`: the gateways' ``/admin/endpoints`` and ``/metrics`` → `FleetSignals`;
- `gateways`: the HTTP client of every configured gateway (gather, drain);
- `actuator`: the `Actuator` protocol; implementations in `k8s_actuator` (scale
  subresource of the rendered engine Deployments) and `gpufleet.local.actuator`
  (simulated engine processes of ``gpufleet up``);
- `notices`: where preemption notices come from (node taints) and where a replacement
  goes; `node_watch` turns node events into notices; `preemption` acts on them;
- `loop`: evaluate the policy every interval, apply, log, export metrics;
- `service`: ``gpufleet controller``.
"""
