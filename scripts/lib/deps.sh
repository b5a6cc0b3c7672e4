# Shared install helpers for scripts/run, scripts/test and scripts/bench.
# Source it with the repo root as the working directory. Every function is
# idempotent and quiet when there is nothing to do; `apt-get update` runs only
# when a Debian package is actually missing.

as_root() {
    if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi
}

# Debian packages needed to build the broker (hwloc2 and systemd crates).
build_packages=(libhwloc-dev libsystemd-dev pkg-config build-essential)

# apt_install_missing PKG... : install the ones not installed yet.
apt_install_missing() {
    # One dpkg-query for the whole list (one per package cost ~0.1 s each);
    # packages dpkg has never heard of are simply absent from its output.
    local missing=() pkg installed
    installed=$(dpkg-query -W -f='${Package} ${Status}\n' "$@" 2>/dev/null |
        awk '$NF == "installed" && $(NF-1) == "ok" && $(NF-2) == "install" { print $1 }')
    for pkg in "$@"; do
        if ! grep -qx -- "$pkg" <<<"$installed"; then
            missing+=("$pkg")
        fi
    done
    if [[ ${#missing[@]} -eq 0 ]]; then
        echo "debian packages: all present (${*})"
        return
    fi
    echo "debian packages: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    as_root apt-get update -qq
    as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Build packages plus what the tests and the benchmark use.
install_test_debian_packages() {
    # golang-go + sarama (GOPATH sources in /usr/share/gocode): the Go client
    # in tests/integration/test_go_clients.py, built offline. burrow +
    # zookeeper (jars only, no service): tests/integration/test_burrow.py.
    # chromium: the headless browser tests/integration/test_console_ui.py
    # drives with playwright-core (tests/js); no browser is downloaded.
    # iptables: the network partitions of the cluster fault harness
    # (tests/nemesis/netns.py, DROP rules inside each broker's namespace).
    local wanted=(kcat golang-go golang-github-shopify-sarama-dev burrow zookeeper chromium iptables
        "${build_packages[@]}")
    # pyenv's python3 already carries venv + ensurepip; Debian's needs python3-venv.
    if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
        wanted+=(python3 python3-venv)
    fi
    if ! command -v npm >/dev/null 2>&1; then
        wanted+=(nodejs npm)
    fi
    # systemd-analyze (Debian's systemd package) for the unit verification
    # in tests/integration/test_ops.py, which skips without it.
    if ! command -v systemd-analyze >/dev/null 2>&1; then
        wanted+=(systemd)
    fi
    apt_install_missing "${wanted[@]}"
}

# .venv with tests/requirements.txt; re-installed only when that file changes.
install_python_venv() {
    local stamp=.venv/.corestream-requirements want
    want=$(sha256sum tests/requirements.txt | cut -d' ' -f1)
    if [[ -x .venv/bin/python && -f $stamp && $(cat "$stamp") == "$want" ]]; then
        echo "python venv: up to date (.venv)"
        return
    fi
    echo "python venv: installing tests/requirements.txt into .venv"
    [[ -x .venv/bin/python ]] || python3 -m venv .venv
    .venv/bin/python -m pip install -q --disable-pip-version-check -r tests/requirements.txt
    echo "$want" >"$stamp"
}

# tests/js/node_modules from the lockfile (npm ci); re-installed when it changes.
# tests/js/package.json: kafkajs (client round trips) and playwright-core
# (drives Debian's /usr/bin/chromium in test_console_ui.py; it downloads no
# browser of its own).
install_npm_packages() {
    local stamp=tests/js/node_modules/.corestream-lock want
    if [[ -f tests/js/package-lock.json ]]; then
        want=$(sha256sum tests/js/package-lock.json | cut -d' ' -f1)
    else
        want=none
    fi
    if [[ -f $stamp && $(cat "$stamp") == "$want" ]]; then
        echo "npm packages: up to date (tests/js/node_modules)"
        return
    fi
    echo "npm packages: installing into tests/js"
    if [[ -f tests/js/package-lock.json ]]; then
        (cd tests/js && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
    else
        (cd tests/js && npm install --no-audit --no-fund --loglevel=error >/dev/null)
        want=$(sha256sum tests/js/package-lock.json | cut -d' ' -f1)
    fi
    echo "$want" >"$stamp"
}

# cargo from PATH, or rustup's default location when PATH lacks it.
ensure_cargo() {
    if ! command -v cargo >/dev/null 2>&1 && [[ -x $HOME/.cargo/bin/cargo ]]; then
        export PATH="$HOME/.cargo/bin:$PATH"
    fi
    command -v cargo >/dev/null 2>&1 || {
        echo "cargo not found: install a Rust toolchain (rustup) first" >&2
        return 1
    }
}
