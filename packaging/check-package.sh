#!/usr/bin/env bash
# Builds the Debian package from a copy of the tree and checks it as a distribution would: lintian without
# errors or warnings, the expected files in it, the unit verified and its sandbox exposure at most 2.0, and
# every man page rendering without groff warnings. Needs debhelper, lintian, dpkg-dev, scdoc (see
# packaging/README.md). Never writes into the source tree; everything happens in a temporary directory.
# Usage: packaging/check-package.sh [--keep]   (--keep leaves the temporary directory and says where)
set -euo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
max_exposure=2.0
keep=0
[[ ${1:-} == --keep ]] && keep=1

work=$(mktemp -d /tmp/shipd-package.XXXXXX)
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() { if ((keep)); then echo "check-package: kept $work"; else rm -rf "$work"; fi; }
trap cleanup EXIT

failures=()
fail() {
    failures+=("$1")
    echo "check-package: FAIL: $1" >&2
}
summary() {
    if ((${#failures[@]} == 0)); then
        echo "check-package: OK: $1"
        exit 0
    fi
    echo "check-package: FAILED (${#failures[@]}): ${failures[*]}"
    exit 1
}

for tool in dpkg-buildpackage dh lintian scdoc systemd-analyze man; do
    command -v "$tool" >/dev/null || fail "$tool is missing (apt-get install debhelper lintian dpkg-dev scdoc)"
done
((${#failures[@]} == 0)) || summary "-"

# The working tree as git sees it (tracked and untracked, not ignored: a clean clone is all of it), so build
# directories and .git stay behind.
tree=$work/shipd
mkdir -p "$tree"
if git -C "$src" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    (cd "$src" && git ls-files -z --cached --others --exclude-standard |
        while IFS= read -r -d '' f; do if [[ -e $f ]]; then printf '%s\0' "$f"; fi; done |
        tar --null -T - -cf -) | tar -C "$tree" -xf -
else
    tar -C "$src" --exclude=./build --exclude=./.git -cf - . | tar -C "$tree" -xf -
fi
rm -rf "$tree/debian"
cp -r "$src/packaging/debian" "$tree/debian"
# The package version is the project's (a native package): bump debian/changelog with meson.build.
project_version=$(sed -n "s/^  version : '\([^']*\)',$/\1/p" "$tree/meson.build")
package_version=$(cd "$tree" && dpkg-parsechangelog -S Version)
[[ $project_version == "$package_version" ]] ||
    fail "debian/changelog says $package_version, meson.build says ${project_version:-?} (dch -v $project_version)"

echo "== dpkg-buildpackage (log: build.log)"
start=$SECONDS
if ! (cd "$tree" && DEB_BUILD_OPTIONS="parallel=2 nocheck" dpkg-buildpackage -us -uc -b) >"$work/build.log" 2>&1; then
    tail -n 40 "$work/build.log" >&2
    fail "dpkg-buildpackage"
    summary "-"
fi
echo "built in $((SECONDS - start)) s"
deb=$(ls "$work"/shipd_*_*.deb)
[[ $(wc -l <<<"$deb") -eq 1 ]] || fail "expected one shipd .deb, found: $deb"
basename "$deb"

echo "== lintian"
# Errors and warnings fail; info tags are shown for the record.
if ! lintian --info --fail-on error,warning "$deb"; then
    fail "lintian"
fi

echo "== dpkg -c"
dpkg -c "$deb"
root=$work/root
dpkg-deb -x "$deb" "$root"

expected=(
    usr/sbin/shipd
    lib/systemd/system/shipd.service
    usr/lib/sysusers.d/shipd.conf
    usr/lib/tmpfiles.d/shipd.conf
    usr/share/dbus-1/system.d/org.shipd.Hub1.conf
    usr/share/dbus-1/system-services/org.shipd.Hub1.service
    usr/share/dbus-1/interfaces/org.shipd.Hub1.xml
    usr/share/polkit-1/actions/org.shipd.policy
    usr/share/polkit-1/rules.d/60-org.shipd.rules
    usr/share/doc/shipd/examples/energy_manager.cpp
    usr/share/doc/shipd/examples/energy_manager.py
    etc/shipd/shipd.conf
    usr/share/man/man8/shipd.8.gz
    usr/share/man/man5/shipd.conf.5.gz
    usr/share/man/man5/org.shipd.Hub1.5.gz
    usr/share/doc/shipd/copyright
)
# shipctl, its page and its completion come with daemon/shipctl/; once the build includes it, all must be there.
if grep -q "subdir('shipctl')" "$tree/daemon/meson.build"; then
    expected+=(usr/bin/shipctl usr/share/man/man1/shipctl.1.gz usr/share/bash-completion/completions/shipctl)
fi
for f in "${expected[@]}"; do
    [[ -e $root/$f ]] || fail "missing /$f"
done
control=$work/control
dpkg-deb -e "$deb" "$control"
grep -qx /etc/shipd/shipd.conf "$control/conffiles" || fail "/etc/shipd/shipd.conf is not a conffile"
grep -q systemd-sysusers "$control/postinst" || fail "postinst does not create the user via systemd-sysusers"
grep -q 'User=shipd' "$root/usr/share/dbus-1/system-services/org.shipd.Hub1.service" ||
    fail "activation file does not say User=shipd"
grep -q "^Exec=/usr/sbin/shipd" "$root/usr/share/dbus-1/system-services/org.shipd.Hub1.service" ||
    fail "activation file does not start /usr/sbin/shipd"

echo "== systemd-analyze verify"
unit=$root/lib/systemd/system/shipd.service
[[ -x $root/usr/sbin/shipd ]] || fail "/usr/sbin/shipd is not executable"
# The unit file itself, against this machine's units; MANPATH lets it find the packaged Documentation= pages.
# `--root=` would need a whole system in the root (sysinit.target, /bin/kill), so the one finding that
# depends on the package not being installed here (ExecStart= binary, checked just above) is dropped.
verify_out=$(MANPATH=$root/usr/share/man systemd-analyze verify "$unit" 2>&1) || true
if [[ ! -e /usr/sbin/shipd ]]; then
    verify_out=$(grep -vx 'shipd.service: Command /usr/sbin/shipd is not executable: No such file or directory' \
        <<<"$verify_out" || true)
fi
if [[ -n $verify_out ]]; then
    echo "$verify_out"
    fail "systemd-analyze verify"
else
    echo "no findings"
fi

echo "== systemd-analyze security"
security_out=$(systemd-analyze security --no-pager --offline=true --root="$root" shipd.service 2>&1) || true
grep -v '^  *✓\|^✓' <<<"$security_out" | tail -n 30
exposure=$(sed -n 's/.*Overall exposure level for shipd.service: \([0-9.]*\).*/\1/p' <<<"$security_out")
if [[ -z $exposure ]]; then
    fail "systemd-analyze security printed no exposure"
    exposure="?"
elif ! awk -v e="$exposure" -v m="$max_exposure" 'BEGIN { exit !(e <= m) }'; then
    fail "exposure $exposure above $max_exposure"
fi
echo "exposure: $exposure (limit $max_exposure)"

echo "== man pages"
pages=0
while IFS= read -r -d '' page; do
    pages=$((pages + 1))
    warnings=$(MANWIDTH=80 man --warnings -l "$page" 2>&1 >/dev/null) || fail "man -l $(basename "$page") (exit)"
    if [[ -n $warnings ]]; then
        echo "$warnings"
        fail "man -l $(basename "$page") warns"
    fi
done < <(find "$root/usr/share/man" -type f -print0)
echo "$pages pages render without warnings"

summary "$(basename "$deb"): $(dpkg -c "$deb" | grep -vc '/$') files, lintian clean, unit verified, exposure $exposure, $pages man pages"
