#!/usr/bin/env bash
# The fridaymorning local test bed: Docker Swarm, InfluxDB 1.8 fed by HAProxy's per-request log, HAProxy 2.6
# (master-worker, admin socket, Prometheus exporter), the project's Data Plane API test server (v2, or v3 with
# FM_DATAPLANE_VERSION=v3), Prometheus 2.42 scraping HAProxy, the demo app's images and a stable demo service behind
# HAProxy. Run as root on Debian; installs what is missing.
#
#   testbed.sh up          install what is missing and start everything (idempotent)
#   testbed.sh down        stop what this bed started and remove its services
#   testbed.sh status      show what runs
#   testbed.sh reset-demo  put the demo service back on its first image and all weight on stable
#   testbed.sh demo        reset the demo, then release FM_DEMO_IMAGE (default :v2) under steady load
#   testbed.sh env         print the bed's variables (eval-able)
#
# Several beds can run side by side: give each its own FM_BED (name) and FM_PORT_BASE. The Docker engine and
# its swarm are shared by all beds on the machine; everything else (ports, directories, services) is per bed.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

export FM_BED=${FM_BED:-fm}
export FM_BED_DIR=${FM_BED_DIR:-$ROOT/.testbed/$FM_BED}
export FM_PORT_BASE=${FM_PORT_BASE:-18400}
export FM_HAPROXY_PORT=${FM_HAPROXY_PORT:-$((FM_PORT_BASE + 0))}
export FM_HAPROXY_STATS_PORT=${FM_HAPROXY_STATS_PORT:-$((FM_PORT_BASE + 1))}
export FM_DATAPLANE_PORT=${FM_DATAPLANE_PORT:-$((FM_PORT_BASE + 2))}
export FM_INFLUX_PORT=${FM_INFLUX_PORT:-$((FM_PORT_BASE + 3))}
export FM_INFLUX_UDP_PORT=${FM_INFLUX_UDP_PORT:-$((FM_PORT_BASE + 4))}
export FM_INFLUX_RPC_PORT=${FM_INFLUX_RPC_PORT:-$((FM_PORT_BASE + 5))}
export FM_PROMETHEUS_PORT=${FM_PROMETHEUS_PORT:-$((FM_PORT_BASE + 6))}
export FM_STABLE_PORT=${FM_STABLE_PORT:-$((FM_PORT_BASE + 10))}
export FM_CANARY_PORT=${FM_CANARY_PORT:-$((FM_PORT_BASE + 11))}
export FM_INFLUX_DB=${FM_INFLUX_DB:-fridaymorning}
export FM_APP=${FM_APP:-demo}
export FM_SERVICE=${FM_SERVICE:-$FM_BED-demo}
export FM_HAPROXY_DIR=$FM_BED_DIR/haproxy
export FM_DATAPLANE_USER=${FM_DATAPLANE_USER:-admin}
export FM_DATAPLANE_PASSWORD_FILE=$FM_BED_DIR/dataplane.password
# The Data Plane API the test server speaks: v2 (as dataplaneapi 2.9) or v3 (as 3.3); FM_DATAPLANE_RUNTIME_WEIGHTS=no
# makes v3's runtime server endpoint ignore weights, as dataplaneapi before 3.3.1.
export FM_DATAPLANE_VERSION=${FM_DATAPLANE_VERSION:-v2}
export FM_DATAPLANE_RUNTIME_WEIGHTS=${FM_DATAPLANE_RUNTIME_WEIGHTS:-yes}
export FM_IMAGE_REPO=${FM_IMAGE_REPO:-fridaymorning/demoapp}
# Binaries shared by every bed on the machine (the InfluxDB build takes a minute or two; do it once).
export FM_TOOLS_DIR=${FM_TOOLS_DIR:-$ROOT/.testbed/tools}
export FM_BIN_DIR=$FM_BED_DIR/bin
INFLUXD_VERSION=v1.8.10

BED_SCRIPT=testbed
# shellcheck source=stacks/testbed/lib.sh
. "$ROOT/stacks/testbed/lib.sh"

render() { # template destination: fill in ${FM_*} only, leaving HAProxy's own % and $ syntax alone
	local vars
	vars=$(env | sed -n 's/^\(FM_[A-Z0-9_]*\)=.*/${\1}/p' | tr '\n' ' ')
	envsubst "$vars" <"$1" >"$2.tmp"
	if grep -n '\${FM_' "$2.tmp"; then die "unfilled variables in $1"; fi
	mv "$2.tmp" "$2"
}

