"""Renderers: fleet.yaml → Kubernetes manifests, Helm chart, Terraform, Grafana dashboard.

Entry point: `gpufleet.deploy.render.render`. Kept empty of imports, because
``gpufleet.config`` imports `gpufleet.deploy.settings` (the ``deploy:`` section).
"""
