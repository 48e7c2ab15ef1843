#!/usr/bin/env bash
# The fridaymorning multi-node test bed: a Docker Swarm of one manager and FM_NODES-1 workers on this one
# machine, each node its own dockerd in its own network namespace on a private bridge, with
# stacks/production/stack.yml deployed on it for real (docker stack deploy): HAProxy as a Swarm service
# finding the app's tasks through Docker's DNS, the app as three replicas over the nodes, InfluxDB fed by
# HAProxy's per-request log. Run as root on Debian, beside the single-node bed (testbed.sh): it never
# touches the host's dockerd or its swarm.
#
#   multinode.sh up                 build, start and deploy everything (idempotent)
#   multinode.sh down               stop and remove everything: engines, namespaces, bridge, rules, files
#   multinode.sh status             show the nodes and the stack
#   multinode.sh reset              put the stack back as deployed (app on v1, no canary, fresh HAProxy)
#   multinode.sh node-stop NODE     stop a node's dockerd (NODE: manager, worker1, worker2, …)
#   multinode.sh node-start NODE    start it again and wait until Swarm sees it ready
#   multinode.sh env                print the bed's variables (eval-able)
#
# Each node N (1 is the manager) is dockerd in network namespace fmXnN, reached from the host over a veth
# on bridge fmXbr (192.168.X.0/24: the host is .1, node N is .N+1), with its own data and exec roots,
# socket, pidfile, key file and cgroup parent under .testbed/<bed>-nodes/nN. The manager advertises its
# bridge address, so gossip, the overlay's VXLAN and Docker's DNS work across the nodes.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

export FM_BED=${FM_BED:-fm}
export FM_PORT_BASE=${FM_PORT_BASE:-18400}
export FM_NODES=${FM_NODES:-3}
export FM_MN_DIR=${FM_MN_DIR:-$ROOT/.testbed/$FM_BED-nodes}
# One /24 per bed, derived from its port range so that beds side by side do not share a bridge.
NET=$(((FM_PORT_BASE / 10) % 200 + 40))
export FM_MN_SUBNET=${FM_MN_SUBNET:-192.168.$NET}
TAG=fm$NET # prefix of the interfaces and namespaces (interface names have 15 characters at most)
BR=${TAG}br
export FM_MN_HOST_IP=$FM_MN_SUBNET.1
export FM_MN_MANAGER_IP=$FM_MN_SUBNET.2
export FM_MN_DOCKER_HOST=unix://$FM_MN_DIR/n1/docker.sock
export FM_MN_STACK=shop
export FM_MN_SERVICE=${FM_MN_STACK}_app
export FM_MN_HAPROXY_URL=http://$FM_MN_MANAGER_IP:80/
export FM_MN_RUNTIME_TCP=tcp://$FM_MN_MANAGER_IP:9999
export FM_MN_INFLUX_URL=http://$FM_MN_MANAGER_IP:8086
export FM_MN_INFLUX_DB=fridaymorning
export FM_MN_INFLUX_TOKEN_FILE=$FM_MN_DIR/influxdb.token
export FM_MN_IMAGE_REPO=fridaymorning/demoapp
export FM_MN_HAPROXY_IMAGE=fridaymorning/haproxy:2.6
export FM_MN_INFLUXDB_IMAGE=fridaymorning/influxdb:1.8.10
export FM_MN_FRIDAYMORNING_IMAGE=fridaymorning/fridaymorning:bed
export FM_MN_SCRIPT=$ROOT/stacks/testbed/multinode.sh
export FM_TOOLS_DIR=${FM_TOOLS_DIR:-$ROOT/.testbed/tools}
INFLUXD_VERSION=v1.8.10
STACK_FILES=(-c "$ROOT/stacks/production/stack.yml" -c "$ROOT/stacks/testbed/multinode.stack.yml")

BED_SCRIPT=multinode
# shellcheck source=stacks/testbed/lib.sh
. "$ROOT/stacks/testbed/lib.sh"

