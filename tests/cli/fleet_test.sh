#!/usr/bin/env bash
# fleet_test.sh -- the recipes of docs/fleet.md, run here: GNU parallel
# fan-out with --tag (the local ":" sshlogin) and a sharded list, Ansible's
# ad-hoc `script` run over `-c local` (docs/fleet/check.sh), the
# Kubernetes Indexed Job of docs/fleet/tls-expiry-job.yaml (validated as
# YAML, its command run as 4 local "pods" with JOB_COMPLETION_INDEX set),
# and the Nagios commands of docs/fleet/netsh.cfg (exit codes and the
# status line). Loopback only: tests/support/http_oddities.py and closed
# ports. Needs parallel, ansible-core and python3-yaml (./setup.sh).
# usage: tests/cli/fleet_test.sh path/to/netsh
set -u
N=$(realpath "${1:?usage: fleet_test.sh path/to/netsh}")
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$(dirname "$0")/../.."
for tool in parallel ansible jq python3; do
  command -v $tool >/dev/null || { echo "FAIL $tool is not installed (run ./setup.sh)"; exit 1; }
done
python3 -c 'import yaml' || { echo "FAIL python3-yaml is not installed (run ./setup.sh)"; exit 1; }

# the recipes call `netsh` by name
mkdir "$T/bin" && ln -s "$N" "$T/bin/netsh"
export PATH="$T/bin:$PATH"

python3 tests/support/http_oddities.py "$T/http.port" 120 & pids+=($!)
for _ in $(seq 100); do [ -s "$T/http.port" ] && break; sleep 0.05; done
HP=$(cut -d' ' -f1 "$T/http.port")
[ -n "$HP" ] || { echo "could not start the HTTP test server"; exit 1; }
U="http://127.0.0.1:$HP"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
CLOSED=$(free_port)
# targets for the sharded runs: refused at once, one line each
targets=""
for p in $(seq 1 20); do targets+=" 127.0.0.1:$p"; done

# every target of $targets exactly once in the JSON lines on stdin
once_each() {
  jq -r .target | sort | uniq -c | awk -v want=20 '
    $1 != 1 { bad = 1 } { n++ } END { exit (bad || n != want) }'
}

###########################################################################
# GNU parallel
out=$(parallel --will-cite --tag --nonall -S : \
  netsh -m http_check --json --tag region=local "$U/json" "$U/status/404")
rc=$?
n=$(cut -f2- <<< "$out" | jq -s '[.[] | select(.tool == "http_check" and .region == "local")] | length')
[ $rc = 1 ] && [ "$n" = 2 ] && [ "$(cut -f1 <<< "$out" | sort -u)" = ":" ] \
  && ok "parallel --tag --nonall -S : runs the check once per login, lines tagged" \
  || ko "parallel --nonall (rc=$rc n=$n)" "$out"

out=$(parallel --will-cite --tag -S : \
  "netsh -m wait_for --json -t 0 --shard {}/3 $targets" ::: 0 1 2)
if cut -f2- <<< "$out" | once_each; then
  ok "parallel ::: 0 1 2 with --shard {}/3: every target once"
else ko "parallel --shard" "$out"; fi
# the shard a line came from is the one jump(hash(target)) names
bad=$(while IFS=$'\t' read -r i line; do
  t=$(jq -r .target <<< "$line")
  want=$(netsh -e "print(require('netsh.shard').index('$t', 3))")
  [ "$i" = "$want" ] || echo "$t in $i, not $want"
done <<< "$out")
[ -z "$bad" ] && ok "parallel --shard: each target in the shard its hash names" \
  || ko "parallel --shard placement" "$bad"

out=$(parallel --will-cite --tag -S : \
  "netsh -m http_bench $U/json -n 30 -c 2 --json --tag run={}" ::: 1 2 3 |
  netsh -m http_bench --merge --json); rc=$?
r=$(jq -c '[.requests, .merged, .failed, .histogram.count, (.p99 >= .p50)]' <<< "$out")
[ $rc = 0 ] && [ "$r" = "[90,3,0,90,true]" ] \
  && ok "parallel http_bench x3 | http_bench --merge: totals and percentiles" \
  || ko "http_bench merge (rc=$rc $r)" "$out"
parallel --will-cite --tag -S : "netsh -m http_bench $U/json -n 10 -c 1 --json --tag run={}" \
  ::: 1 2 > "$T/bench.jsonl"