ensure_packages() {
	local missing=()
	command -v dockerd >/dev/null || missing+=(docker.io)
	command -v haproxy >/dev/null || missing+=(haproxy)
	command -v envsubst >/dev/null || missing+=(gettext-base)
	command -v curl >/dev/null || missing+=(curl)
	command -v tmux >/dev/null || missing+=(tmux)
	command -v prometheus >/dev/null || missing+=(prometheus)
	install_missing "${missing[@]}"
	# Debian's package may try to start docker through an init system the machine lacks; we start it below.
}

ensure_docker() {
	if ! docker info >/dev/null 2>&1; then
		[ "$(id -u)" -eq 0 ] || die "dockerd is not running and starting it needs root"
		log "starting dockerd"
		mkdir -p "$ROOT/.testbed"
		setsid nohup dockerd >"$ROOT/.testbed/dockerd.log" 2>&1 </dev/null &
		echo $! >"$ROOT/.testbed/dockerd.pid"
		wait_for dockerd 60 docker info
	fi
	if [ "$(docker info --format '{{.Swarm.LocalNodeState}}')" != active ]; then
		log "initialising a single-node swarm"
		docker swarm init --advertise-addr 127.0.0.1 >/dev/null
	fi
}

build_go() {
	mkdir -p "$FM_BIN_DIR"
	log "building fridaymorning, demoapp, dataplanetest, loadgen"
	(cd "$ROOT" && CGO_ENABLED=0 go build -trimpath -o "$FM_BIN_DIR/" ./cmd/...)
}

