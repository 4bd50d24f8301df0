#!/usr/bin/env bash
# Builds Uplink and the benchmark programs, runs the lite-boot and migrator
# benchmarks, and prints their tables (Markdown) with the machine they ran on.
#
#   bench/run.sh              # both
#   bench/run.sh liteboot     # issue 3: cold and warm boot
#   bench/run.sh migrators    # issue 4: (a) (b) (c)
#
# Run as root (PostgreSQL runs as the postgres user, as in the product) on a
# machine with PostgreSQL's server binaries (apt-get install postgresql).
# Extra flags go through LITEBOOT_FLAGS and MIGRATORS_FLAGS, e.g.
# LITEBOOT_FLAGS="-cold 11 -warm 3" (see -help of each program). UPLINK_SRC
# builds the uplink binary from another checkout.
set -euo pipefail
export PATH="$PATH:/usr/local/go/bin"
bench=$(cd "$(dirname "$0")" && pwd)
src=${UPLINK_SRC:-$(cd "$bench/.." && pwd)}
what=${1:-all}

bin=$(mktemp -d /tmp/uplink-bench-bin-XXXXXX)
trap 'rm -rf "$bin"' EXIT
chmod 755 "$bin" # epghelper runs as the postgres user
# The static build the README ships (CGO_ENABLED=0): no dynamic loader at
# each start.
(cd "$src" && CGO_ENABLED=0 go build -o "$bin/uplink" ./cmd/uplink)
(cd "$bench" && for p in liteboot liteboot/epghelper migrators migrators/migrun; do
	go build -o "$bin/$(basename "$p")" "./$p"
done)

pgbin=${UPLINK_PG_BINDIR:-$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)}
echo "## Machine"
echo
echo "- cores (nproc): $(nproc); CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
echo "- memory: $(free -g | awk '/^Mem:/ {print $2 " GiB"}'); kernel $(uname -r)"
echo "- $(go version); $("$pgbin/postgres" --version)"
echo "- uplink built from $src at $(git -C "$src" describe --always --dirty 2>/dev/null || echo unknown)"
echo "- load before: $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min)"
echo

if [[ $what == all || $what == liteboot ]]; then
	# shellcheck disable=SC2086 # flags are meant to split
	"$bin/liteboot" -uplink "$bin/uplink" -epg "$bin/epghelper" ${LITEBOOT_FLAGS:-}
	echo
fi
if [[ $what == all || $what == migrators ]]; then
	# shellcheck disable=SC2086
	"$bin/migrators" -migrun "$bin/migrun" ${MIGRATORS_FLAGS:-}
	echo
fi
echo "- load after: $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min)"
