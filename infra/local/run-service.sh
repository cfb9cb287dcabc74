#!/usr/bin/env bash
# How supervisord (infra/local/stack.sh) starts each service of the local stack:
#   run-service.sh <program> <command> [args...]
# It ends what an earlier instance of the same program left behind (the LocalExecutor workers of a
# scheduler killed with -9 keep running and holding memory and connections), records the program's
# process group in .local/run/programs (knowdo.stack_processes names the stack's processes by it), then
# execs the service: supervisord sees the service's own pid, leader of a process group of its own
# (stopasgroup/killasgroup).
set -euo pipefail
program=$1; shift
"$KNOWDO_HOME/.venv/bin/knowdo" stack kill-strays --program "$program" --keep $$ \
  | sed 's/^/run-service: ended a leftover process of this program: /' >&2 || true
echo "$program $$" >>"$KNOWDO_LOCAL_DIR/run/programs"
exec "$@"
