#!/usr/bin/env bash
# Fetches the real NVIDIA libraries the tests run against, without installing anything:
# Debian's libnvidia-ml1 and libcuda1 (non-free) and python3-pynvml (contrib), downloaded with
# apt-get through a temporary sources list built from this system's own Debian archive setting,
# and unpacked with dpkg-deb -x into .cache/debian-nvidia/root. Idempotent: does nothing when
# the files are already there. No archive host name is written anywhere: it is read from
# /etc/apt at run time.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="$here/.cache/debian-nvidia"
root="$dest/root"
arch_dir="usr/lib/x86_64-linux-gnu/nvidia/current"
packages=(libnvidia-ml1 libcuda1 python3-pynvml)

if [[ -e "$root/$arch_dir/libnvidia-ml.so.1" && -e "$root/$arch_dir/libcuda.so.1" &&
      -e "$root/usr/lib/python3/dist-packages/pynvml.py" ]]; then
  exit 0
fi

# The first Debian archive URI the system is configured with (deb822 .sources or one-line lists),
# leaving out the security archive, whose suite names differ.
archive_uri() {
  local uri
  for file in /etc/apt/sources.list.d/*.sources; do
    [[ -e "$file" ]] || continue
    uri=$(awk '/^URIs:/ { for (i = 2; i <= NF; i++) if ($i !~ /security/) { print $i; exit } }' "$file")
    [[ -n "$uri" ]] && { echo "$uri"; return; }
  done
  for file in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [[ -e "$file" ]] || continue
    uri=$(awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { if ($i !~ /security/) { print $i; exit } else break } }' "$file")
    [[ -n "$uri" ]] && { echo "$uri"; return; }
  done
}

uri="$(archive_uri)"
suite="$(. /etc/os-release && echo "${VERSION_CODENAME:-}")"
if [[ -z "$uri" || -z "$suite" ]]; then
  echo "fetch-debian-nvidia: no Debian archive configured in /etc/apt (or no VERSION_CODENAME); cannot fetch ${packages[*]}" >&2
  exit 1
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/debs"
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
echo "deb [signed-by=$keyring] $uri $suite contrib non-free" > "$work/sources.list"
apt_options=(
  -o "Dir::Etc::SourceList=$work/sources.list" -o "Dir::Etc::SourceParts=/nonexistent"
  -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache" -o "Debug::NoLocking=1"
  -o "APT::Sandbox::User=$(id -un)"
)
apt-get "${apt_options[@]}" -qq update
(cd "$work/debs" && apt-get "${apt_options[@]}" -qq download "${packages[@]}")

rm -rf "$root"
mkdir -p "$root"
: > "$dest/versions.txt"
for deb in "$work"/debs/*.deb; do
  dpkg-deb -x "$deb" "$root"
  dpkg-deb -W --showformat='${Package} ${Version}\n' "$deb" >> "$dest/versions.txt"
done
echo "fetch-debian-nvidia: unpacked $(paste -sd, "$dest/versions.txt") into $root"
