#!/usr/bin/env bash
# Runs a command (the test suite) in a network namespace of its own in which nothing can leave
# this machine, and fails when something tried. The namespace has loopback and one veth pair
# (both ends inside it): sr-host0 holds 192.0.2.1/24 (TEST-NET-1, documentation-only) and the
# default route, via 192.0.2.254, which nobody answers. Tests see a host with a non-loopback
# address (pasta and slirp4netns need one to start; outbound tests serve from it) and loopback;
# a packet for any other address can only go out on sr-host0, where it is counted and dropped.
# Nothing of the host's network is touched: no host interface, route or firewall rule.
#
# Usage: ci/offline-net.sh CMD [ARGS...]
# Exits with CMD's status, or 1 when CMD passed but sr-host0 sent packets: a test then tried to
# reach an address off this machine (the test logs say which; ARP for the gateway is what is
# counted first). Needs root (CAP_NET_ADMIN); without it, outside CI, CMD runs as it is.
set -euo pipefail
(($#)) || { echo "usage: ci/offline-net.sh CMD [ARGS...]" >&2; exit 2; }

if [[ ${SANDRUN_OFFLINE_NET_INNER:-} != 1 ]]; then
  if [[ $(id -u) -ne 0 && ${CI:-} != true ]]; then
    echo "ci/offline-net.sh: not root: running without the offline network namespace" >&2
    exec "$@"
  fi
  exec unshare --net -- env SANDRUN_OFFLINE_NET_INNER=1 bash "$0" "$@"
fi
unset SANDRUN_OFFLINE_NET_INNER

dev=sr-host0 peer=sr-host1
ip link set lo up
ip link add "$dev" type veth peer name "$peer"
# No IPv6 on the pair: router solicitations and DAD would count as packets sent.
sysctl -qw "net.ipv6.conf.$dev.disable_ipv6=1" "net.ipv6.conf.$peer.disable_ipv6=1"
ip addr add 192.0.2.1/24 dev "$dev"
ip link set "$dev" up
ip link set "$peer" up
ip route add default via 192.0.2.254 dev "$dev"

# Packets sent on sr-host0, from the namespace's own /proc/net/dev (sysfs shows the host's).
tx_packets() { awk -v d="$dev:" '$1 == d { print $11 }' /proc/net/dev; }
before=$(tx_packets)
status=0
"$@" || status=$?
sent=$(( $(tx_packets) - before ))
if ((sent > 0)); then
  echo "ci/offline-net.sh: the tests sent $sent packet(s) toward addresses off this machine (through $dev);" \
       "neighbour entries on $dev (what was tried):" >&2
  ip neigh show dev "$dev" >&2 || true
  ((status)) || status=1
fi
exit "$status"
