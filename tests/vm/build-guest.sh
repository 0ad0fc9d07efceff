#!/usr/bin/env bash
# build-guest.sh OUTDIR [--no-install]
#
# Builds the test guest of nfv's VM tests and `nfv demo`: Debian's stock kernel as an
# uncompressed ELF `vmlinux` (QEMU boots it through the PVH entry point, about 3 s faster
# under TCG than the XZ bzImage) and a ~1 MB busybox initramfs whose /init loads
# virtio-net, takes an address, pings, and prints marker lines on the serial console.
#
# OUTDIR gets: vmlinux, initramfs.cpio.gz, KVER, stamp. When the stamp matches (same
# script, kernel and busybox) nothing is rebuilt. Concurrent callers serialise on a lock.
#
# Packages: qemu-system-x86 linux-image-amd64 cpio kmod xz-utils, installed when missing
# (not with --no-install: then it fails and names them). The static busybox comes from the
# busybox-static .deb, fetched with `apt-get download` and unpacked into OUTDIR: installing
# busybox-static would remove the `busybox` package the lab hosts use (they conflict).
#
# Guest /init, instructions on the kernel command line:
#   vmlab.addr=dhcp|A.B.C.D/NN  address of eth0 (default dhcp: busybox udhcpc)
#   vmlab.gw=A.B.C.D            default route (with dhcp: the lease's router)
#   vmlab.ping=ADDR[,ADDR]      addresses to ping, in order
#   vmlab.count=N               pings per address (default 3); all must be answered
#   vmlab.wait=S                before counting, wait up to S s for a first reply (default 10)
#   vmlab.forever=1             ping the addresses once a second until powered off, one
#                               marker line per reply or timeout
#   vmlab.hold=S                stay up S s after the result (default 0; `forever`)
#   vmlab.mtu=N                 MTU of eth0 (default: the device's)
#   vmlab.size=N                bytes of ICMP payload per counted ping (default: ping's 56)
#   vmlab.tcp=ADDR:PORT:MB      after the pings: send MB MiB of random bytes over TCP to
#                               ADDR:PORT (VMLAB-TCP-SENT with their SHA-256), then read
#                               what ADDR:PORT+1 sends until it closes (VMLAB-TCP-RECEIVED;
#                               VMLAB-TCP-SENT-DONE between, the uptimes time both)
#   vmlab.watch=ADDR:PORT       once the address is up, until powered off: ping ADDR every
#                               100 ms (each reply a VMLAB-WATCH line with its seq=) and
#                               keep one TCP connection to ADDR:PORT, writing `tick N` on
#                               it every 100 ms (VMLAB-WATCH-TCP-CLOSED if it ends): what a
#                               migrating guest does
# Console markers (one line each, anywhere in a line: kernel messages may interleave):
#   VMLAB-INIT ...                       /init started
#   VMLAB-NIC mac=MAC ...                eth0 is there
#   VMLAB-LEASE A.B.C.D/NN dhcp|static router=R server=S
#   VMLAB-PING ADDR ok|fail ...          per address (count mode) or per ping (forever)
#   VMLAB-RESULT PASS|FAIL [reason=...]
#   VMLAB-DONE                           about to power off
set -euo pipefail

OUT=${1:?usage: build-guest.sh OUTDIR [--no-install]}
INSTALL=1
[ "${2:-}" = --no-install ] && INSTALL=0
SELF=$(readlink -f "$0")
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

# One builder at a time (tests run in parallel, in several processes).
exec 9>"$OUT/.lock"
flock 9

apt_get() {
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 "$@"
}

missing=
command -v qemu-system-x86_64 >/dev/null 2>&1 || missing="$missing qemu-system-x86"
ls /boot/vmlinuz-* >/dev/null 2>&1 || missing="$missing linux-image-amd64"
command -v cpio >/dev/null 2>&1 || missing="$missing cpio"
command -v modprobe >/dev/null 2>&1 || missing="$missing kmod"
command -v xz >/dev/null 2>&1 || missing="$missing xz-utils"
if [ -n "$missing" ]; then
    if [ "$INSTALL" = 0 ]; then
        echo "build-guest.sh: missing packages:$missing (apt-get install$missing)" >&2
        exit 2
    fi
    echo "build-guest.sh: installing$missing" >&2
    apt_get update -q >/dev/null
    # linux-image-amd64 pulls initramfs-tools, which builds an initramfs for the host (~1 min)
    apt_get install -y -q --no-install-recommends $missing >/dev/null
