#!/usr/bin/env bash
# Renders a `dpt report` page in headless Chromium and checks it: the file is self-contained (no
# scripts, no external URLs), every inline <svg> parses as XML, Chromium's DOM holds the same
# number of <svg> elements, and a full-page screenshot is written for a person to look at.
# NOT part of CI: Chromium is large (Debian: `apt-get install -y chromium`). Run it by hand:
#   scripts/check_report.sh RUN_DIR/report.html [SCREENSHOT.png [WINDOW_HEIGHT]]
set -euo pipefail

if [[ $# -lt 1 || $# -gt 3 ]]; then
  echo "usage: $0 REPORT.html [SCREENSHOT.png [WINDOW_HEIGHT]]" >&2
  exit 2
fi
page=$(realpath "$1")
shot=${2:-/tmp/dpt_report.png}
height=${3:-4200}
chrome=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
if [[ -z "$chrome" ]]; then
  echo "no chromium found; install it with: apt-get install -y chromium" >&2
  exit 2
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "page: $page ($(wc -c <"$page") bytes)"

# 1. Self-contained: no scripts, no external loads (the SVG namespace URI is not a load).
if grep -qi '<script' "$page"; then
  echo "FAIL: the page has a <script> element" >&2
  exit 1
fi
external=$(grep -oiE '(src|href)="(https?:)?//[^"]*"|url\((https?:)?//[^)]*\)|@import' "$page" || true)
if [[ -n "$external" ]]; then
  echo "FAIL: external references: $external" >&2
  exit 1
fi
echo "ok: no scripts, no external references"

# 2. Every inline SVG is well-formed XML.
svg_count=$(python3 - "$page" <<'EOF'
import re, sys, xml.etree.ElementTree as ET
html = open(sys.argv[1], encoding="utf-8").read()
svgs = re.findall(r"<svg\b.*?</svg>", html, re.S)
for i, svg in enumerate(svgs):
    try:
        ET.fromstring(svg)
    except ET.ParseError as e:
        sys.exit(f"FAIL: svg {i} is not well-formed: {e}")
print(len(svgs))
EOF
)
echo "ok: $svg_count inline <svg> elements parse as XML"

# 3. Chromium's DOM has them too (offline: no network is needed for a self-contained page).
flags=(--headless --no-sandbox --disable-gpu --hide-scrollbars --user-data-dir="$work/profile")
"$chrome" "${flags[@]}" --dump-dom "file://$page" >"$work/dom.html" 2>"$work/chrome.log"
dom_svgs=$(grep -o '<svg' "$work/dom.html" | wc -l)
dom_paths=$(grep -oE '<(path|rect|circle)' "$work/dom.html" | wc -l)
if [[ "$dom_svgs" -ne "$svg_count" ]]; then
  echo "FAIL: the DOM has $dom_svgs <svg> elements, the file $svg_count" >&2
  exit 1
fi
echo "ok: Chromium's DOM has $dom_svgs <svg> elements with $dom_paths path/rect/circle shapes"

# 4. A screenshot, tall enough for the whole page at a 1200 px window width.
"$chrome" "${flags[@]}" --screenshot="$shot" --window-size=1200,"$height" "file://$page" \
  >>"$work/chrome.log" 2>&1
if [[ ! -s "$shot" ]]; then
  echo "FAIL: no screenshot written" >&2
  cat "$work/chrome.log" >&2
  exit 1
fi
echo "ok: screenshot $shot ($(wc -c <"$shot") bytes); look at it"
