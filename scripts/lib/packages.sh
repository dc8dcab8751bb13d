# Shared by scripts/demo and scripts/test: makes sure the Debian packages a build or a test needs
# are installed, installing them when run as root (or with sudo), or saying exactly what to run.

# ensure_packages PKG... : installs whichever of PKG are missing.
ensure_packages() {
    local missing=()
    local pkg
    for pkg in "$@"; do
        if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
            missing+=("$pkg")
        fi
    done
    [ ${#missing[@]} -eq 0 ] && return 0

    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1; then
            sudo="sudo"
        else
            echo "error: missing system packages: ${missing[*]}" >&2
            echo "       install them with: apt-get install ${missing[*]}" >&2
            return 1
        fi
    fi
    echo "==> installing system packages: ${missing[*]}" >&2
    $sudo apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

# Packages every build needs: rodio links ALSA through pkg-config.
BUILD_PACKAGES=(pkg-config libasound2-dev)
# Packages the tests need on top: a real browser for the page's end-to-end tests, a real NATS
# server for the relay's cluster tests (relay/tests/cluster*.rs), and a D-Bus daemon for the
# agent's private bus with a fake logind (agent/tests/e2e/sleep.rs).
TEST_PACKAGES=(chromium chromium-driver nats-server dbus-daemon)