fi

KVER=$(ls /boot/vmlinuz-* | sed 's|^/boot/vmlinuz-||' | sort -V | tail -1)
[ -d "/lib/modules/$KVER" ] || { echo "build-guest.sh: no /lib/modules/$KVER" >&2; exit 1; }

# A static busybox: the system's if it is one, else the busybox-static package unpacked.
BUSYBOX=
if [ -x /bin/busybox ] && ! ldd /bin/busybox >/dev/null 2>&1; then
    BUSYBOX=/bin/busybox
else
    BUSYBOX=$OUT/busybox-static/bin/busybox
    if [ ! -x "$BUSYBOX" ]; then
        dl=$(mktemp -d /tmp/nfv-guest-dl.XXXXXX)
        if ! (cd "$dl" && apt-get download -q busybox-static >/dev/null 2>&1); then
            apt_get update -q >/dev/null 2>&1 || true
            (cd "$dl" && apt-get download -q busybox-static >/dev/null) || {
                rm -rf "$dl"; echo "build-guest.sh: cannot download busybox-static" >&2; exit 1; }
        fi
        rm -rf "$OUT/busybox-static"
        dpkg-deb -x "$dl"/busybox-static_*.deb "$OUT/busybox-static"
        rm -rf "$dl"
    fi
    [ -x "$BUSYBOX" ] || { echo "build-guest.sh: no static busybox in busybox-static" >&2; exit 1; }
fi

STAMP="script=$(sha256sum "$SELF" | cut -d' ' -f1) kernel=$KVER $(stat -c %s-%Y "/boot/vmlinuz-$KVER") busybox=$(sha256sum "$BUSYBOX" | cut -d' ' -f1)"
if [ -s "$OUT/vmlinux" ] && [ -s "$OUT/initramfs.cpio.gz" ] && [ "$(cat "$OUT/stamp" 2>/dev/null)" = "$STAMP" ]; then
    echo "build-guest.sh: $OUT is up to date ($KVER)"
    exit 0
fi
rm -f "$OUT/stamp"

STAGE=$(mktemp -d /tmp/nfv-guest.XXXXXX)
trap 'rm -rf "$STAGE"' EXIT
mkdir -p "$STAGE"/{bin,dev,proc,sys,tmp,run,etc,lib/modules}
cp "$BUSYBOX" "$STAGE/bin/busybox"
ln -s busybox "$STAGE/bin/sh"
mknod -m 600 "$STAGE/dev/console" c 5 1
mknod -m 666 "$STAGE/dev/null" c 1 3

# virtio-net is a module in Debian's kernel: it and its dependencies, in load order.
: > "$STAGE/lib/modules/load.order"
declare -A seen=()
for mod in virtio_pci virtio_net; do
    if grep -qE "^CONFIG_${mod^^}=y" "/boot/config-$KVER" 2>/dev/null; then
        continue
    fi
    while read -r verb path _; do
        [ "$verb" = insmod ] || continue
        name=$(basename "$path"); name=${name%%.ko*}
        [ -n "${seen[$name]:-}" ] && continue
        seen[$name]=1
        case "$path" in
            *.ko.xz) xz -dc "$path" > "$STAGE/lib/modules/$name.ko" ;;
            *.ko.zst) zstd -qdc "$path" > "$STAGE/lib/modules/$name.ko" ;;
            *.ko.gz) gzip -dc "$path" > "$STAGE/lib/modules/$name.ko" ;;
            *) cp "$path" "$STAGE/lib/modules/$name.ko" ;;
        esac
        echo "$name.ko" >> "$STAGE/lib/modules/load.order"
    done < <(modprobe -S "$KVER" --show-depends "$mod")
done

# udhcpc's event script: configure eth0, print the lease.
cat > "$STAGE/bin/vmlab-udhcpc" <<'EOF'
#!/bin/sh
case "$1" in
deconfig)
    ip -4 addr flush dev "$interface"
    ip link set "$interface" up
    ;;
bound|renew)
    ip -4 addr flush dev "$interface"
    ip addr add "$ip/${mask:-24}" ${broadcast:+broadcast $broadcast} dev "$interface"
    gw=${GW:-}
    [ -z "$gw" ] && for r in $router; do gw=$r; break; done
    [ -n "$gw" ] && ip route replace default via "$gw" dev "$interface"
    echo "VMLAB-LEASE $ip/${mask:-24} dhcp router=${router:-none} server=${serverid:-none} lease=${lease:-0} uptime=$(cut -d' ' -f1 /proc/uptime)"
    ;;