build_images() {
	local ctx=$FM_BED_DIR/image
	mkdir -p "$ctx"
	cp "$FM_BIN_DIR/demoapp" "$ctx/demoapp"
	cp "$ROOT/stacks/demo/Dockerfile" "$ctx/Dockerfile"
	log "building demo images $FM_IMAGE_REPO:{v1,v2,v3,v2-errors,v2-resets,v2-slow,v2-crash,v2-unhealthy}"
	local spec tag args
	for spec in \
		"v1|--build-arg VERSION=v1" \
		"v2|--build-arg VERSION=v2" \
		"v3|--build-arg VERSION=v3" \
		"v2-errors|--build-arg VERSION=v2-errors --build-arg ERROR_RATE=0.5" \
		"v2-resets|--build-arg VERSION=v2-resets --build-arg RESET_RATE=0.2" \
		"v2-slow|--build-arg VERSION=v2-slow --build-arg LATENCY=250ms" \
		"v2-crash|--build-arg VERSION=v2-crash --build-arg CRASH=start" \
		"v2-unhealthy|--build-arg VERSION=v2-unhealthy --build-arg UNHEALTHY=true"; do
		tag=${spec%%|*}
		args=${spec#*|}
		# shellcheck disable=SC2086
		DOCKER_BUILDKIT=0 docker build -q $args -t "$FM_IMAGE_REPO:$tag" "$ctx" >/dev/null 2>"$ctx/build.log" ||
			die "docker build of $FM_IMAGE_REPO:$tag failed: $(cat "$ctx/build.log")"
	done
}

start_influxd() {
	local dir=$FM_BED_DIR/influxdb
	mkdir -p "$dir"
	# A bed started before its configuration changed (the UDP listener's precision, say) is restarted
	# with the new one: points written at one precision and read at another are lost.
	render "$ROOT/stacks/influxdb/influxdb.conf" "$dir/influxdb.conf.next"
	if alive "$dir/influxd.pid" && ! cmp -s "$dir/influxdb.conf.next" "$dir/influxdb.conf"; then
		log "InfluxDB's configuration changed: restarting it"
		stop_pid InfluxDB "$dir/influxd.pid" 30
	fi
	mv "$dir/influxdb.conf.next" "$dir/influxdb.conf"
	if ! alive "$dir/influxd.pid"; then
		log "starting InfluxDB on 127.0.0.1:$FM_INFLUX_PORT (UDP $FM_INFLUX_UDP_PORT)"
		setsid nohup "$FM_INFLUXD" -config "$dir/influxdb.conf" >"$dir/influxd.log" 2>&1 </dev/null &
		echo $! >"$dir/influxd.pid"
	fi
	wait_for "InfluxDB (log: $dir/influxd.log)" 60 curl -sf "http://127.0.0.1:$FM_INFLUX_PORT/ping"
	curl -sf -XPOST "http://127.0.0.1:$FM_INFLUX_PORT/query" --data-urlencode "q=CREATE DATABASE \"$FM_INFLUX_DB\"" >/dev/null
}

start_prometheus() {
	local dir=$FM_BED_DIR/prometheus
	mkdir -p "$dir/data"
	if ! alive "$dir/prometheus.pid"; then
		render "$ROOT/stacks/prometheus/prometheus.yml" "$dir/prometheus.yml"
		log "starting Prometheus on 127.0.0.1:$FM_PROMETHEUS_PORT (scraping HAProxy's exporter every second)"
		setsid nohup prometheus --config.file "$dir/prometheus.yml" --storage.tsdb.path "$dir/data" \
			--storage.tsdb.retention.time 6h --web.listen-address "127.0.0.1:$FM_PROMETHEUS_PORT" \
			>"$dir/prometheus.log" 2>&1 </dev/null &
		echo $! >"$dir/prometheus.pid"
	fi
	wait_for "Prometheus (log: $dir/prometheus.log)" 60 curl -sf "http://127.0.0.1:$FM_PROMETHEUS_PORT/-/ready"
}

# The demo service: Swarm watches an updated task for 1s (its default is 5s), so a promotion takes seconds.
start_demo_service() {
	if docker service inspect "$FM_SERVICE" >/dev/null 2>&1; then return 0; fi
	log "creating the stable demo service $FM_SERVICE ($FM_IMAGE_REPO:v1, host port $FM_STABLE_PORT)"
	docker service create -d --quiet --name "$FM_SERVICE" --replicas 1 \
		--publish "mode=host,target=8080,published=$FM_STABLE_PORT" \
		--label "fridaymorning.bed=$FM_BED" \
		--stop-grace-period 10s --update-monitor 1s \
		"$FM_IMAGE_REPO:v1" >/dev/null 2>&1
}

wait_demo_service() {
	wait_for "demo service $FM_SERVICE on port $FM_STABLE_PORT" 60 curl -sf "http://127.0.0.1:$FM_STABLE_PORT/healthz"
}

start_haproxy() {
	local dir=$FM_HAPROXY_DIR
	mkdir -p "$dir"
	# Rendered afresh only when HAProxy is not running or its template changed since (the log-format,
	# say): weights written by the Data Plane API are live state, kept while the template is the same.
	render "$ROOT/stacks/haproxy/haproxy.cfg" "$dir/haproxy.cfg.next"
	if alive "$dir/haproxy.pid"; then
		if cmp -s "$dir/haproxy.cfg.next" "$dir/haproxy.cfg.rendered"; then
			rm -f "$dir/haproxy.cfg.next"
			return 0
		fi
		log "HAProxy's configuration template changed: restarting it"
		stop_pid HAProxy "$dir/haproxy.pid" 10
		rm -f "$dir/admin.sock"
	fi
	cp "$dir/haproxy.cfg.next" "$dir/haproxy.cfg.rendered"
	mv "$dir/haproxy.cfg.next" "$dir/haproxy.cfg"
	haproxy -c -q -f "$dir/haproxy.cfg" || die "HAProxy rejects $dir/haproxy.cfg"
	log "starting HAProxy on 127.0.0.1:$FM_HAPROXY_PORT (stats on $FM_HAPROXY_STATS_PORT)"
	haproxy -W -D -f "$dir/haproxy.cfg" -S "$dir/master.sock,mode,600"
	wait_for "HAProxy admin socket" 20 test -S "$dir/admin.sock"
}

start_dataplane() {
	local dir=$FM_BED_DIR/dataplane
	mkdir -p "$dir"
	if [ ! -s "$FM_DATAPLANE_PASSWORD_FILE" ]; then
		(umask 077 && head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$FM_DATAPLANE_PASSWORD_FILE")
	fi
	case "$FM_DATAPLANE_VERSION" in
	v2 | v3) ;;
	*) die "FM_DATAPLANE_VERSION=$FM_DATAPLANE_VERSION: want v2 or v3" ;;
	esac
	local flags=()
	[ "$FM_DATAPLANE_RUNTIME_WEIGHTS" = no ] && flags+=(--no-runtime-weights)
	if ! alive "$dir/dataplanetest.pid"; then
		log "starting the Data Plane API $FM_DATAPLANE_VERSION test server on 127.0.0.1:$FM_DATAPLANE_PORT"
		FM_DATAPLANE_PASSWORD_FILE=$FM_DATAPLANE_PASSWORD_FILE setsid nohup "$FM_BIN_DIR/dataplanetest" \
			--api "$FM_DATAPLANE_VERSION" "${flags[@]}" \
			--listen "127.0.0.1:$FM_DATAPLANE_PORT" \
			--user "$FM_DATAPLANE_USER" \
			--config-file "$FM_HAPROXY_DIR/haproxy.cfg" \
			--haproxy-bin "$(command -v haproxy)" \
			--runtime-socket "$FM_HAPROXY_DIR/admin.sock" \
			--master-socket "$FM_HAPROXY_DIR/master.sock" \
			--work-dir "$dir" >"$dir/dataplanetest.log" 2>&1 </dev/null &
		echo $! >"$dir/dataplanetest.pid"
	fi
	wait_for "Data Plane API test server (log: $dir/dataplanetest.log)" 20 \
		curl -sf -u "$FM_DATAPLANE_USER:$(cat "$FM_DATAPLANE_PASSWORD_FILE")" "http://127.0.0.1:$FM_DATAPLANE_PORT/$FM_DATAPLANE_VERSION/info"
}

