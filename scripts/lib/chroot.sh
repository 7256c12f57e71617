# Debian chroots for the suites on other PostgreSQL majors: trixie (17) and
# sid (18), made with debootstrap under build/chroots/<suite> and kept there.
# Each holds Debian's packages only: scripts/install-deps, run inside, picks
# the release's PostgreSQL. The cache key is the suite, the mirror, install-deps
# and _WF_CHROOT_LAYOUT, so a changed package list makes the chroot anew.
#   source scripts/lib/chroot.sh
#   wf_chroot_ensure trixie           # debootstrap + packages, when missing or stale
#   wf_chroot_sync trixie             # copy of the checkout at /workflow inside it
#   wf_chroot_run trixie CMD...       # CMD inside, with /proc /dev /sys mounted
# The mounts live in a private mount namespace (unshare), so they end with CMD
# and never leak into the host, whatever happens to CMD.
_wf_ch_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
WF_CHROOT_MIRROR=${WF_CHROOT_MIRROR:-http://deb.debian.org/debian}

wf_chroot_dir() { echo "$_wf_ch_root/build/chroots/$1"; }

# Bump when wf_chroot_ensure sets a chroot up differently.
_WF_CHROOT_LAYOUT=1
_wf_chroot_key() {
  { echo "$1 $WF_CHROOT_MIRROR $_WF_CHROOT_LAYOUT"; cat "$_wf_ch_root/scripts/install-deps"; } |
    sha256sum | cut -c1-16
}

# Refuse to delete a tree something is still mounted in.
_wf_chroot_rm() {
  [ -e "$1" ] || return 0
  if grep -q " $1/" /proc/self/mountinfo; then echo "mounts left under $1" >&2; return 1; fi
  rm -rf "$1"
}

wf_chroot_ensure() {
  local suite=$1 dir key
  dir=$(wf_chroot_dir "$suite"); key=$(_wf_chroot_key "$suite")
  [ -f "$dir/.wf-key" ] && [ "$(cat "$dir/.wf-key")" = "$key" ] && return 0
  echo "making the $suite chroot in $dir (key $key)"
  command -v debootstrap >/dev/null || apt-get install -y -qq debootstrap >/dev/null || return 1
  _wf_chroot_rm "$dir" || return 1
  # A finished debootstrap (marker) is kept across a failed package step.
  if [ ! -f "$dir.tmp/.wf-debootstrap-ok" ]; then
    _wf_chroot_rm "$dir.tmp" || return 1
    mkdir -p "$(dirname "$dir")"
    debootstrap --variant=minbase "$suite" "$dir.tmp" "$WF_CHROOT_MIRROR" >"$dir.debootstrap.log" 2>&1 ||
      { tail -20 "$dir.debootstrap.log" >&2; return 1; }
    touch "$dir.tmp/.wf-debootstrap-ok"
  fi
  # No service starts inside, and the packages make no cluster of their own.
  printf '#!/bin/sh\nexit 101\n' >"$dir.tmp/usr/sbin/policy-rc.d"; chmod 755 "$dir.tmp/usr/sbin/policy-rc.d"
  mkdir -p "$dir.tmp/etc/postgresql-common"
  echo "create_main_cluster = false" >"$dir.tmp/etc/postgresql-common/createcluster.conf"
  # The mirror may serve a sid whose Release file is past its Valid-Until.
  echo 'Acquire::Check-Valid-Until "false";' >"$dir.tmp/etc/apt/apt.conf.d/99wf-valid-until"
  cp /etc/resolv.conf "$dir.tmp/etc/resolv.conf" 2>/dev/null || true
  install -m 755 "$_wf_ch_root/scripts/install-deps" "$dir.tmp/usr/local/sbin/wf-install-deps"
  _wf_chroot_exec "$dir.tmp" /usr/local/sbin/wf-install-deps >"$dir.install.log" 2>&1 ||
    { tail -20 "$dir.install.log" >&2; return 1; }
  _wf_chroot_exec "$dir.tmp" apt-get clean
  echo "$key" >"$dir.tmp/.wf-key"
  mv "$dir.tmp" "$dir"
}

# The checkout, without its build outputs, at /workflow in the chroot. rsync
# keeps the chroot's own objects (excluded names are never deleted), so the
# next make there is incremental, and the host's objects never mix in.
wf_chroot_sync() {
  local dir; dir=$(wf_chroot_dir "$1")
  mkdir -p "$dir/workflow"
  rsync -a --delete --exclude=/build/ --exclude=/.git --exclude='*.o' --exclude='*.so' \
    --exclude='*.bc' --exclude=.deps/ --exclude=/results/ --exclude='/regression.*' \
    --exclude='/workflow--*.sql' --exclude=node_modules/ "$_wf_ch_root/" "$dir/workflow/"
}

_wf_chroot_exec() {  # rootdir CMD...
  local dir=$1; shift
  unshare --mount --propagation private -- bash -c '
    dir=$1; shift
    mount --rbind /proc "$dir/proc" && mount --rbind /sys "$dir/sys" &&
      mount --rbind /dev "$dir/dev" || exit 1
    exec chroot "$dir" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM=dumb \
      PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$@"
  ' wf-chroot "$dir" "$@"
}

wf_chroot_run() {  # suite CMD...
  local suite=$1; shift
  _wf_chroot_exec "$(wf_chroot_dir "$suite")" "$@"
}