leasefail|nak)
    echo "VMLAB-DHCP $1 uptime=$(cut -d' ' -f1 /proc/uptime)"
    ;;
esac
exit 0
EOF
chmod 755 "$STAGE/bin/vmlab-udhcpc"

cat > "$STAGE/init" <<'EOF'
#!/bin/sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t devtmpfs devtmpfs /dev 2>/dev/null
exec </dev/console >/dev/console 2>&1
mount -t proc proc /proc
mount -t sysfs sysfs /sys
up() { cut -d' ' -f1 /proc/uptime; }
off() {
    echo "VMLAB-DONE uptime=$(up)"
    sync
    poweroff -f
    echo o > /proc/sysrq-trigger
    sleep 10
}
finish() { # finish PASS|FAIL [reason]
    echo "VMLAB-RESULT $1${2:+ reason=$2} uptime=$(up)"
    if [ "$HOLD" = forever ]; then
        while true; do sleep 3600; done
    fi
    [ "$HOLD" -gt 0 ] 2>/dev/null && sleep "$HOLD"
    off
}

ADDR=dhcp; GW=; PING=; COUNT=3; WAIT=10; FOREVER=0; HOLD=0; MTU=; SIZE=56; TCP=; WATCH=
for w in $(cat /proc/cmdline); do
    case "$w" in
        vmlab.addr=*) ADDR=${w#*=} ;;
        vmlab.gw=*) GW=${w#*=} ;;
        vmlab.ping=*) PING=$(echo "${w#*=}" | tr ',' ' ') ;;
        vmlab.count=*) COUNT=${w#*=} ;;
        vmlab.wait=*) WAIT=${w#*=} ;;
        vmlab.forever=*) FOREVER=${w#*=} ;;
        vmlab.hold=*) HOLD=${w#*=} ;;
        vmlab.mtu=*) MTU=${w#*=} ;;
        vmlab.size=*) SIZE=${w#*=} ;;
        vmlab.tcp=*) TCP=${w#*=} ;;
        vmlab.watch=*) WATCH=${w#*=} ;;
    esac
done
export GW
echo "VMLAB-INIT kernel=$(uname -r) addr=$ADDR gw=${GW:-none} ping=$(echo ${PING:-none} | tr ' ' ',') count=$COUNT forever=$FOREVER uptime=$(up)"

for ko in $(cat /lib/modules/load.order); do
    insmod "/lib/modules/$ko" || echo "VMLAB-WARN insmod $ko failed"
done
i=0
while [ ! -e /sys/class/net/eth0 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
[ -e /sys/class/net/eth0 ] || finish FAIL no-eth0
echo "VMLAB-NIC mac=$(cat /sys/class/net/eth0/address) uptime=$(up)"

ip link set lo up
if [ -n "$MTU" ]; then ip link set eth0 mtu "$MTU" || finish FAIL bad-mtu; fi
ip link set eth0 up
# Frames sent before the carrier is up are dropped: wait for it (about 1 s).
i=0
while [ "$(cat /sys/class/net/eth0/operstate)" != up ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
echo "VMLAB-LINK operstate=$(cat /sys/class/net/eth0/operstate) uptime=$(up)"

if [ "$ADDR" = dhcp ]; then
    udhcpc -i eth0 -s /bin/vmlab-udhcpc -f -q -n -t 30 -T 1 -A 1 -x hostname:vmlab
    ip -4 addr show dev eth0 | grep -q 'inet ' || finish FAIL no-dhcp-lease
else
    ip addr add "$ADDR" dev eth0 || finish FAIL bad-address
    [ -n "$GW" ] && ip route add default via "$GW" dev eth0
    echo "VMLAB-LEASE $ADDR static router=${GW:-none} uptime=$(up)"
fi

if [ -n "$WATCH" ]; then
    waddr=${WATCH%:*}; wport=${WATCH##*:}
    ping -i 0.1 "$waddr" | while read -r l; do echo "VMLAB-WATCH $l"; done &
    (
        i=0
        while true; do echo "tick $i"; i=$((i+1)); sleep 0.1; done | nc "$waddr" "$wport"
        echo "VMLAB-WATCH-TCP-CLOSED uptime=$(up)"
    ) &
    while true; do sleep 3600; done
fi

if [ "$FOREVER" = 1 ]; then
    seq=0
    while true; do
        for a in $PING; do
            if ping -c 1 -W 1 "$a" >/dev/null 2>&1; then
                echo "VMLAB-PING $a ok seq=$seq uptime=$(up)"
                sleep 1
            else
                echo "VMLAB-PING $a fail seq=$seq uptime=$(up)"
            fi
        done
        [ -z "$PING" ] && sleep 1
        seq=$((seq+1))
    done
fi

failed=
for a in $PING; do
    # The first reply may take a while (ARP, a peer still booting): wait for it first.
    t=0
    until ping -c 1 -W 1 "$a" >/dev/null 2>&1; do
        t=$((t+1))
        [ $t -ge "$WAIT" ] && break
    done
    out=$(ping -c "$COUNT" -i 0.2 -W 2 -s "$SIZE" "$a" 2>&1)
    sent=$(echo "$out" | sed -n 's/^\([0-9]*\) packets transmitted.*/\1/p')
    recv=$(echo "$out" | sed -n 's/.* \([0-9]*\) packets received.*/\1/p')
    if [ "${recv:-0}" -ge "$COUNT" ]; then r=ok; else r=fail; failed="$failed,$a"; fi
    echo "VMLAB-PING $a $r sent=${sent:-0} received=${recv:-0} uptime=$(up)"
done
if [ -n "$failed" ]; then finish FAIL "no-reply:${failed#,}"; fi
if [ -n "$TCP" ]; then
    IFS=: read -r taddr tport tmb <<TCPEOF
$TCP
TCPEOF
    dd if=/dev/urandom of=/tmp/out bs=1048576 count="$tmb" 2>/dev/null
    echo "VMLAB-TCP-SENT bytes=$(wc -c < /tmp/out) sha=$(sha256sum /tmp/out | cut -d' ' -f1) uptime=$(up)"
    # The receiver closes once it has them all, which ends nc.
    nc "$taddr" "$tport" < /tmp/out > /dev/null || finish FAIL tcp-send
    echo "VMLAB-TCP-SENT-DONE uptime=$(up)"
    nc "$taddr" "$((tport + 1))" < /dev/null > /tmp/in || finish FAIL tcp-receive
    echo "VMLAB-TCP-RECEIVED bytes=$(wc -c < /tmp/in) sha=$(sha256sum /tmp/in | cut -d' ' -f1) uptime=$(up)"
fi
finish PASS
EOF
chmod 755 "$STAGE/init"

TMP=$OUT/.build
rm -rf "$TMP"; mkdir -p "$TMP"
(cd "$STAGE" && find . -print0 | sort -z | cpio --null -o -H newc --owner=0:0 --quiet) | gzip -9 > "$TMP/initramfs.cpio.gz"
# The bzImage's payload is XZ: find its magic and decompress the ELF vmlinux.
off=$(LC_ALL=C grep -obUaP '\xfd7zXZ\x00' "/boot/vmlinuz-$KVER" | head -1 | cut -d: -f1 || true)
[ -n "$off" ] || { echo "build-guest.sh: no XZ payload in /boot/vmlinuz-$KVER" >&2; exit 1; }
tail -c +$((off + 1)) "/boot/vmlinuz-$KVER" | xz -dc --single-stream > "$TMP/vmlinux" 2>/dev/null || true
[ "$(head -c 4 "$TMP/vmlinux" | od -An -c | tr -d ' ')" = '177ELF' ] || {
    echo "build-guest.sh: could not extract an ELF vmlinux from /boot/vmlinuz-$KVER" >&2; exit 1; }
grep -q '^CONFIG_PVH=y' "/boot/config-$KVER" || {
    echo "build-guest.sh: kernel $KVER has no CONFIG_PVH: QEMU cannot boot its vmlinux" >&2; exit 1; }
mv "$TMP/initramfs.cpio.gz" "$TMP/vmlinux" "$OUT/"
rm -rf "$TMP"
echo "$KVER" > "$OUT/KVER"
echo "$STAMP" > "$OUT/stamp"
echo "build-guest.sh: built $OUT (kernel $KVER, initramfs $(stat -c %s "$OUT/initramfs.cpio.gz") bytes)"
