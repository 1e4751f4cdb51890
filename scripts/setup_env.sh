#!/usr/bin/env bash
# Set up the project's Python environment (sourced by quickstart.sh and test.sh).
#   - creates .venv if missing and installs the pinned requirements
#     (REQS=requirements-test.txt for the test dependencies);
#   - installs Debian packages named in APT_PKGS when root and missing,
#     otherwise prints the exact command to run.
# Afterwards $PY is the virtual environment's python.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REQS="${REQS:-requirements.txt}"
APT_PKGS="${APT_PKGS:-dataset-fashion-mnist}"
PYTHON="${PYTHON:-python3}"

need_apt=()
for pkg in $APT_PKGS; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "==> apt-get install ${need_apt[*]}"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
  else
    echo "note: missing Debian packages: ${need_apt[*]}; install them with:" >&2
    echo "  sudo apt-get install -y ${need_apt[*]}" >&2
  fi
fi

if [ ! -x "$ROOT/.venv/bin/python" ]; then
  echo "==> creating $ROOT/.venv"
  "$PYTHON" -m venv "$ROOT/.venv"
fi
PY="$ROOT/.venv/bin/python"
# Reinstall only when the requirement files change.
stamp="$ROOT/.venv/.installed-$(cat "$ROOT/requirements.txt" "$ROOT/$REQS" | sha1sum | cut -c1-12)"
if [ ! -f "$stamp" ]; then
  echo "==> pip install -r $REQS (torch comes from the local wheel cache when available)"
  # (grep drops pip's notes about local index folders that do not exist)
  "$PY" -m pip install -q --disable-pip-version-check -r "$ROOT/$REQS" 2>&1 \
    | { grep -v "^WARNING: Location 'file://" || true; }
  touch "$stamp"
fi
export PY