# Node N: its name in Swarm, namespace, address, directory and engine.
node_name() { if [ "$1" -eq 1 ]; then echo "$FM_BED-manager"; else echo "$FM_BED-worker$(($1 - 1))"; fi; }
node_ns() { echo "${TAG}n$1"; }
node_ip() { echo "$FM_MN_SUBNET.$(($1 + 1))"; }
node_dir() { echo "$FM_MN_DIR/n$1"; }
dk() { # node docker-args...
	local n=$1
	shift
	docker -H "unix://$(node_dir "$n")/docker.sock" "$@"
}
node_index() { # manager | workerK | N
	case "$1" in
	manager) echo 1 ;;
	worker*) echo $((${1#worker} + 1)) ;;
	[0-9]*) echo "$1" ;;
	*) die "unknown node $1: say manager, worker1, worker2, …" ;;
	esac
}

ensure_packages() {
	local missing=()
	command -v dockerd >/dev/null || missing+=(docker.io)
	command -v haproxy >/dev/null || missing+=(haproxy)
	command -v curl >/dev/null || missing+=(curl)
	command -v ip >/dev/null || missing+=(iproute2)
	command -v nsenter >/dev/null || missing+=(util-linux)
	command -v iptables >/dev/null || missing+=(iptables)
	install_missing "${missing[@]}"
}

# The filter rule that lets the nodes talk across the bridge when br_netfilter sends bridged frames
# through FORWARD (policy DROP where Docker runs).
fw_chain() { if iptables -S DOCKER-USER >/dev/null 2>&1; then echo DOCKER-USER; else echo FORWARD; fi; }

ensure_bridge() {
	if ! ip link show "$BR" >/dev/null 2>&1; then
		log "creating bridge $BR ($FM_MN_HOST_IP/24)"
		ip link add "$BR" type bridge
		ip addr add "$FM_MN_HOST_IP/24" dev "$BR"
	fi
	ip link set "$BR" up
	local chain
	chain=$(fw_chain)
	iptables -C "$chain" -i "$BR" -o "$BR" -j ACCEPT 2>/dev/null || iptables -I "$chain" -i "$BR" -o "$BR" -j ACCEPT
}

ensure_netns() { # N
	local n=$1 ns veth peer
	ns=$(node_ns "$n")
	veth=${TAG}n$n
	peer=${TAG}p$n
	[ -e "/var/run/netns/$ns" ] || ip netns add "$ns"
	if ! ip link show "$veth" >/dev/null 2>&1; then
		ip link add "$veth" type veth peer name "$peer"
		ip link set "$peer" netns "$ns"
		ip -n "$ns" link set "$peer" name eth0
		ip -n "$ns" addr add "$(node_ip "$n")/24" dev eth0
		ip -n "$ns" link set eth0 up
		ip -n "$ns" link set lo up
		ip link set "$veth" master "$BR"
	fi
	ip link set "$veth" up # a test may have cut the node off (ip link set … down)
}

start_engine() { # N
	local n=$1 dir name
	dir=$(node_dir "$n")
	name=$(node_name "$n")
	mkdir -p "$dir"
	if ! alive "$dir/dockerd.pid"; then
		# Its own key file (else every engine gets one ID), data and exec roots, and cgroup parent; the
		# bridge's subnet is an insecure registry, for the registry tests' local server on the host.
		cat >"$dir/daemon.json" <<-EOF
			{
			  "deprecated-key-path": "$dir/key.json",
			  "insecure-registries": ["$FM_MN_SUBNET.0/24"],
			  "log-opts": {"max-size": "5m", "max-file": "2"}
			}
		EOF
		log "starting dockerd of $name in namespace $(node_ns "$n") ($(node_ip "$n"))"
		setsid nohup nsenter --net="/var/run/netns/$(node_ns "$n")" unshare --uts sh -c \
			"hostname '$name' && exec dockerd --config-file '$dir/daemon.json' -H 'unix://$dir/docker.sock' \
				--data-root '$dir/data' --exec-root '$dir/exec' --pidfile '$dir/dockerd.pid' \
				--cgroup-parent '$TAG-n$n'" >>"$dir/dockerd.log" 2>&1 </dev/null &
	fi
	wait_for "dockerd of $name (log: $dir/dockerd.log)" 60 dk "$n" info
}

