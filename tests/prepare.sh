#!/usr/bin/env bash
# Makes a Debian machine ready for the README's test command: installs what the build and the
# end-to-end tests need if it is missing (as root: the tests start real OpenSSH servers in
# private mount namespaces). Safe to run again: it installs nothing that is already there.
#
#   bash tests/prepare.sh && cargo build --workspace && cargo test --workspace
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
  echo "tests/prepare.sh: run as root (the end-to-end tests need root too: each test host is an" >&2
  echo "sshd in a private mount namespace)" >&2
  exit 1
fi

# Build: pkg-config and libssl-dev (libssh2, openssl-sys). Tests: a real sshd and ssh-keygen,
# git to make fixture repositories, unshare/mount/setpriv/prlimit from util-linux,
# openssl (a test host's password hash), bubblewrap, the sandbox of release-server hooks (docs/security.md), Chromium for the web
# console's browser story and a CJK font so its screenshots show the Chinese pages. (The
# console itself is built with Node.js 20.19+ and npm, which Debian's packages are too old for.)
packages=(pkg-config libssl-dev openssh-server openssh-client git util-linux openssl bubblewrap chromium fonts-wqy-zenhei)
# (The PostgreSQL and cluster passes also need PostgreSQL and Redis running on loopback, with
# psql and redis-cli: see the README; `.ci/run` starts them when they are installed.)

if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
  echo "tests/prepare.sh: not a Debian-like system; install these yourself: ${packages[*]}" >&2
  echo "(the tests need /usr/sbin/sshd, ssh-keygen, git and unshare)" >&2
  exit 1
fi

need=()
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
if [ "${#need[@]}" -gt 0 ]; then
  echo "tests/prepare.sh: installing ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# sshd refuses to start without its privilege-separation directory.
mkdir -p /run/sshd
