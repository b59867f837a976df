#!/usr/bin/env sh
# Start the app the way a Hugging Face Docker Space expects: 0.0.0.0:8501, with Streamlit's cross-origin
# protection ON: XSRF tokens on uploads, WebSocket connections only from the app's own origin (CORS), and no
# exception details (messages, tracebacks, server paths) in the page — they go to the log only.
#
# The one exception, on a Space only (Hugging Face sets SPACE_ID): the XSRF cookie is SameSite=None (with
# Secure; Spaces serve HTTPS), because huggingface.co shows the app in a cross-site iframe, where a SameSite=Lax
# cookie is not sent and every upload would fail with 403. The XSRF token is still required on every upload,
# and foreign origins are still refused (tests/test_cross_origin.py runs this script with SPACE_ID set).
#
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
if [ -n "${SPACE_ID:-}" ]; then
  same_site=none
else
  same_site=lax
fi
exec streamlit run app/streamlit_app.py \
  --server.port=8501 --server.address=0.0.0.0 \
  --server.headless=true --server.fileWatcherType=none --runner.postScriptGC=false \
  --server.enableXsrfProtection=true --server.enableCORS=true --server.xsrfCookieSameSite="$same_site" \
  --client.showErrorDetails=none \
  --browser.gatherUsageStats=false "$@"
