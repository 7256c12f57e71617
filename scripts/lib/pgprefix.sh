# A private, relocated copy of the Debian PostgreSQL 15 installation, one per
# checkout, so the tests install the extension there (make install DESTDIR=)
# and never into the system's directories. PostgreSQL finds its share/ and
# lib/ relative to its own binary, so the copy serves our build alone.
#   source scripts/lib/pgprefix.sh; wf_pg_prefix_ensure
#   -> WF_PG_PREFIX, WF_PG_BINDIR
_wf_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
WF_PG_PREFIX=${WF_PG_PREFIX:-/tmp/workflow-pg-$(echo "$_wf_root" | md5sum | cut -c1-10)}
WF_PG_BINDIR=$WF_PG_PREFIX$(pg_config --bindir)
export WF_PG_PREFIX WF_PG_BINDIR

wf_pg_prefix_ensure() {
  local bindir sharedir libdir
  bindir=$(pg_config --bindir); sharedir=$(pg_config --sharedir); libdir=$(pg_config --pkglibdir)
  # The copy is current when it was made from this very server build (a
  # package upgrade keeps the package's old mtimes, so compare versions) with
  # the same extension packages installed (e.g. pg_cron added later).
  local stamp
  stamp="$("$bindir/postgres" --version) $(ls "$sharedir/extension" | md5sum | cut -c1-12)"
  [ -x "$WF_PG_BINDIR/postgres" ] && [ -f "$WF_PG_PREFIX/.version" ] &&
    [ "$(cat "$WF_PG_PREFIX/.version")" = "$stamp" ] && return 0
  rm -rf "$WF_PG_PREFIX"
  mkdir -p "$WF_PG_PREFIX$(dirname "$bindir")" "$WF_PG_PREFIX$(dirname "$sharedir")" \
           "$WF_PG_PREFIX$(dirname "$libdir")"
  cp -a "$(dirname "$bindir")/." "$WF_PG_PREFIX$(dirname "$bindir")/"
  cp -a "$sharedir" "$WF_PG_PREFIX$(dirname "$sharedir")/"
  [ -d "$WF_PG_PREFIX$libdir" ] || cp -a "$libdir" "$WF_PG_PREFIX$(dirname "$libdir")/"
  chmod -R a+rX "$WF_PG_PREFIX"
  echo "$stamp" >"$WF_PG_PREFIX/.version"
}