swarm_state() { dk "$1" info --format '{{.Swarm.LocalNodeState}}' 2>/dev/null; }

ensure_swarm() {
	if [ "$(swarm_state 1)" != active ]; then
		log "initialising the swarm on $(node_name 1), advertising $FM_MN_MANAGER_IP"
		# A short heartbeat: a stopped node is seen down within seconds, not a quarter of a minute.
		dk 1 swarm init --advertise-addr "$FM_MN_MANAGER_IP" --listen-addr "$FM_MN_MANAGER_IP:2377" \
			--dispatcher-heartbeat 2s >/dev/null
	fi
	local token n
	token=$(dk 1 swarm join-token -q worker)
	for ((n = 2; n <= FM_NODES; n++)); do
		if [ "$(swarm_state "$n")" != active ]; then
			log "joining $(node_name "$n") as a worker"
			dk "$n" swarm join --token "$token" --advertise-addr "$(node_ip "$n")" \
				--listen-addr "$(node_ip "$n"):2377" "$FM_MN_MANAGER_IP:2377" >/dev/null
		fi
	done
	wait_for "$FM_NODES ready nodes" 60 sh -c "[ \$(docker -H $FM_MN_DOCKER_HOST node ls --format '{{.Status}} {{.Availability}}' | grep -c '^Ready Active') -ge $FM_NODES ]"
}

build_go() {
	mkdir -p "$FM_MN_DIR/bin"
	log "building fridaymorning, demoapp, loadgen"
	(cd "$ROOT" && CGO_ENABLED=0 go build -trimpath -o "$FM_MN_DIR/bin/" ./cmd/fridaymorning ./cmd/demoapp ./cmd/loadgen)
}

# rootfs_of copies binaries, every library ldd lists and the dynamic loader into a context's rootfs/: an
# image FROM scratch that runs a distribution's dynamically linked binary.
rootfs_of() { # context binary...
	local ctx=$1 bin lib
	shift
	rm -rf "$ctx/rootfs"
	mkdir -p "$ctx/rootfs"
	for bin in "$@"; do
		cp --parents -L "$bin" "$ctx/rootfs/"
		for lib in $(ldd "$bin" | grep -o '/[^ ]*'); do
			cp --parents -L "$lib" "$ctx/rootfs/"
		done
	done
	cp --parents -L /lib64/ld-linux-x86-64.so.2 "$ctx/rootfs/"
}

build() { # tag context [build-args...]
	local tag=$1 ctx=$2
	shift 2
	DOCKER_BUILDKIT=0 dk 1 build -q "$@" -t "$tag" "$ctx" >/dev/null 2>"$ctx/build.log" ||
		die "docker build of $tag failed: $(cat "$ctx/build.log")"
}

