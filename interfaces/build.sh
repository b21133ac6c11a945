#!/usr/bin/env bash
# Build the Java wire contract (interfaces/src) into interfaces/build/billingcenter-api.jar.
#
#   interfaces/build.sh            # compile against /usr/share/java/hessian.jar
#   HESSIAN_JAR=/path/to/hessian-4.0.x.jar interfaces/build.sh
#   BUILD_DIR=/tmp/x interfaces/build.sh   # put classes/ and the jar somewhere else
#
# The classes are compiled with `javac --release 8` so that Java 8 callers can load them.
# Exit status: 0 on success, 2 when a tool or the Hessian jar is missing, javac's status when
# compilation fails.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
src="$here/src"
build="${BUILD_DIR:-$here/build}"
hessian_jar="${HESSIAN_JAR:-/usr/share/java/hessian.jar}"
jar_name="billingcenter-api.jar"
install_hint="install them with: apt-get install libhessian-java openjdk-17-jdk-headless"

die() {
    echo "interfaces/build.sh: $*" >&2
    exit 2
}

command -v javac >/dev/null 2>&1 || die "javac not found on PATH; $install_hint"
command -v jar >/dev/null 2>&1 || die "jar not found on PATH; $install_hint"
[ -f "$hessian_jar" ] || die "Hessian jar not found at $hessian_jar (set HESSIAN_JAR); $install_hint"
[ -d "$src" ] || die "no Java sources at $src"

mapfile -t sources < <(find "$src" -name '*.java' | LC_ALL=C sort)
[ "${#sources[@]}" -gt 0 ] || die "no .java files under $src"

classes="$build/classes"
rm -rf "$classes"
mkdir -p "$classes"

javac --release 8 -encoding UTF-8 -Xlint:all,-options,-path -Werror \
    -classpath "$hessian_jar" -d "$classes" "${sources[@]}"

rm -f "$build/$jar_name"
jar --create --file "$build/$jar_name" -C "$classes" .
echo "$build/$jar_name"
