#!/usr/bin/env bash
# Checks the Slurm bring-up where CI runs it: a fresh Debian 12 minbase root (the base tarball
# scripts/fresh-root-check.sh keeps in /var/cache/sam-fresh-root; run that once first), /proc,
# /sys and /dev mounted as there. Installs the Slurm packages with scripts/setup.sh's install
# step, checks that no daemon was started by the install, brings the cluster up
# (scripts/slurm/cluster.sh), runs a 2-task array (one task failing), requeues the failed task,
# and tears everything down. Without building sam (a minute, not the full fresh-root check).
# Run as root: scripts/slurm/chroot-check.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
[ "$(id -u)" -eq 0 ] || { echo "chroot-check: needs root"; exit 1; }
base=$(ls -t /var/cache/sam-fresh-root/bookworm-minbase-*.tar 2>/dev/null | head -n 1)
[ -n "$base" ] || { echo "chroot-check: no base tarball; run scripts/fresh-root-check.sh once"; exit 1; }
root=$(mktemp -d /var/tmp/sam-slurm-chroot.XXXXXX)
cleanup() {
    for m in dev sys proc; do
        if mountpoint -q "$root/$m"; then umount -R "$root/$m" 2>/dev/null || umount -R -l "$root/$m"; fi
    done
    findmnt -rn -o TARGET | grep -q "^$root/" || rm -rf --one-file-system "$root"
}
trap cleanup EXIT
tar -xf "$base" -C "$root"
mkdir -p "$root/root/sam"
git archive HEAD scripts | tar -x -C "$root/root/sam"
cp -L /etc/resolv.conf "$root/etc/resolv.conf"
mount -t proc proc "$root/proc"
mount --rbind /sys "$root/sys" && mount --make-rslave "$root/sys"
mount --rbind /dev "$root/dev" && mount --make-rslave "$root/dev"
cat >"$root/root/inside.sh" <<'IN'
set -euo pipefail
cd /root/sam
apt-get update -qq
[ ! -e /usr/sbin/policy-rc.d ] && echo "chroot-check: no policy-rc.d in the fresh root (as in CI)"
# scripts/setup.sh's install step, for the Slurm packages only.
sed -n '/^missing=()/,/^fi$/p' scripts/setup.sh >/tmp/install.sh
packages=(munge slurmctld slurmd slurm-client)
source /tmp/install.sh
[ ! -e /usr/sbin/policy-rc.d ] || { echo "chroot-check: policy-rc.d left behind"; exit 1; }
for p in /proc/[0-9]*; do
    case "$(cat "$p/comm" 2>/dev/null)" in munged | slurmctld | slurmd)
        [ "$(readlink "$p/root")" = / ] && { echo "chroot-check: the install started $(cat "$p/comm")"; exit 1; } ;;
    esac
done
echo "chroot-check: installed; no daemon started"
source scripts/slurm/cluster.sh
trap slurm_down EXIT
slurm_up /tmp/cluster
wait_idle() { for i in $(seq 300); do [ -z "$(squeue -h)" ] && return; sleep 0.1; done; echo "still queued"; exit 1; }
j=$(slurm_sbatch --parsable -o /tmp/cluster/logs/%A_%a.out --array=0-1 --wrap '[ "$SLURM_ARRAY_TASK_ID" = 0 ]')
wait_idle
scontrol show job "${j}_1" | grep -q JobState=FAILED
scontrol requeue "${j}_1"
scontrol update jobid="${j}_1" StartTime=now
wait_idle
scontrol show job "${j}_1" | grep -q 'Restarts=1' || { echo "chroot-check: the requeued task did not run again"; exit 1; }
echo "chroot-check: array job ran, failed task requeued and ran again"
IN
chroot "$root" /usr/bin/env -i HOME=/root PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 /bin/bash /root/inside.sh
echo "chroot-check: passed"