# Images are built on the manager's engine with the classic builder (FROM scratch: nothing to pull) and
# loaded into each worker with docker save | docker load, so that no node needs a registry.
build_images() {
	local ctx=$FM_MN_DIR/images
	mkdir -p "$ctx/demo" "$ctx/haproxy" "$ctx/influxdb"
	cp "$FM_MN_DIR/bin/demoapp" "$ctx/demo/demoapp"
	cp "$ROOT/stacks/demo/Dockerfile" "$ctx/demo/Dockerfile"
	local spec tag args
	IMAGES=()
	for spec in \
		"v1|--build-arg VERSION=v1" \
		"v2|--build-arg VERSION=v2" \
		"v3|--build-arg VERSION=v3" \
		"v2-errors|--build-arg VERSION=v2-errors --build-arg ERROR_RATE=0.5"; do
		tag=${spec%%|*}
		args=${spec#*|}
		# shellcheck disable=SC2086
		build "$FM_MN_IMAGE_REPO:$tag" "$ctx/demo" $args
		IMAGES+=("$FM_MN_IMAGE_REPO:$tag")
	done

	rootfs_of "$ctx/haproxy" "$(command -v haproxy)"
	cat >"$ctx/haproxy/Dockerfile" <<-'EOF'
		# HAProxy from Debian's package, as an image FROM scratch: the binary, its libraries, the loader.
		FROM scratch
		COPY rootfs/ /
		STOPSIGNAL SIGUSR1
		ENTRYPOINT ["/usr/sbin/haproxy", "-W", "-db", "-f", "/usr/local/etc/haproxy/haproxy.cfg"]
	EOF
	build "$FM_MN_HAPROXY_IMAGE" "$ctx/haproxy"

	rootfs_of "$ctx/influxdb" "$FM_INFLUXD"
	mkdir -p "$ctx/influxdb/rootfs/usr/bin"
	mv "$ctx/influxdb/rootfs/$FM_INFLUXD" "$ctx/influxdb/rootfs/usr/bin/influxd"
	cat >"$ctx/influxdb/Dockerfile" <<-'EOF'
		# InfluxDB 1.8, the bed's build of influxd, as an image FROM scratch.
		FROM scratch
		COPY rootfs/ /
		ENTRYPOINT ["/usr/bin/influxd", "-config", "/etc/influxdb/influxdb.conf"]
	EOF
	build "$FM_MN_INFLUXDB_IMAGE" "$ctx/influxdb"

	# fridaymorning itself, for the stack's supervisor: the static binary alone.
	mkdir -p "$ctx/fridaymorning"
	cp "$FM_MN_DIR/bin/fridaymorning" "$ctx/fridaymorning/fridaymorning"
	cat >"$ctx/fridaymorning/Dockerfile" <<-'EOF'
		FROM scratch
		COPY fridaymorning /fridaymorning
		ENTRYPOINT ["/fridaymorning"]
	EOF
	build "$FM_MN_FRIDAYMORNING_IMAGE" "$ctx/fridaymorning"
	IMAGES+=("$FM_MN_HAPROXY_IMAGE" "$FM_MN_INFLUXDB_IMAGE" "$FM_MN_FRIDAYMORNING_IMAGE")

	local n img stale
	for ((n = 2; n <= FM_NODES; n++)); do
		stale=()
		for img in "${IMAGES[@]}"; do
			[ "$(dk "$n" image inspect -f '{{.Id}}' "$img" 2>/dev/null)" = "$(dk 1 image inspect -f '{{.Id}}' "$img")" ] || stale+=("$img")
		done
		if [ ${#stale[@]} -gt 0 ]; then
			log "loading ${#stale[@]} images into $(node_name "$n")"
			dk 1 save "${stale[@]}" | dk "$n" load -q >/dev/null
		fi
	done
}

# stack_env is the environment docker stack deploy reads the image names from.
stack_env() {
	echo "APP_IMAGE=$FM_MN_IMAGE_REPO:v1" "HAPROXY_IMAGE=$FM_MN_HAPROXY_IMAGE" "INFLUXDB_IMAGE=$FM_MN_INFLUXDB_IMAGE" \
		"FRIDAYMORNING_IMAGE=$FM_MN_FRIDAYMORNING_IMAGE" "FM_MN_DOCKER_SOCK=$(node_dir 1)/docker.sock"
}

# configs_current reports whether the stack's Swarm configs hold what the files say (configs are
# immutable: a changed file needs the stack removed first).
configs_current() {
	local name file
	for name in haproxy_cfg:production/haproxy.cfg influxdb_conf:production/influxdb.conf fridaymorning_yaml:production/fridaymorning.yaml; do
		file=$ROOT/stacks/${name#*:}
		[ "$(dk 1 config inspect -f '{{printf "%s" .Spec.Data}}' "${FM_MN_STACK}_${name%%:*}" 2>/dev/null)" = "$(cat "$file")" ] || return 1
	done
}

remove_stack() {
	dk 1 stack rm "$FM_MN_STACK" >/dev/null 2>&1 || true
	wait_for "removal of stack $FM_MN_STACK" 60 sh -c "[ -z \"\$(docker -H $FM_MN_DOCKER_HOST network ls -q --filter label=com.docker.stack.namespace=$FM_MN_STACK)\" ] && [ -z \"\$(docker -H $FM_MN_DOCKER_HOST service ls -q --filter label=com.docker.stack.namespace=$FM_MN_STACK)\" ]"
}

deploy_stack() {
	if dk 1 stack ls --format '{{.Name}}' | grep -qx "$FM_MN_STACK" && ! configs_current; then
		log "the stack's configs changed: removing the stack to deploy it anew"
		remove_stack
	fi
	# The stack's external secret: the credentials the supervisor reads InfluxDB with.
	if [ ! -s "$FM_MN_INFLUX_TOKEN_FILE" ]; then
		(umask 077 && echo "fridaymorning:$(head -c 18 /dev/urandom | base64 | tr -d '/+=')" >"$FM_MN_INFLUX_TOKEN_FILE")
	fi
	dk 1 secret inspect influxdb_token >/dev/null 2>&1 || dk 1 secret create influxdb_token "$FM_MN_INFLUX_TOKEN_FILE" >/dev/null
	log "deploying stacks/production/stack.yml as stack $FM_MN_STACK"
	# shellcheck disable=SC2046
	env $(stack_env) docker -H "$FM_MN_DOCKER_HOST" stack deploy --detach --resolve-image never --prune "${STACK_FILES[@]}" "$FM_MN_STACK" >/dev/null
	# InfluxDB first: on the bed it is found by DNS round robin, so HAProxy (whose log target is
	# influxdb:8089) cannot start before InfluxDB's task runs.
	local svc
	for svc in influxdb:1 app:3 haproxy:1 supervisor:1; do
		try_for 120 service_running "${FM_MN_STACK}_${svc%%:*}" "${svc#*:}" && continue
		diagnose_service "${FM_MN_STACK}_${svc%%:*}"
		die "service ${FM_MN_STACK}_${svc%%:*} did not have ${svc#*:} running tasks within 120s (its tasks and logs above)"
	done
}

service_running() { # service tasks: at least this many of its tasks run
	local running
	running=$(dk 1 service ps -q --filter desired-state=running "$1" | xargs -r docker -H "$FM_MN_DOCKER_HOST" inspect -f '{{.Status.State}}' | grep -c '^running$')
	[ "$running" -ge "$2" ]
}

# diagnose_service prints what a CI log needs to explain a service that does not come up: its tasks
# (state, node, error), its last log lines, and the manager engine's latest errors.
diagnose_service() { # service
	log "tasks of $1:"
	dk 1 service ps --no-trunc --format '{{.Name}} {{.Node}} desired={{.DesiredState}} {{.CurrentState}} {{.Error}}' "$1" 2>&1 | head -20 | sed 's/^/  /' >&2
	log "last log lines of $1:"
	dk 1 service logs --raw --tail 20 "$1" 2>&1 | sed 's/^/  /' | tail -40 >&2
	log "nodes:"
	dk 1 node ls --format '{{.Hostname}} {{.Status}} {{.Availability}} {{.ManagerStatus}}' 2>&1 | sed 's/^/  /' >&2
	log "latest errors of the manager's engine ($(node_dir 1)/dockerd.log):"
	grep -E 'level=(error|fatal)' "$(node_dir 1)/dockerd.log" 2>/dev/null | grep -vE 'not found"|kernel parameter net.ipv4.vs' | tail -15 | cut -c1-400 | sed 's/^/  /' >&2
}

# The production InfluxDB has authentication on: the first admin user can be created without it.
ensure_influx_user() {
	wait_for "InfluxDB at $FM_MN_INFLUX_URL" 60 curl -sf "$FM_MN_INFLUX_URL/ping"
	local user pass
	user=$(cut -d: -f1 "$FM_MN_INFLUX_TOKEN_FILE")
	pass=$(cut -d: -f2- "$FM_MN_INFLUX_TOKEN_FILE")
	if ! curl -sf -u "$user:$pass" "$FM_MN_INFLUX_URL/query" --data-urlencode "q=SHOW DATABASES" >/dev/null; then
		curl -sf -XPOST "$FM_MN_INFLUX_URL/query" --data-urlencode "q=CREATE USER \"$user\" WITH PASSWORD '$pass' WITH ALL PRIVILEGES" >/dev/null ||
			die "creating InfluxDB's admin user failed: the volume ${FM_MN_STACK}_influxdb holds other users; run multinode.sh down"
	fi
	curl -sf -u "$user:$pass" -XPOST "$FM_MN_INFLUX_URL/query" --data-urlencode "q=CREATE DATABASE \"$FM_MN_INFLUX_DB\"" >/dev/null
}

wait_haproxy() {
	wait_for "HAProxy's frontend at $FM_MN_HAPROXY_URL" 90 curl -sf "$FM_MN_HAPROXY_URL"
	wait_for "HAProxy's runtime API at $FM_MN_RUNTIME_TCP" 30 bash -c "exec 3<>/dev/tcp/$FM_MN_MANAGER_IP/9999 && echo 'show info' >&3 && grep -q '^Name: HAProxy' <&3"
}

write_env() {
	local volume
	volume=$(dk 1 volume inspect -f '{{.Mountpoint}}' "${FM_MN_STACK}_haproxy_run" 2>/dev/null || true)
	{
		env | grep -E '^FM_(MN_|NODES=|BED=|PORT_BASE=)' | sort | sed 's/^\([^=]*\)=\(.*\)$/export \1='"'"'\2'"'"'/'
		echo "export FM_MN_RUNTIME_SOCKET='$volume/admin.sock'"
		echo "export FM_MN_BIN_DIR='$FM_MN_DIR/bin'"
	} >"$FM_MN_DIR/env"
	# fridaymorning.yaml for this bed: the production one, with the bed's addresses.
	sed -e "s|^  runtime_socket: .*|  runtime_socket: $FM_MN_RUNTIME_TCP   # stats socket ipv4@:9999 (FM_RUNTIME_TCP)|" \
		-e "s|^  url: http://influxdb:8086.*|  url: $FM_MN_INFLUX_URL|" \
		-e "s|^  token_file: .*|  token_file: $FM_MN_INFLUX_TOKEN_FILE|" \
		"$ROOT/stacks/production/fridaymorning.yaml" >"$FM_MN_DIR/fridaymorning.yaml"
	printf 'docker:\n  host: %s\n' "$FM_MN_DOCKER_HOST" >>"$FM_MN_DIR/fridaymorning.yaml"
}

cmd_up() {
	[ "$FM_NODES" -ge 2 ] || die "FM_NODES=$FM_NODES: a multi-node bed has a manager and at least one worker (NODES=3)"
	[ "$(id -u)" -eq 0 ] || die "the multi-node bed creates namespaces and engines: run it as root"
	ensure_packages
	command -v go >/dev/null || die "Go is not on PATH; install Go 1.26 first (see README)"
	local started=$SECONDS n
	mkdir -p "$FM_MN_DIR"
	ensure_bridge
	for ((n = 1; n <= FM_NODES; n++)); do
		ensure_netns "$n"
		start_engine "$n"
	done
	ensure_swarm
	build_go
	ensure_influxd
	build_images
	deploy_stack
	ensure_influx_user
	wait_haproxy
	write_env
	log "up in $((SECONDS - started))s: $FM_NODES nodes, HAProxy $FM_MN_HAPROXY_URL, runtime API $FM_MN_RUNTIME_TCP, InfluxDB $FM_MN_INFLUX_URL, DOCKER_HOST=$FM_MN_DOCKER_HOST, env $FM_MN_DIR/env"
}

stop_engine() { # N
	stop_pid "dockerd of $(node_name "$1")" "$(node_dir "$1")/dockerd.pid" 30
}

# leftover_pids lists processes still running in node N's cgroups (containers, shims) or started from
# its directories (its containerd), which a killed dockerd can leave behind.
leftover_pids() { # N
	local n=$1 f
	for f in /sys/fs/cgroup/pids/"$TAG-n$n"/cgroup.procs /sys/fs/cgroup/pids/"$TAG-n$n"/*/cgroup.procs; do
		[ -r "$f" ] && cat "$f"
	done
	pgrep -f -- "$(node_dir "$n")/" || true
}

cmd_down() {
	local n dir pid m
	for ((n = 1; n <= 9; n++)); do
		dir=$(node_dir "$n")
		[ -d "$dir" ] || [ -e "/var/run/netns/$(node_ns "$n")" ] || continue
		stop_engine "$n"
		for pid in $(leftover_pids "$n" | sort -u); do
			[ "$pid" != $$ ] && kill -9 "$pid" 2>/dev/null || true
		done
		for f in /sys/fs/cgroup/*/"$TAG-n$n"; do
			[ -d "$f" ] && find "$f" -depth -type d -exec rmdir {} \; 2>/dev/null || true
		done
	done
	# Mounts the engines left under the bed's directory (overlay layers, namespaces, shm), deepest first.
	if [ -d "$FM_MN_DIR" ]; then
		for m in $(awk -v d="$FM_MN_DIR/" 'index($5, d) == 1 {print $5}' /proc/self/mountinfo | sort -r); do
			umount -l "$m" 2>/dev/null || true
		done
	fi
	for ((n = 1; n <= 9; n++)); do
		ip link del "${TAG}n$n" 2>/dev/null || true
		[ -e "/var/run/netns/$(node_ns "$n")" ] && ip netns delete "$(node_ns "$n")"
	done
	if ip link show "$BR" >/dev/null 2>&1; then ip link del "$BR"; fi
	local chain
	for chain in DOCKER-USER FORWARD; do
		while iptables -D "$chain" -i "$BR" -o "$BR" -j ACCEPT 2>/dev/null; do :; done
	done
	rm -rf "$FM_MN_DIR"
	log "down"
}

cmd_status() {
	local n dir
	for ((n = 1; n <= FM_NODES; n++)); do
		dir=$(node_dir "$n")
		if alive "$dir/dockerd.pid"; then echo "running  $(node_name "$n") (dockerd pid $(cat "$dir/dockerd.pid"), $(node_ip "$n"))"; else echo "stopped  $(node_name "$n")"; fi
	done
	if alive "$(node_dir 1)/dockerd.pid"; then
		dk 1 node ls
		dk 1 stack services "$FM_MN_STACK" 2>/dev/null || true
	fi
}

# cmd_reset puts the stack back as deployed: no canary, the app on v1 on every node, HAProxy restarted
# (its runtime weights are live state), all nodes active.
cmd_reset() {
	[ -f "$FM_MN_DIR/env" ] || die "the bed is not up; run: make testbed NODES=$FM_NODES"
	local n id
	for ((n = 1; n <= FM_NODES; n++)); do
		alive "$(node_dir "$n")/dockerd.pid" || cmd_node_start "$(node_name "$n" | sed 's/.*-//')"
	done
	for id in $(dk 1 node ls -q); do
		dk 1 node update --availability active "$id" >/dev/null
	done
	dk 1 service ls -q --filter label=fridaymorning.role=canary | xargs -r docker -H "$FM_MN_DOCKER_HOST" service rm >/dev/null
	deploy_stack
	# A later stack deploy keeps the image a release left (the stack's image did not change): set it.
	dk 1 service update -d -q --no-resolve-image --image "$FM_MN_IMAGE_REPO:v1" "$FM_MN_SERVICE" >/dev/null
	dk 1 service update -d -q --force "${FM_MN_STACK}_haproxy" >/dev/null
	wait_haproxy
	log "reset: $FM_MN_SERVICE on v1, HAProxy restarted"
}

cmd_node_stop() { # node
	local n
	n=$(node_index "$1")
	[ "$n" -ne 1 ] || die "stopping the manager would stop the swarm's only manager: stop a worker"
	stop_engine "$n"
}

cmd_node_start() { # node
	local n
	n=$(node_index "$1")
	ensure_netns "$n"
	start_engine "$n"
	wait_for "$(node_name "$n") ready in the swarm" 60 sh -c "docker -H $FM_MN_DOCKER_HOST node inspect -f '{{.Status.State}}' $(node_name "$n") | grep -qx ready"
}

case "${1:-}" in
up) cmd_up ;;
down) cmd_down ;;
status) cmd_status ;;
reset) cmd_reset ;;
node-stop) cmd_node_stop "${2:?node-stop NODE}" ;;
node-start) cmd_node_start "${2:?node-start NODE}" ;;
env) env | grep -E '^FM_(MN_|NODES=)' | sort | sed 's/^/export /' ;;
*)
	sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'
	exit 2
	;;
esac
