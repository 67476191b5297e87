#!/usr/bin/env bash
# CI: the README's two commands (scripts/demo.sh, then scripts/test.sh) in a fresh, minimal
# Debian 12 root, so that a step missing from scripts/setup.sh fails here rather than on a
# user's machine. Run as root (mmdebstrap, chroot, mounts) on a Debian machine.
#   scripts/fresh-root-check.sh
# The root is made with mmdebstrap (variant minbase: the essential packages and apt, nothing
# else) from the Debian mirrors this machine's apt uses. Its tarball may be kept in
# /var/cache/sam-fresh-root and reused for the same sources within the same week: a clean base,
# extracted anew each run. Everything sam needs is installed in it by the scripts under test.
# The repository goes in as committed (git archive HEAD); the tests read only tests/data and
# assets, not ../shared. SAM_CTEST_ARGS, when set, is passed on to scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
say() { echo "fresh-root: $*"; }

[ "$(id -u)" -eq 0 ] || { say "needs root (chroot and mounts)"; exit 1; }
if ! command -v mmdebstrap >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        -o DPkg::Lock::Timeout=600 mmdebstrap >/dev/null
fi

# The bookworm entries of this machine's apt sources, one "deb URI SUITE COMPONENTS" a line.
sources=$(apt-get indextargets --format '$(REPO_URI) $(RELEASE) $(COMPONENT)' 'Identifier: Packages' |
    awk '$2 ~ /^bookworm(-updates|-security)?$/ {
             key = $1 " " $2
             if (!(key in comps)) order[n++] = key
             if (index(" " comps[key] " ", " " $3 " ") == 0) comps[key] = comps[key] " " $3
         }
         END { for (i = 0; i < n; i++) print "deb " order[i] comps[order[i]] }')
[ -n "$sources" ] || { say "no bookworm entry in this machine's apt sources"; exit 1; }
aptopts=()
# Snapshot mirrors serve Release files past their Valid-Until date.
if grep -q snapshot.debian.org <<<"$sources"; then aptopts+=(--aptopt='Acquire::Check-Valid-Until "false"'); fi

work=$(mktemp -d /var/tmp/sam-fresh-root.XXXXXX)
root="$work/root"
cleanup() {
    local rc=$?
    for m in dev sys proc; do
        if mountpoint -q "$root/$m"; then umount -R "$root/$m" 2>/dev/null || umount -R -l "$root/$m"; fi
    done
    if findmnt -rn -o TARGET | grep -q "^$root/"; then
        say "left $work in place: something is still mounted there"
    else
        rm -rf --one-file-system "$work"
    fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The base: from the cache when it holds one for these sources this week, else made now.
cache=/var/cache/sam-fresh-root
tarball="$cache/bookworm-minbase-$(date +%G-W%V)-$(sha256sum <<<"$sources ${aptopts[*]}" | cut -c1-12).tar"
mkdir -p "$cache" "$root"
if [ -s "$tarball" ]; then
    say "base from $tarball"
else
    say "making the base with mmdebstrap from:"; sed 's/^/    /' <<<"$sources"
    find "$cache" -name 'bookworm-minbase-*.tar' -delete
    mmdebstrap --mode=root --variant=minbase --format=tar --quiet "${aptopts[@]}" \
        bookworm "$tarball.part" - <<<"$sources"
    mv "$tarball.part" "$tarball"
fi
tar -xf "$tarball" -C "$root"
say "base ready after $(( $(date +%s) - start )) s"

# The repository as committed, and the host's name resolution.
mkdir -p "$root/root/sam"
git archive HEAD | tar -x -C "$root/root/sam"
cp -L /etc/resolv.conf "$root/etc/resolv.conf"
mount -t proc proc "$root/proc"
mount --rbind /sys "$root/sys" && mount --make-rslave "$root/sys"
mount --rbind /dev "$root/dev" && mount --make-rslave "$root/dev"

# A clean environment: nothing of this machine's but its network settings. The root trusts
# what this machine trusts (a TLS-inspecting proxy's CA, where there is one) for pip and curl,
# as it resolves names as this machine does.
env_in=(HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8
        TERM=dumb CI="${CI:-true}")
ca="${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}"
if [ -f "$ca" ]; then
    mkdir -p "$root/etc/ssl"
    cp -L "$ca" "$root/etc/ssl/host-ca-certificates.crt"
    env_in+=(PIP_CERT=/etc/ssl/host-ca-certificates.crt CURL_CA_BUNDLE=/etc/ssl/host-ca-certificates.crt)
fi
for v in http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY SAM_CTEST_ARGS; do
    if [ -n "${!v:-}" ]; then env_in+=("$v=${!v}"); fi
done
in_root() { chroot "$root" /usr/bin/env -i "${env_in[@]}" /bin/bash -c "cd /root/sam && $1"; }
# Each line of the scripts under test with the minutes and seconds since this check began.
stamped() {
    local now
    in_root "$1" 2>&1 | while IFS= read -r line; do
        printf -v now '%(%s)T' -1
        printf '[%2d:%02d] %s\n' $(( (now - start) / 60 )) $(( (now - start) % 60 )) "$line"
    done
}

t=$(date +%s)
stamped scripts/demo.sh
[ -s "$root/root/sam/out/truck_overlay.png" ] || { say "scripts/demo.sh wrote no out/truck_overlay.png"; exit 1; }
say "scripts/demo.sh passed ($(( $(date +%s) - t )) s)"

t=$(date +%s)
[ -z "${SAM_CTEST_ARGS:-}" ] || say "SAM_CTEST_ARGS=$SAM_CTEST_ARGS (not the plain README command)"
stamped scripts/test.sh
grep -q '^Browser\.ClickShowsMask$' <(in_root 'ctest --test-dir build -N' | sed -n 's/^ *Test *#[0-9]*: //p') ||
    { say "the browser test was not registered: scripts/setup.sh left out one of its requirements"; exit 1; }
say "scripts/test.sh passed ($(( $(date +%s) - t )) s)"
say "done in $(( $(date +%s) - start )) s"
