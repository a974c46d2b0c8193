#!/usr/bin/env bash
# Debian packages the tests need: Chromium for the browser tests (driven by Python playwright, no download).
set -euo pipefail
if ! command -v chromium >/dev/null 2>&1; then
  echo "widespec: installing Debian chromium for the browser tests" >&2
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -q >&2
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -q --no-install-recommends chromium >&2
fi
