// Package testtool lets tests depend on host tools (qemu-img, sfdisk,
// isoinfo...) without hiding a missing one in CI.
//
// A developer's quick run skips a test whose tool is missing. With
// GALE_REQUIRE_TOOLS=1 in the environment, as scripts/test.sh sets it, the
// same test fails instead, naming the tool, so a package missing from
// scripts/packages.txt cannot pass unnoticed.
package testtool

import (
	"os"
	"os/exec"
	"testing"
)

// RequireEnv is the environment variable that turns skips for missing tools
// into failures when it is "1".
const RequireEnv = "GALE_REQUIRE_TOOLS"

// Strict reports whether missing tools fail tests (RequireEnv is "1").
func Strict() bool { return os.Getenv(RequireEnv) == "1" }

// Need returns the path of each tool, in order. A tool that is not on PATH
// ends the test: Skip normally, Fatal when Strict. hint names the Debian
// package or the set-up step that provides the tools.
func Need(tb testing.TB, hint string, tools ...string) []string {
	tb.Helper()
	paths := make([]string, 0, len(tools))
	for _, tool := range tools {
		p, err := exec.LookPath(tool)
		if err != nil {
			Missing(tb, "%s not installed (%s)", tool, hint)
		}
		paths = append(paths, p)
	}
	return paths
}

// Missing ends the test because something the host should provide is
// absent: it skips with the formatted reason, or fails with it when Strict.
func Missing(tb testing.TB, format string, args ...any) {
	tb.Helper()
	if Strict() {
		tb.Fatalf("required by "+RequireEnv+"=1: "+format, args...)
	}
	tb.Skipf(format, args...)
}
