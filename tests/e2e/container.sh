#!/usr/bin/env bash
# baton as PID 1 of a real container: examples/container's rootfs.sh and
# Containerfile, built with podman into a local image (FROM scratch: nothing
# is pulled) and run with runc. From the host, through the control socket
# bind-mounted out of the container, 5 restarts under load lose no request;
# `podman stop` (SIGTERM) then drains it and the container exits 0.
# Skips (77) where podman and runc cannot build and run a container at all,
# which a trivial image (/bin/true) probes first with the same flags; after
# that every failure is the example's or baton's.
# Needs (apt): podman, runc. Runs as root (rootful podman).
. "$(dirname "$0")/lib.sh"
: "${SOURCE_DIR:?}"
EXAMPLE="$SOURCE_DIR/examples/container"

NAME="baton-e2e-container-$$"          # the container
IMAGE="localhost/baton-e2e-container:$$" # and the image this test makes
PROBE="localhost/baton-e2e-probe:$$"     # the runtime probe's image
IMAGES=()                                # those built so far, removed on exit
RAN=""                                   # set once the container exists
# runc: crun (podman's default on Debian) fails on a cgroup v1/hybrid host
# ("cgroups in hybrid mode not supported"); runc runs on v1 and v2.
# --ulimit: podman's defaults (nofile 1048576, nproc up to pid_max) are
# above the limits podman itself runs under, and runc cannot raise them
# without CAP_SYS_RESOURCE ("setrlimit RLIMIT_NOFILE: Operation not
# permitted"). --init=false and --userns=host whatever containers.conf
# says: baton must be PID 1, and the host's root must be root inside for the
# control socket's peer check (same uid or root).
RUNTIME=runc
RUN_FLAGS=(--runtime "$RUNTIME" --network=host --pull=never --init=false --userns=host
    --ulimit nofile=4096:4096 --ulimit nproc=4096:4096)
# COPY needs no runtime; --runtime runc all the same, should a step ever RUN.
BUILD_FLAGS=(--runtime "$RUNTIME" --pull=never --layers=false -q)

container_cleanup() {
    local rc=$? i
    set +e
    if [ -n "$RAN" ]; then
        [ $rc -eq 0 ] || timeout 30 podman logs "$NAME" > "$T/sup.log" 2>&1
        timeout 60 podman rm -f -t 0 "$NAME" > /dev/null 2>&1
    fi
    for i in "${IMAGES[@]}"; do
        timeout 60 podman rmi -f "$i" > /dev/null 2>&1
    done
    (exit $rc)
    cleanup # lib.sh's: the load client, $T (and the log's tail on failure)
    exit $rc
}
trap container_cleanup EXIT

skip() {
    echo "skip: $*"
    exit 77
}

# last_error FILE: the last non-empty line FILE holds, on one line.
last_error() { grep -v '^[[:space:]]*$' "$1" | tail -1 | tr -d '\r' | cut -c1-300; }

command -v podman > /dev/null || skip "podman is not installed (apt: podman)"
command -v "$RUNTIME" > /dev/null || skip "$RUNTIME is not installed (apt: $RUNTIME)"

# The probe: /bin/true and the libraries it links, as an image built and run
# exactly as the example's is below.
mkdir -p "$T/probe/rootfs/bin"
cp /bin/true "$T/probe/rootfs/bin/true"
for lib in $(ldd /bin/true | awk '$2 == "=>" && $3 ~ /^\// { print $3; next } $1 ~ /^\// { print $1 }'); do
    install -D -m 0755 "$lib" "$T/probe/rootfs$lib"
done
printf '%s\n' 'FROM scratch' 'COPY rootfs/ /' 'ENTRYPOINT ["/bin/true"]' > "$T/probe/Containerfile"
IMAGES+=("$PROBE")
timeout 60 podman build "${BUILD_FLAGS[@]}" -t "$PROBE" -f "$T/probe/Containerfile" "$T/probe" \
    > "$T/probe.log" 2>&1 ||
    skip "podman cannot build an image here: $(last_error "$T/probe.log")"
timeout 60 podman run --rm "${RUN_FLAGS[@]}" "$PROBE" > "$T/probe.log" 2>&1 ||
    skip "podman --runtime $RUNTIME cannot run a container here: $(last_error "$T/probe.log")"
