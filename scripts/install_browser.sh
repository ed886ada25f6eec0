#!/usr/bin/env bash
# Install a headless browser for the Space app's browser test: Debian's chromium and its driver.
# (Playwright's own browser download needs the network beyond the package registries; selenium and
# gradio come from the project's `test` extra.) Exits 0 when /usr/bin/chromium and chromedriver
# are there afterwards; prints why not otherwise, and the test skips with that reason.
set -uo pipefail
have() { command -v chromium >/dev/null && command -v chromedriver >/dev/null; }
have && exit 0
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo -n"
command -v apt-get >/dev/null || { echo "no apt-get: install chromium and chromedriver yourself"; exit 1; }
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get install -y -q chromium chromium-driver >/dev/null 2>&1 \
  || { $SUDO apt-get update -q >/dev/null 2>&1 && $SUDO apt-get install -y -q chromium chromium-driver >/dev/null 2>&1; }
have || { echo "apt-get could not install chromium and chromium-driver"; exit 1; }
