#!/usr/bin/env bash
# Follow the Dockerfile's steps without Docker (no engine runs on these machines), on a fresh checkout and a
# fresh virtual environment, then start the app through the image's entrypoint, wait for the health check
# and load the page in headless Chromium.
#
#   bash scripts/smoke_fresh_install.sh [ARTIFACT_DIR]
#   SMOKE_VENV=/path/to/venv bash scripts/smoke_fresh_install.sh   # reuse a venv just built from requirements.txt
#
# CI's own .ci/run already builds a fresh venv from requirements.txt on a fresh clone (≈ 5.5 GB of torch wheels,
# minutes); the test passes that venv as SMOKE_VENV so the install is not paid twice. Without it, this script
# builds its own.
#
# Differences from the image, on purpose: pip takes torch from this machine's wheels rather than PyTorch's
# CPU index (not reachable here), and the app runs as the current user. Everything else is the same:
# requirements.txt, the copied folders, docker/entrypoint.sh, port 8501, /_stcore/health.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
ARTIFACTS="${1:-$ROOT/artifacts}"
mkdir -p "$ARTIFACTS"
WORK="$(mktemp -d)"
PORT=8501
cleanup() { [ -n "${APP_PID:-}" ] && kill "$APP_PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT

step() { printf '\n== %s (%ss)\n' "$1" "$SECONDS"; }

step "fresh checkout of HEAD"
git clone --quiet --no-hardlinks "$ROOT" "$WORK/repo"
cd "$WORK/repo"
# The image copies exactly these; anything else in the checkout is removed so a missing COPY would show.
mkdir "$WORK/image"
for path in $(grep -E '^COPY ' Dockerfile | sed -E 's/^COPY (--chown=[^ ]+ )?([^ ]+) .*/\2/'); do
  cp -r "$path" "$WORK/image/"
done
cd "$WORK/image"

if [ -n "${SMOKE_VENV:-}" ]; then
  step "reuse the fresh virtual environment $SMOKE_VENV, checked against requirements.txt"
  ln -s "$SMOKE_VENV" "$WORK/venv"
  "$WORK/venv/bin/python" -m pip install -q --dry-run -r requirements.txt 2>&1 | grep -q "Would install" \
    && { echo "$SMOKE_VENV lacks some of requirements.txt" >&2; exit 1; }
else
  step "fresh virtual environment + requirements.txt"
  python3 -m venv "$WORK/venv"
  "$WORK/venv/bin/python" -m pip install -q --upgrade pip >/dev/null
  "$WORK/venv/bin/python" -m pip install -q -r requirements.txt
fi

step "start through docker/entrypoint.sh"
if curl -s "http://127.0.0.1:$PORT/_stcore/health" >/dev/null 2>&1; then
  echo "port $PORT is busy: stop what runs there first" >&2; exit 1
fi
export PATH="$WORK/venv/bin:$PATH" HOME="$WORK/home" UNLEARNING_LAB_RUNS="$WORK/runs" NUMBA_CACHE_DIR="$WORK/numba"
mkdir -p "$HOME"
./docker/entrypoint.sh > "$ARTIFACTS/smoke-server.log" 2>&1 &
APP_PID=$!
for _ in $(seq 1 120); do
  if curl -sf "http://127.0.0.1:$PORT/_stcore/health" >/dev/null; then break; fi
  if ! kill -0 "$APP_PID" 2>/dev/null; then echo "app exited:"; cat "$ARTIFACTS/smoke-server.log"; exit 1; fi
  sleep 1
done
curl -sf "http://127.0.0.1:$PORT/_stcore/health" >/dev/null || { echo "no health after 120 s"; exit 1; }
echo "healthy after ${SECONDS}s"

step "load the page in headless Chromium"
"$WORK/venv/bin/python" - "$PORT" "$ARTIFACTS" <<'PY'
import sys
from playwright.sync_api import sync_playwright

port, artifacts = sys.argv[1], sys.argv[2]
args = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
with sync_playwright() as p:
    browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=args)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"http://127.0.0.1:{port}/", wait_until="domcontentloaded", timeout=60_000)
    page.get_by_text("Unlearning Lab").first.wait_for(timeout=90_000)
    page.wait_for_timeout(1500)
    page.screenshot(path=f"{artifacts}/smoke-fresh-install.png", full_page=True)
    errors = page.locator("[data-testid='stException']").count()
    browser.close()
if errors:
    sys.exit(f"the page shows {errors} exception(s)")
print("page rendered")
PY
step "done"