timeout 60 podman rmi "$PROBE" > /dev/null 2>&1 || true
IMAGES=()

# The example, as its Containerfile's comment says to build it.
"$EXAMPLE/rootfs.sh" "$T/image/rootfs" "$BATON" "$HELLO" > /dev/null || fail "rootfs.sh failed"
IMAGES+=("$IMAGE")
timeout 60 podman build "${BUILD_FLAGS[@]}" -t "$IMAGE" -f "$EXAMPLE/Containerfile" "$T/image" \
    > "$T/build.log" 2>&1 || fail "podman build: $(cat "$T/build.log")"

# The control socket's folder, bind-mounted out; the example server on a
# free loopback port (the host's network: the kernel picks one free there).
mkdir -m 0700 "$T/run"
SOCK="$T/run/control.sock"
RAN=1
timeout 60 podman run -d --name "$NAME" "${RUN_FLAGS[@]}" --log-driver k8s-file \
    -e HELLO_HOST=127.0.0.1 -e HELLO_PORT=0 -v "$T/run:/run/baton" "$IMAGE" \
    > "$T/run.log" 2>&1 || fail "podman run: $(cat "$T/run.log")"
# Up to 20 s for a serving generation; a container that ended fails at once.
running() { [ "$(timeout 30 podman inspect --format '{{.State.Status}}' "$NAME" 2>&1)" = running ]; }
for _ in $(seq 1 100); do
    has_active > /dev/null 2>&1 && break
    running || fail "the container ended before it served:" \
        "$(timeout 30 podman inspect --format '{{.State.Status}}, exit code {{.State.ExitCode}}' "$NAME" 2>&1)"
    sleep 0.2
done
has_active > /dev/null 2>&1 || fail "no active generation in the container within 20 s"

# PID 1: as the supervisor sees itself, as the host sees it, in its log.
STATUS=$("$BATON" status -s "$SOCK" --json)
[ "$(python3 -c 'import json, sys; print(json.load(sys.stdin)["pid"])' <<< "$STATUS")" = 1 ] ||
    fail "baton status does not say pid 1: $STATUS"
HPID=$(timeout 30 podman inspect --format '{{.State.Pid}}' "$NAME")
[ "$(cat "/proc/$HPID/comm")" = baton ] || fail "the container's process $HPID is $(cat "/proc/$HPID/comm")"
[ "$(awk '$1 == "NSpid:" { print $NF }' "/proc/$HPID/status")" = 1 ] ||
    fail "process $HPID is not PID 1 in its namespace: $(grep NSpid "/proc/$HPID/status")"
timeout 30 podman logs "$NAME" > "$T/sup.log" 2>&1
grep -q 'baton\[1\] info: supervisor of .hello. running (pid 1)' "$T/sup.log" ||
    fail "no 'baton[1]' start-up line in the container's log"

PORT=$(tr -d ' \n' <<< "$STATUS" | sed -n 's/.*"address":"tcp:\/\/127\.0\.0\.1:\([0-9]*\)".*/\1/p')
[ -n "$PORT" ] || fail "no port in status: $STATUS"
start_load
for i in 1 2 3 4 5; do
    timeout 30 "$BATON" restart -s "$SOCK" > /dev/null || fail "restart $i"
    sleep 0.3
done
stop_load
assert_no_load_errors 100
active_is 6 || fail "generation $(active_generation) is active, not 6"

# podman stop: STOPSIGNAL SIGTERM to PID 1, which drains and exits 0
# (SIGKILL after 20 s would be exit code 137).
timeout 40 podman stop -t 20 "$NAME" > /dev/null || fail "podman stop failed"
STATE=$(timeout 30 podman inspect --format '{{.State.Status}} {{.State.ExitCode}}' "$NAME")
timeout 30 podman logs "$NAME" > "$T/sup.log" 2>&1
[ "$STATE" = "exited 0" ] || fail "the container ended '$STATE', not 'exited 0'"
grep -q 'baton\[1\] info: Terminated: stopping gracefully' "$T/sup.log" ||
    fail "PID 1 did not handle podman stop's SIGTERM"
grep -q 'baton\[1\] info: supervisor exiting with code 0' "$T/sup.log" ||
    fail "the supervisor did not exit 0"
echo "ok: PID 1 in a runc container, 5 restarts, $LOAD"
