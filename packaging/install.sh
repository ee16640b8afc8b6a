#!/usr/bin/env bash
# Installs (or removes) control-plane on a systemd machine:
#   /usr/local/bin/control-plane                 the executable (npm run build)
#   /etc/systemd/system/control-plane.service    the unit
#   /etc/logrotate.d/control-plane               the logrotate config (file sink)
#   /etc/control-plane/control-plane.env         settings, from the example; never overwritten
# then `systemctl daemon-reload`. It does not enable, start or restart the
# service, and never touches the secret, the state or the logs.
#
#   packaging/install.sh [--root DIR] [--binary FILE]    install or upgrade (idempotent)
#   packaging/install.sh [--root DIR] --uninstall        stop, disable, remove the files above except the env file
#
# --root DIR (or DESTDIR=DIR): install into a system image rooted at DIR, e.g.
# a container tree; systemctl is then not called (run `systemctl
# daemon-reload` inside it). --binary: the executable to install (default:
# dist/control-plane next to this packaging/ directory).
set -euo pipefail

# Usage: the comment block at the top of this file.
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
die() { echo "install.sh: $*" >&2; exit 1; }

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=${DESTDIR:-/}
binary="$here/../dist/control-plane"
action=install
while [ $# -gt 0 ]; do
  case "$1" in
    --root) [ $# -ge 2 ] || die "--root needs a directory"; root=$2; shift 2;;
    --root=*) root=${1#--root=}; shift;;
    --binary) [ $# -ge 2 ] || die "--binary needs a file"; binary=$2; shift 2;;
    --binary=*) binary=${1#--binary=}; shift;;
    --uninstall) action=uninstall; shift;;
    -h|--help) usage; exit 0;;
    *) usage >&2; die "unknown argument: $1";;
  esac
done

[ -d "$root" ] || die "--root $root: no such directory"
root=$(cd "$root" && pwd)
# Paths inside the target system; $root is "" for the running system.
[ "$root" = / ] && root=""
live_system=false
if [ -z "$root" ]; then
  [ "$(id -u)" -eq 0 ] || die "installing into / needs root (or use --root DIR)"
  # systemd is PID 1 here: talk to it. Otherwise (a chroot, an image) only files are written.
  [ -d /run/systemd/system ] && live_system=true
fi

bin_path=/usr/local/bin/control-plane
unit_path=/etc/systemd/system/control-plane.service
logrotate_path=/etc/logrotate.d/control-plane
config_dir=/etc/control-plane
env_path=$config_dir/control-plane.env
secret_path=$config_dir/livekit_api_secret

unit_source="$here/systemd/control-plane.service"
logrotate_source="$here/logrotate/control-plane"
env_source="$here/control-plane.env.example"

# Copies $1 to $root$2 with mode $3 unless it is already identical. The new
# file is renamed into place, so a running binary is never overwritten in place.
put() {
  local source=$1 target=$root$2 mode=$3
  if [ -f "$target" ] && cmp -s "$source" "$target"; then
    chmod "$mode" "$target"
    echo "unchanged  $2"
    return
  fi
  mkdir -p "$(dirname "$target")"
  local temporary
  temporary=$(mktemp "$target.XXXXXX")
  cp "$source" "$temporary"
  chmod "$mode" "$temporary"
  mv -f "$temporary" "$target"
  echo "installed  $2"
}

remove() {
  if [ -e "$root$1" ]; then rm -f "$root$1"; echo "removed    $1"; fi
}

if [ "$action" = uninstall ]; then
  if $live_system && systemctl cat control-plane.service >/dev/null 2>&1; then
    systemctl disable --now control-plane.service
  fi
  remove "$unit_path"
  remove "$logrotate_path"
  remove "$bin_path"
  $live_system && systemctl daemon-reload
  echo "kept       $config_dir (settings and secret), /var/lib/private/control-plane (state), /var/log/control-plane (logs): remove them yourself if wanted"
  exit 0
fi

[ -f "$binary" ] || die "no executable at $binary: run 'npm run build' first, or pass --binary FILE"
[ -x "$binary" ] || die "$binary is not executable"
[ -f "$unit_source" ] || die "missing $unit_source"

put "$binary" "$bin_path" 0755
# The unit names /usr/bin/control-plane, where the Debian package puts it;
# here the executable lives in /usr/local/bin.
unit_file=$(mktemp)
trap 'rm -f "$unit_file"' EXIT
sed "s#/usr/bin/control-plane#$bin_path#g" "$unit_source" > "$unit_file"
put "$unit_file" "$unit_path" 0644
if [ -f "$logrotate_source" ]; then
  put "$logrotate_source" "$logrotate_path" 0644
else
  echo "skipped    $logrotate_path (no $logrotate_source)"
fi

# Settings and secrets are root's only: systemd reads them before dropping privileges.
mkdir -p "$root$config_dir"
chmod 0700 "$root$config_dir"
if [ -e "$root$env_path" ]; then
  echo "kept       $env_path (existing settings)"
else
  put "$env_source" "$env_path" 0600
fi

# The executable carries its own Node.js but links the system's C and C++
# runtime: glibc 2.28+, libstdc++6, libatomic1 (absent from minimal images).
if [ -z "$root" ] && ! version=$("$bin_path" --version 2>&1); then
  echo "$version" >&2
  die "$bin_path cannot run here: install the missing library above (Debian/Ubuntu: apt-get install libatomic1) and run install.sh again"
fi
[ -z "$root" ] && echo "checked    $version"

if $live_system; then
  systemctl daemon-reload
  echo "reloaded   systemd units"
  if systemctl is-active --quiet control-plane.service; then
    echo "note: control-plane is running the previous version until 'systemctl restart control-plane'"
  fi
elif [ -n "$root" ]; then
  echo "note: installed into $root; run 'systemctl daemon-reload' inside that system"
fi
if [ ! -e "$root$secret_path" ]; then
  echo "next: set LIVEKIT_API_KEY in $env_path and write its secret to $secret_path (mode 0600), then: systemctl enable --now control-plane"
fi
