#!/usr/bin/env sh
# Start the app the way a Hugging Face Docker Space expects: 0.0.0.0:8501, uploads allowed.
# Run data goes to /data (persistent storage) when it is mounted and writable, else under the app folder.
set -e
if [ -z "${UNLEARNING_LAB_RUNS:-}" ]; then
  if [ -d /data ] && [ -w /data ]; then
    export UNLEARNING_LAB_RUNS=/data/runs
  else
    export UNLEARNING_LAB_RUNS="$PWD/runs"
  fi
fi
mkdir -p "$UNLEARNING_LAB_RUNS"
exec streamlit run app/streamlit_app.py \
  --server.port=8501 --server.address=0.0.0.0 \
  --server.headless=true --server.fileWatcherType=none --server.enableXsrfProtection=false --server.enableCORS=false \
  --browser.gatherUsageStats=false "$@"