netsh -m http_bench --merge --threshold 'p99<30s' "$T/bench.jsonl" > /dev/null
a=$?
netsh -m http_bench --merge --threshold 'p99<1us' "$T/bench.jsonl" > /dev/null
b=$?
[ $a = 0 ] && [ $b = 1 ] && ok "http_bench --merge --threshold: exit 0 / 1" \
  || ko "merge threshold ($a $b)"

# a real run's histogram agrees with its exact percentiles (bucket precision)
netsh -m http_bench "$U/json" -n 200 -c 4 --json > "$T/one.jsonl"
netsh -m http_bench --merge --json "$T/one.jsonl" > "$T/merged.json"
r=$(jq -s -r '.[0] as $a | .[1] as $m | [ "p50", "p90", "p99" ] | map(
  (($a[.] - $m[.]) | fabs) <= ($a[.] / 256 + 0.0000006)) | all' \
  "$T/one.jsonl" "$T/merged.json")
[ "$r" = true ] && ok "one run's p50/p90/p99 = its merged histogram's, within 1/256" \
  || ko "histogram vs exact" "$(cat "$T/one.jsonl" "$T/merged.json")"

###########################################################################
# Ansible: ad-hoc `script` over the local connection
export ANSIBLE_HOME="$T/ansible" ANSIBLE_LOCAL_TEMP="$T/ansible/l" \
  ANSIBLE_REMOTE_TEMP="$T/ansible/r" ANSIBLE_NOCOLOR=1 \
  ANSIBLE_PYTHON_INTERPRETER=auto_silent ANSIBLE_HOST_KEY_CHECKING=False
ansible all -i 'localhost,' -c local -m script \
  -a "docs/fleet/check.sh $U/json $U/status/404" -t "$T/tree" \
  > "$T/ansible.out" 2>&1
rc=$?
lines=$(jq -r '.stdout_lines[]' "$T/tree/localhost" 2>/dev/null)
# lines come as the URLs complete: sorted for the comparison
r=$(jq -sc '[.[] | [.tool, .target, .ok, .group]] | sort' <<< "$lines" 2>/dev/null)
want="[[\"http_check\",\"$U/json\",true,\"all\"],[\"http_check\",\"$U/status/404\",false,\"all\"]]"
[ $rc = 2 ] && [ "$r" = "$want" ] \
  && ok "ansible -c local -m script check.sh: JSON lines, a failing host exits 2" \
  || ko "ansible (rc=$rc)" "$r" "$(tail -5 "$T/ansible.out")"
ansible all -i 'localhost,' -c local -m script -a "docs/fleet/check.sh $U/json" \
  -t "$T/tree2" > "$T/ansible.out" 2>&1
rc=$?
[ $rc = 0 ] && jq -e '.rc == 0' "$T/tree2/localhost" > /dev/null \
  && ok "ansible: every URL passing exits 0" \
  || ko "ansible ok (rc=$rc)" "$(tail -5 "$T/ansible.out")"

###########################################################################
# Kubernetes: the Indexed Job manifest, and its command as 4 pods
job=docs/fleet/tls-expiry-job.yaml
if python3 - "$job" > "$T/job.env" <<'EOF'
import shlex, sys, yaml
docs = list(yaml.safe_load_all(open(sys.argv[1])))
cm = next(d for d in docs if d["kind"] == "ConfigMap")
job = next(d for d in docs if d["kind"] == "Job")
assert job["apiVersion"] == "batch/v1"
spec = job["spec"]
assert spec["completionMode"] == "Indexed"
pod = spec["template"]["spec"]
assert pod["restartPolicy"] in ("Never", "OnFailure")
(c,) = pod["containers"]
env = {e["name"]: e["value"] for e in c["env"]}
assert int(env["NETSH_SHARDS"]) == spec["completions"], "NETSH_SHARDS != completions"
mount = c["volumeMounts"][0]
vol = next(v for v in pod["volumes"] if v["name"] == mount["name"])
assert vol["configMap"]["name"] == cm["metadata"]["name"]
key = next(iter(cm["data"]))
path = mount["mountPath"] + "/" + key
cmd = c["command"]
assert cmd[:2] == ["sh", "-c"] and path in cmd[2], (cmd, path)
print("SHARDS=%d" % spec["completions"])
print("HOSTS_PATH=%s" % shlex.quote(path))
print("CMD=%s" % shlex.quote(cmd[2]))
EOF
then
  ok "the Indexed Job manifest is valid YAML: Indexed, NETSH_SHARDS = completions"
  . "$T/job.env"
  # the pods: the manifest's command, the hosts file local, the index set
  tr ' ' '\n' <<< "$targets" | sed '/^$/d' > "$T/hosts.txt"
  : > "$T/pods.jsonl"
  for i in $(seq 0 $((SHARDS - 1))); do
    ( export JOB_COMPLETION_INDEX=$i NETSH_SHARDS=$SHARDS HOSTNAME=pod-$i
      sh -c "${CMD//$HOSTS_PATH/$T/hosts.txt}" ) >> "$T/pods.jsonl" 2>/dev/null
  done
  once_each < "$T/pods.jsonl" \
    && ok "$SHARDS local pods with JOB_COMPLETION_INDEX: every host once" \
    || ko "k8s shards" "$(cat "$T/pods.jsonl")"
  pods=$(jq -r .pod "$T/pods.jsonl" | sort -u | tr '\n' ' ')
  [ "$pods" = "pod-0 pod-1 pod-2 pod-3 " ] \
    && ok "each pod's lines carry its --tag pod=\$HOSTNAME" || ko "pod tags" "$pods"