write_env() {
	{
		env | grep '^FM_' | sort | sed 's/^\([^=]*\)=\(.*\)$/export \1='"'"'\2'"'"'/'
		echo "export FM_INFLUXD='$FM_INFLUXD'"
	} >"$FM_BED_DIR/env"
	render "$ROOT/stacks/demo/fridaymorning.yaml" "$FM_BED_DIR/fridaymorning.yaml"
	# The demo config names the v2 API; point it at the version the test server speaks.
	sed -i "s#\(url: http://127.0.0.1:$FM_DATAPLANE_PORT\)/v2\$#\1/$FM_DATAPLANE_VERSION#" "$FM_BED_DIR/fridaymorning.yaml"
}

# start_supervisor runs `fridaymorning supervise` over the demo service's releases, as the production
# stack's supervisor service does: a release whose process is gone is taken over.
start_supervisor() {
	local dir=$FM_BED_DIR/supervisor
	mkdir -p "$dir"
	if ! alive "$dir/supervisor.pid"; then
		log "starting the supervisor (fridaymorning supervise) over $FM_SERVICE"
		setsid nohup "$FM_BIN_DIR/fridaymorning" supervise --config "$FM_BED_DIR/fridaymorning.yaml" \
			>"$dir/supervisor.log" 2>&1 </dev/null &
		echo $! >"$dir/supervisor.pid"
	fi
	wait_for "supervisor (log: $dir/supervisor.log)" 20 grep -q "event=supervising" "$dir/supervisor.log"
}

cmd_up() {
	ensure_packages
	command -v go >/dev/null || die "Go is not on PATH; install Go 1.26 first (see README)"
	mkdir -p "$FM_BED_DIR"
	ensure_docker
	build_go
	ensure_influxd
	build_images
	start_influxd
	start_demo_service
	wait_demo_service
	start_haproxy
	start_dataplane
	start_prometheus
	write_env
	start_supervisor
	log "up: HAProxy http://127.0.0.1:$FM_HAPROXY_PORT/ · stats http://127.0.0.1:$FM_HAPROXY_STATS_PORT/ · env $FM_BED_DIR/env"
}

