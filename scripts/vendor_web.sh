#!/usr/bin/env bash
# Re-create api/static/vendor from the npm registry (the page needs no CDN at run time).
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
(cd "$tmp" && npm pack --silent leaflet@1.9.4 topojson-client@3.1.0 world-atlas@2.0.2 >/dev/null && for f in *.tgz; do mkdir "${f%.tgz}" && tar xzf "$f" -C "${f%.tgz}"; done)
dst=api/static/vendor
mkdir -p "$dst/leaflet"
cp -r "$tmp"/leaflet-1.9.4/package/dist/{leaflet.js,leaflet.css,images} "$dst/leaflet/"
cp "$tmp"/leaflet-1.9.4/package/LICENSE "$dst/leaflet/LICENSE"
cp "$tmp"/topojson-client-3.1.0/package/dist/topojson-client.min.js "$dst/"
cp "$tmp"/topojson-client-3.1.0/package/LICENSE "$dst/topojson-client.LICENSE"
cp "$tmp"/world-atlas-2.0.2/package/countries-110m.json "$dst/"
cp "$tmp"/world-atlas-2.0.2/package/LICENSE "$dst/world-atlas.LICENSE"
rm -rf "$tmp"