else
  ko "the Indexed Job manifest" "$(cat "$T/job.env")"
fi

###########################################################################
# Nagios: the command definitions of docs/fleet/netsh.cfg
cfg=docs/fleet/netsh.cfg
# nagios NAME HOSTADDRESS ARG1 ARG2 ... -> sets out and rc as Nagios would
nagios() {
  local name=$1 host=$2; shift 2
  local line
  line=$(awk -v n="$name" '
    /command_name/ { cur = $2 }
    /command_line/ && cur == n { sub(/^[ \t]*command_line[ \t]+/, ""); print }' "$cfg")
  [ -n "$line" ] || { out="no command $name"; rc=99; return; }
  line=${line//\/usr\/local\/bin\/netsh/netsh}
  line=${line//\$HOSTADDRESS\$/$host}
  local i=1
  for a in "$@"; do line=${line//\$ARG$i\$/$a}; i=$((i + 1)); done
  out=$(sh -c "$line" 2>/dev/null); rc=$?
}
# one line: NAME STATE: text | label=value[UOM];warn;crit;min;max ...
PERF="'?[^=']+'?=-?[0-9.]+[a-zA-Z%]*(;[^; ]*){0,4}"
status_line() {
  [ "$(wc -l <<< "$out")" = 1 ] && grep -Eq "^$1 $2: [^|]+( \| $PERF( $PERF)*)?$" <<< "$out"
}
nagios check_netsh_http - 5 10 "$U/json"
[ $rc = 0 ] && status_line HTTP_CHECK OK \
  && grep -Eq "'$U/json'=[0-9.]+s;5;10;0$" <<< "$out" \
  && ok "check_netsh_http: OK, exit 0, perf data" || ko "http OK (rc=$rc)" "$out"
nagios check_netsh_http - @0:100 10 "$U/json"
[ $rc = 1 ] && status_line HTTP_CHECK WARNING \
  && ok "check_netsh_http: WARNING, exit 1" || ko "http WARNING (rc=$rc)" "$out"
nagios check_netsh_http - 5 10 "$U/status/404"
[ $rc = 2 ] && status_line HTTP_CHECK CRITICAL && grep -q "unexpected status 404" <<< "$out" \
  && ok "check_netsh_http: CRITICAL, exit 2" || ko "http CRITICAL (rc=$rc)" "$out"
nagios check_netsh_http - 5:x 10 "$U/json"
[ $rc = 3 ] && status_line HTTP_CHECK UNKNOWN \
  && ok "check_netsh_http: a bad range is UNKNOWN, exit 3" || ko "http UNKNOWN (rc=$rc)" "$out"
nagios check_netsh_tls 127.0.0.1 30 7 "$CLOSED"
[ $rc = 2 ] && status_line TLS_EXPIRY CRITICAL && grep -q "connection refused" <<< "$out" \
  && ok "check_netsh_tls: unreachable is CRITICAL" || ko "tls (rc=$rc)" "$out"
nagios check_netsh_ports 127.0.0.1 "$HP,$CLOSED" 1:1
[ $rc = 0 ] && status_line PORT_SCAN OK && grep -q "open=1;;1:1;0;2$" <<< "$out" \
  && ok "check_netsh_ports: the expected open ports, OK" || ko "ports OK (rc=$rc)" "$out"
nagios check_netsh_ports 127.0.0.1 "$HP,$CLOSED" 2:2
[ $rc = 2 ] && status_line PORT_SCAN CRITICAL \
  && ok "check_netsh_ports: a port missing, CRITICAL" || ko "ports CRITICAL (rc=$rc)" "$out"

finish
