# Helpers shared by the test bed scripts (testbed.sh, multinode.sh), which source this file after setting
# BED_SCRIPT (the name their messages start with), FM_BED, FM_TOOLS_DIR and INFLUXD_VERSION.

log() { printf '%s[%s]: %s\n' "$BED_SCRIPT" "$FM_BED" "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}

alive() { # pidfile
	[ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null
}

# try_for runs a command every 0.1 s until it succeeds (status 0) or the seconds are up (status 1).
try_for() { # seconds command...
	local secs=$1 i
	shift
	for ((i = 0; i < secs * 10; i++)); do
		if "$@" >/dev/null 2>&1; then return 0; fi
		sleep 0.1
	done
	return 1
}

wait_for() { # description seconds command...
	local what=$1 secs=$2
	shift 2
	try_for "$secs" "$@" || die "$what did not come up within ${secs}s"
}

install_missing() { # debian-package...
	[ $# -eq 0 ] && return 0
	[ "$(id -u)" -eq 0 ] || die "missing $*; run as root so the bed can install them with apt-get"
	log "installing $*"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# ensure_influxd builds InfluxDB once per machine into FM_TOOLS_DIR and sets FM_INFLUXD.
ensure_influxd() {
	FM_INFLUXD=$FM_TOOLS_DIR/influxd
	# A go-installed influxd reports its version as "unknown": a stamp file records what was built.
	if [ -x "$FM_INFLUXD" ] && [ "$(cat "$FM_INFLUXD.version" 2>/dev/null)" = "$INFLUXD_VERSION" ]; then
		return 0
	fi
	log "building InfluxDB $INFLUXD_VERSION from the Go module proxy (a minute or two)"
	mkdir -p "$FM_TOOLS_DIR"
	(cd "$FM_TOOLS_DIR" && GOBIN=$FM_TOOLS_DIR go install "github.com/influxdata/influxdb/cmd/influxd@$INFLUXD_VERSION")
	echo "$INFLUXD_VERSION" >"$FM_INFLUXD.version"
}

stop_pid() { # name pidfile [seconds before SIGKILL, default 5]
	if alive "$2"; then
		log "stopping $1"
		kill "$(cat "$2")" 2>/dev/null || true
		for ((i = 0; i < ${3:-5} * 10; i++)); do
			alive "$2" || break
			sleep 0.1
		done
		alive "$2" && kill -9 "$(cat "$2")" 2>/dev/null || true
	fi
	rm -f "$2"
}
