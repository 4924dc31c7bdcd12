#!/usr/bin/env bash
# Refresh the vendored JavaScript that shows ipywidgets (e.g. tqdm progress bars) on the
# built pages without any CDN: RequireJS and @jupyter-widgets/html-manager's embed-amd.js.
# Needs npm and network access; the book build itself never does. Run from the repo root:
#   bash scripts/vendor_widgets.sh
# Versions: html-manager 1.x is the one that matches ipywidgets 8.
set -euo pipefail

HTML_MANAGER_VERSION="${HTML_MANAGER_VERSION:-1.0.15}"
REQUIREJS_VERSION="${REQUIREJS_VERSION:-2.3.7}"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="$root/book/_vendor/widgets"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

cd "$work"
npm pack --silent "@jupyter-widgets/html-manager@${HTML_MANAGER_VERSION}" "requirejs@${REQUIREJS_VERSION}" >/dev/null
mkdir hm rj
tar xzf jupyter-widgets-html-manager-*.tgz -C hm
tar xzf requirejs-*.tgz -C rj

rm -rf "$dest"
mkdir -p "$dest"
cp rj/package/require.js "$dest/require.js"
cp hm/package/dist/embed-amd.js "$dest/embed-amd.js"
# Fonts that the bundled CSS loads relative to embed-amd.js (modern browsers use woff2/woff).
cp hm/package/dist/*.woff2 hm/package/dist/*.woff "$dest/"

# The manager falls back to cdn.jsdelivr.net for widget modules it does not bundle
# (base, controls and output are bundled). Make that fallback a same-site relative path, so
# that the built book never asks a CDN for anything; unknown third-party widgets then fail
# to load instead of being fetched.
cdn='"https://cdn.jsdelivr.net/npm/"'
n="$(grep -o "$cdn" "$dest/embed-amd.js" | wc -l)"
if [ "$n" -eq 0 ]; then
    echo "vendor_widgets: CDN default not found in embed-amd.js; check the new version by hand" >&2
    exit 1
fi
sed -i "s#${cdn}#\"./_widget_modules_not_vendored/\"#g" "$dest/embed-amd.js"
# A commented-out CSS @import of a Google font inside the bundle: drop it too.
sed -i 's#/\* @import url(.https://fonts.googleapis.com/css?family=Roboto+Mono.); \*/##g' "$dest/embed-amd.js"
if grep -q -E "cdn\.jsdelivr\.net|fonts\.googleapis\.com" "$dest/embed-amd.js"; then
    echo "vendor_widgets: embed-amd.js still mentions a CDN" >&2
    exit 1
fi

cat > "$dest/VENDORED.txt" <<TXT
Vendored by scripts/vendor_widgets.sh; do not edit by hand.

require.js    RequireJS ${REQUIREJS_VERSION} (npm: requirejs), MIT licence,
              Copyright jQuery Foundation and other contributors.
embed-amd.js  @jupyter-widgets/html-manager ${HTML_MANAGER_VERSION} dist/embed-amd.js, BSD-3-Clause,
              Copyright Project Jupyter Contributors; bundled third-party licences are
              kept in its comments. One change: the CDN fallback for widget modules it
              does not bundle ("https://cdn.jsdelivr.net/npm/") is replaced by a relative
              path, so the page never contacts a CDN; a commented-out Google Fonts
              @import in its CSS is deleted.
*.woff2/*.woff  Font Awesome free fonts bundled with html-manager (SIL OFL 1.1).
TXT
echo "vendored into $dest:"
ls -la "$dest"
