#!/usr/bin/env bash
# Browser test of the live dashboard: starts a real weir job with --serve,
# opens the page in headless Debian chromium (driven by playwright-core) and
# checks that it draws every actor and keeps updating. Expects
# target/release/weir to be built already (cargo build --release).
#
#   bash .ci/browser.sh            # against target/release/weir
#   FAKE=1 bash .ci/browser.sh     # against tests/browser/fake_server.js
#
# Leaves a screenshot in target/dashboard.png.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
apt_install() {
    echo "-- apt-get install $*"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

echo "== browser test: dashboard"
if ! command -v chromium >/dev/null 2>&1; then apt_install chromium fonts-dejavu-core; fi
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then apt_install nodejs npm; fi
echo "-- $(chromium --version 2>/dev/null | head -1), node $(node --version)"

want=$(node -p "require('./tests/browser/package.json').dependencies['playwright-core']")
have=$(node -p "try { require('./tests/browser/node_modules/playwright-core/package.json').version } catch (e) { '' }")
if [ "$want" != "$have" ]; then
    # playwright-core has no dependencies: the exact version pinned in
    # package.json is the whole install, so no lock file is kept.
    echo "-- npm install (playwright-core $want)"
    (cd tests/browser && npm install --no-audit --no-fund --no-package-lock --loglevel=error)
fi

port=$(node -e "const s=require('net').createServer();s.listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")
url="http://127.0.0.1:$port/"
mkdir -p target
log=target/browser-server.log
if [ "${FAKE:-}" = 1 ]; then
    node tests/browser/fake_server.js "$port" >"$log" 2>&1 &
else
    if [ ! -x target/release/weir ]; then
        echo "FAIL target/release/weir is missing: run cargo build --release first"
        exit 1
    fi
    target/release/weir run wl1 --events 200000000 --throttle 2000000 --serve "127.0.0.1:$port" >"$log" 2>&1 &
fi
server=$!
cleanup() { kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; }
trap cleanup EXIT

# Wait (with a deadline) until the page answers.
if ! node -e "
const deadline = Date.now() + 30000;
(async () => {
  while (Date.now() < deadline) {
    try { const r = await fetch('$url', { signal: AbortSignal.timeout(1000) }); if (r.ok) process.exit(0); } catch (e) {}
    await new Promise((r) => setTimeout(r, 200));
  }
  process.exit(1);
})();"; then
    echo "FAIL the dashboard did not answer on $url within 30 s; server log:"
    tail -n 30 "$log"
    exit 1
fi

rc=0
timeout 120 node tests/browser/dashboard.test.js "$url" || rc=$?
if [ "$rc" != 0 ]; then
    echo "-- server log (tail):"
    tail -n 20 "$log"
fi
exit "$rc"
