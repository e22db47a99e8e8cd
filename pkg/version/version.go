// Package version holds the version of the gale binaries. The Makefile sets
// it at link time:
//
//	go build -ldflags "-X github.com/galevm/gale/pkg/version.Version=v0.1.0" ./cmd/...
package version

// Version is the build's version; "dev" for a plain go build.
var Version = "dev"
