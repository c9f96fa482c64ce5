#!/usr/bin/env bash
# `vrrpdoctor run` as a long-running daemon against keepalived on the same
# configuration (issue 8 item 7): peak RSS with 1 and 100 instances, CPU
# over MINUTES idle (1 instance, advert_int 1) and over BUSY with 100
# instances at 0.1 s adverts. vrrpdoctor (self-diagnosis on), vrrpdoctor
# --no-diagnose and keepalived run at the same time, each in its own
# namespaces (and, idle, bench/idlefloor: the Go runtime's floor). Prints
# the figures and the ratios against keepalived.
#
#   bench/daemon.sh                       # 10 min idle + 1 min busy (about 12 minutes)
#   bench/daemon.sh --minutes 1 --busy 20s
#   bench/daemon.sh --only busy
#
# Needs root, go, keepalived and iproute2. Everything runs in namespaces
# named vdd-<pid>-*, removed at the end; nothing touches the machine's own
# network.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

[[ $(id -u) == 0 ]] || { echo "daemon.sh: needs root (network namespaces)" >&2; exit 1; }
for prog in go keepalived ip; do
	command -v "$prog" >/dev/null || { echo "daemon.sh: $prog not found (Debian: apt-get install golang keepalived iproute2)" >&2; exit 1; }
done

args=()
while (($#)); do
	case "$1" in
	--minutes) args+=(-minutes "$2"); shift 2 ;;
	--busy) args+=(-busy "$2"); shift 2 ;;
	--only) args+=(-only "$2"); shift 2 ;;
	*) echo "daemon.sh: unknown argument $1 (--minutes N, --busy DURATION, --only idle|busy)" >&2; exit 2 ;;
	esac
done

cd "$root"
# Built as released: static, stripped (goreleaser's -s -w -trimpath).
CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$tmp/vrrpdoctor" ./cmd/vrrpdoctor
CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$tmp/idlefloor" ./bench/idlefloor
CGO_ENABLED=0 go build -o "$tmp/daemon" ./bench/daemon
echo "vrrpdoctor $(git -C "$root" describe --always --dirty 2>/dev/null || echo unknown), $(keepalived --version 2>&1 | head -1), $(nproc) CPU(s)"
"$tmp/daemon" -bin "$tmp/vrrpdoctor" -floor "$tmp/idlefloor" "${args[@]}"
