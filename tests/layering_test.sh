#!/usr/bin/env bash
# Checks the include graph of the source tree, so the architecture cannot drift silently:
#   1. the runtime's folders form a stack, each including only itself and folders below it:
#        base <- fiber <- sched <- (netpoll, chan, sync, panic) <- (net, signal) <- run
#      (a public header in runtime/include/greenline/ counts as part of the folder that implements
#      it, so sched including greenline/chan.h is as wrong as including runtime/chan/...);
#   2. a folder's internal/ headers are included only from that folder (and by the tests that look
#      inside the runtime);
#   3. everything outside runtime/ (server/, protocol/, loadtest/) includes the runtime only
#      through its public headers, and protocol/ includes no runtime at all.
# Prints every offending include with its file and line; exits 1 if there is any.
# Usage: tests/layering_test.sh [repository root] (default: this script's repository).
set -euo pipefail
root=${1:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
cd "$root"

declare -A rank=([base]=0 [fiber]=1 [sched]=2 [netpoll]=3 [chan]=3 [sync]=3 [panic]=3
  [net]=4 [signal]=4 [run]=5)

# The folder that implements a public header.
declare -A public_owner=(
  [runtime.h]=sched [goroutine.h]=sched [state.h]=sched [dump.h]=sched
  [chan.h]=chan [timer_chan.h]=chan [internal/chan_core.h]=chan
  [mutex.h]=sync [wait_group.h]=sync [once.h]=sync [cond.h]=sync [semaphore.h]=sync
  [notifier.h]=sync [internal/sema.h]=sync [internal/wait_list.h]=sync
  [panic.h]=panic [runtime_error.h]=base [log.h]=base [internal/spinlock.h]=base
  [thread_annotations.h]=base [internal/lock_guard.h]=base [net.h]=net [signal.h]=signal
)

fail=0
say() {
  echo "layering: $*"
  fail=1
}

# The folder an included path belongs to, or "" for a path outside the runtime.
owner_of_include() {
  local inc=$1
  case $inc in
    greenline/*)
      local rel=${inc#greenline/}
      if [ -z "${public_owner[$rel]+x}" ]; then
        echo "?"
      else
        echo "${public_owner[$rel]}"
      fi
      ;;
    runtime/*/*)
      inc=${inc#runtime/}
      echo "${inc%%/*}"
      ;;
    *) echo "" ;;
  esac
}

runtime_files=$(git ls-files 'runtime/*.h' 'runtime/*.cc')
other_files=$(git ls-files 'server/*.h' 'server/*.cc' 'protocol/*.h' 'protocol/*.cc' \
  'loadtest/*.h' 'loadtest/*.cc')
if [ -z "$runtime_files" ] || [ -z "$other_files" ]; then
  echo "layering: git ls-files found no sources under $root: nothing was checked"
  exit 1
fi

# 1 and 2: the runtime's own files.
while IFS= read -r file; do
  if [[ $file == runtime/include/greenline/* ]]; then
    rel=${file#runtime/include/greenline/}
    from=${public_owner[$rel]:-}
    if [ -z "$from" ]; then
      say "$file: a public header no folder owns (add it to this script's public_owner)"
      continue
    fi
  else
    rest=${file#runtime/}
    from=${rest%%/*}
  fi
  if [ -z "${rank[$from]+x}" ]; then
    say "$file: folder '$from' is not in the stack (add it to this script and to runtime/CMakeLists.txt)"
    continue
  fi
  while IFS=: read -r line inc; do
    to=$(owner_of_include "$inc")
    [ -z "$to" ] && continue
    if [ "$to" = "?" ]; then
      say "$file:$line: includes $inc, a public header no folder owns"
      continue
    fi
    if [ "$to" != "$from" ] && [ "${rank[$to]}" -ge "${rank[$from]}" ]; then
      say "$file:$line: $from includes $inc ($to is not below $from)"
    fi
    if [[ $inc == runtime/*/internal/* ]] && [ "$to" != "$from" ]; then
      say "$file:$line: $from includes $to's internal header $inc"
    fi
  done < <(grep -n '^#include "' "$file" | sed -E 's/^([0-9]+):#include "([^"]+)".*/\1:\2/')
done <<<"$runtime_files"

# 3: everything else that ships (tests may look inside, through greenline::runtime_internals).
while IFS= read -r file; do
  while IFS=: read -r line inc; do
    case $inc in
      runtime/*) say "$file:$line: includes the runtime's internal header $inc" ;;
      greenline/internal/*) say "$file:$line: includes $inc (not API; the public headers use it)" ;;
      greenline/*)
        [[ $file == protocol/* ]] && say "$file:$line: protocol/ is pure code, but includes $inc"
        ;;
    esac
  done < <(grep -n '^#include "' "$file" | sed -E 's/^([0-9]+):#include "([^"]+)".*/\1:\2/')
done <<<"$other_files"

if [ "$fail" -ne 0 ]; then
  echo "layering: FAILED"
  exit 1
fi
echo "layering: OK (runtime: base <- fiber <- sched <- (netpoll, chan, sync, panic) <- (net, signal) <- run)"
