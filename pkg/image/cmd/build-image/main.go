// Command build-image builds a gale VM template into the image cache and
// prints the qcow2 path as the last line of standard output. Progress and
// tool output go to standard error.
//
//	build-image [-cache DIR] [-sha256] [-q] [images/debian-12.yaml]
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/galevm/gale/pkg/image"
	"github.com/galevm/gale/pkg/image/builder"
	"github.com/galevm/gale/pkg/imagestore"
)

func main() {
	cache := flag.String("cache", imagestore.DefaultDir, "image cache directory")
	sum := flag.Bool("sha256", false, "print the image's sha256 and recipe hash to stderr (for the template's checksum field)")
	quiet := flag.Bool("q", false, "do not copy tool output to stderr, only stages")
	flag.Parse()
	path := "images/debian-12.yaml"
	if flag.NArg() > 1 {
		fmt.Fprintln(os.Stderr, "usage: build-image [flags] [template.yaml]")
		os.Exit(2)
	}
	if flag.NArg() == 1 {
		path = flag.Arg(0)
	}
	if err := run(path, *cache, *sum, *quiet); err != nil {
		fmt.Fprintln(os.Stderr, "build-image:", err)
		os.Exit(1)
	}
}

func run(path, cache string, sum, quiet bool) error {
	t, err := image.LoadTemplate(path)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var logw io.Writer = os.Stderr
	if quiet {
		logw = io.Discard
	}
	start := time.Now()
	out, err := builder.Build(ctx, t, builder.Options{
		CacheDir: cache,
		Log:      logw,
		Progress: func(stage string) {
			fmt.Fprintf(os.Stderr, "==> [%6.1fs] %s\n", time.Since(start).Seconds(), stage)
		},
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "==> [%6.1fs] ready\n", time.Since(start).Seconds())
	if sum {
		h, err := fileSHA256(out)
		if err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "checksum:\n  recipe: %s\n  sha256: %s\n", t.RecipeHash()[:12], h)
	}
	fmt.Println(out)
	return nil
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("checksum: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("checksum %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