cmd_down() {
	stop_pid supervisor "$FM_BED_DIR/supervisor/supervisor.pid"
	stop_pid "Data Plane API test server" "$FM_BED_DIR/dataplane/dataplanetest.pid"
	stop_pid Prometheus "$FM_BED_DIR/prometheus/prometheus.pid"
	stop_pid HAProxy "$FM_HAPROXY_DIR/haproxy.pid"
	stop_pid InfluxDB "$FM_BED_DIR/influxdb/influxd.pid"
	if docker info >/dev/null 2>&1; then
		local svcs
		svcs=$(docker service ls -q --filter "label=fridaymorning.bed=$FM_BED"; docker service ls -q --filter "name=$FM_SERVICE")
		if [ -n "$svcs" ]; then
			log "removing services of this bed"
			# shellcheck disable=SC2086
			docker service rm $(echo "$svcs" | sort -u) >/dev/null || true
		fi
	fi
	# The engine is shared by every bed; stop it only if a bed started it and no other bed still runs.
	if alive "$ROOT/.testbed/dockerd.pid"; then
		local others
		others=$(find "$ROOT/.testbed" -mindepth 3 -maxdepth 3 -name '*.pid' -path "*/influxdb/*" ! -path "$FM_BED_DIR/*" 2>/dev/null | head -1)
		if [ -z "$others" ]; then
			docker swarm leave --force >/dev/null 2>&1 || true
			stop_pid dockerd "$ROOT/.testbed/dockerd.pid"
		fi
	fi
	rm -rf "$FM_BED_DIR"
	log "down"
}

cmd_reset_demo() {
	[ -f "$FM_BED_DIR/env" ] || die "the bed is not up; run: make testbed"
	# A canary left by an interrupted release goes; the stable service goes back to v1.
	docker service rm "$FM_SERVICE-canary" >/dev/null 2>&1 || true
	if [ "$(docker service inspect -f '{{.Spec.TaskTemplate.ContainerSpec.Image}}' "$FM_SERVICE")" != "$FM_IMAGE_REPO:v1" ]; then
		log "putting $FM_SERVICE back on $FM_IMAGE_REPO:v1"
		docker service update -d --quiet --image "$FM_IMAGE_REPO:v1" "$FM_SERVICE" >/dev/null
	fi
	wait_for "demo service $FM_SERVICE on v1" 60 sh -c "curl -sf http://127.0.0.1:$FM_STABLE_PORT/ | grep -q 'from v1\$'"
	# Fresh HAProxy config (all weight on stable) and a Data Plane API server that reads it anew.
	stop_pid "Data Plane API test server" "$FM_BED_DIR/dataplane/dataplanetest.pid"
	stop_pid HAProxy "$FM_HAPROXY_DIR/haproxy.pid"
	start_haproxy
	start_dataplane
	log "demo reset: $FM_SERVICE on v1, all weight on stable"
}

cmd_demo() {
	local image=${FM_DEMO_IMAGE:-$FM_IMAGE_REPO:v2} rps=${FM_DEMO_RPS:-100}
	cmd_reset_demo
	log "demo: releasing $image to $FM_SERVICE under $rps requests/s of steady load"
	"$FM_BIN_DIR/loadgen" -url "http://127.0.0.1:$FM_HAPROXY_PORT/" -rps "$rps" -duration 15m -every 10s \
		>"$FM_BED_DIR/loadgen.json" 2>"$FM_BED_DIR/loadgen.log" &
	local lg=$! status=0
	sleep 2
	"$FM_BIN_DIR/fridaymorning" release --config "$FM_BED_DIR/fridaymorning.yaml" --image "$image" || status=$?
	kill -TERM "$lg" 2>/dev/null || true
	wait "$lg" || true
	tail -n 1 "$FM_BED_DIR/loadgen.log" >&2
	log "demo: fridaymorning exited $status; what users saw: $(cat "$FM_BED_DIR/loadgen.json")"
	return $status
}

cmd_status() {
	local f
	for f in "$FM_BED_DIR/influxdb/influxd.pid" "$FM_HAPROXY_DIR/haproxy.pid" "$FM_BED_DIR/dataplane/dataplanetest.pid" "$FM_BED_DIR/prometheus/prometheus.pid" "$FM_BED_DIR/supervisor/supervisor.pid"; do
		if alive "$f"; then echo "running  $(basename "$f" .pid) (pid $(cat "$f"))"; else echo "stopped  $(basename "$f" .pid)"; fi
	done
	docker service ls --filter "name=$FM_SERVICE" 2>/dev/null || echo "docker: not reachable"
}

case "${1:-}" in
up) cmd_up ;;
down) cmd_down ;;
status) cmd_status ;;
reset-demo) cmd_reset_demo ;;
demo) cmd_demo ;;
env) env | grep '^FM_' | sort | sed 's/^/export /' ;;
*)
	sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
	exit 2
	;;
esac
