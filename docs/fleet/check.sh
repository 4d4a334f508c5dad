#!/bin/sh
# check.sh -- the check that Ansible's `script` module copies to each host
# and runs there (docs/fleet.md): netsh's http_check over the URLs given,
# one JSON line per URL, tagged with the Ansible group (NETSH_GROUP).
# Exit status: http_check's (0 every URL passed, 1 some failed, 2 usage).
exec netsh -m http_check --json --timeout 10 \
  --tag "group=${NETSH_GROUP:-all}" "$@"
