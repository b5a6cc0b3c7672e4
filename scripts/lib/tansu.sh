# The peer broker of `scripts/bench --suite`: Tansu 0.6.0 from crates.io,
# built once and cached (later releases, renamed nisshi, need a newer rustc).
#
# Cache: $TANSU_ROOT, default /work/.tansu when /work exists (this
# development machine, shared by every worktree), else
# ~/.cache/corestream/tansu. The binary is $TANSU_ROOT/bin/tansu. Features:
# libSQL (SQLite) and dynostore (memory/S3) storage only, no PostgreSQL.
# The build takes ~13-25 minutes on 2 cores; TANSU_TARGET_DIR reuses the
# artifacts of an interrupted build.

TANSU_VERSION=0.6.0

tansu_root() {
    if [[ -n ${TANSU_ROOT:-} ]]; then
        echo "$TANSU_ROOT"
    elif [[ -d /work ]]; then
        echo /work/.tansu
    else
        echo "${XDG_CACHE_HOME:-$HOME/.cache}/corestream/tansu"
    fi
}

# install_tansu: prints the binary's path on success; the build log goes to
# $(tansu_root)/build.log. Returns non-zero when it cannot be had.
install_tansu() {
    local root bin
    root=$(tansu_root)
    bin=$root/bin/tansu
    if [[ -x $bin ]] && "$bin" --version 2>/dev/null | grep -q "$TANSU_VERSION"; then
        echo "$bin"
        return 0
    fi
    mkdir -p "$root"
    echo "tansu: building $TANSU_VERSION into $root (log: $root/build.log; ~13-25 min)" >&2
    # libsql bundles SQLite's C sources: a C compiler is enough.
    apt_install_missing build-essential pkg-config >&2
    local target=()
    [[ -n ${TANSU_TARGET_DIR:-} ]] && target=(--target-dir "$TANSU_TARGET_DIR")
    if ! cargo install tansu --version "$TANSU_VERSION" --locked --no-default-features \
        --features libsql,dynostore --root "$root" "${target[@]}" >"$root/build.log" 2>&1; then
        echo "tansu: build failed, see $root/build.log" >&2
        return 1
    fi
    echo "$bin"
}
