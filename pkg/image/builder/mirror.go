package builder

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/galevm/gale/pkg/image"
)

// MirrorEnv names the environment variable that, when set, overrides the
// mirror of every template build.
const MirrorEnv = "GALE_IMAGE_MIRROR"

// ErrNoMirror is returned when no mirror is configured for a suite.
var ErrNoMirror = errors.New("no apt mirror found")

// ResolveMirror picks the mirror for a build, first match wins: the
// GALE_IMAGE_MIRROR environment variable, the template's build.mirror, then
// HostMirror(aptDir, suite).
func ResolveMirror(t *image.Template, aptDir string) (string, error) {
	if m := strings.TrimSpace(os.Getenv(MirrorEnv)); m != "" {
		if err := image.CheckMirrorURL(m); err != nil {
			return "", fmt.Errorf("%s: %w", MirrorEnv, err)
		}
		return m, nil
	}
	if t.Build.Mirror != "" {
		return t.Build.Mirror, nil
	}
	return HostMirror(aptDir, t.Build.Suite)
}

// HostMirror returns the URI of the first enabled "deb" source in the host's
// apt configuration under aptDir (normally /etc/apt) that serves suite. It
// reads sources.list.d/*.sources (deb822), then sources.list.d/*.list and
// sources.list (one-line format). Files with other suffixes, such as
// "*.disabled", are ignored, as apt ignores them.
func HostMirror(aptDir, suite string) (string, error) {
	var files []string
	d822, _ := filepath.Glob(filepath.Join(aptDir, "sources.list.d", "*.sources"))
	sort.Strings(d822)
	for _, f := range d822 {
		data, err := os.ReadFile(f)
		if err != nil {
			return "", fmt.Errorf("read apt sources: %w", err)
		}
		if uri := mirrorFromDeb822(data, suite); uri != "" {
			return uri, nil
		}
		files = append(files, f)
	}
	lists, _ := filepath.Glob(filepath.Join(aptDir, "sources.list.d", "*.list"))
	sort.Strings(lists)
	lists = append([]string{filepath.Join(aptDir, "sources.list")}, lists...)
	for _, f := range lists {
		data, err := os.ReadFile(f)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("read apt sources: %w", err)
		}
		if uri := mirrorFromOneLine(data, suite); uri != "" {
			return uri, nil
		}
		files = append(files, f)
	}
	return "", fmt.Errorf("suite %q in %v: %w (set %s or build.mirror)", suite, files, ErrNoMirror, MirrorEnv)
}

// mirrorFromDeb822 scans deb822 stanzas for Types: deb and Suites: suite.
func mirrorFromDeb822(data []byte, suite string) string {
	for _, stanza := range bytes.Split(data, []byte("\n\n")) {
		fields := map[string]string{}
		var last string
		for _, line := range strings.Split(string(stanza), "\n") {
			if strings.HasPrefix(line, "#") || strings.TrimSpace(line) == "" {
				continue
			}
			if line[0] == ' ' || line[0] == '\t' { // continuation line
				if last != "" {
					fields[last] += " " + strings.TrimSpace(line)
				}
				continue
			}
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				continue
			}
			last = strings.ToLower(strings.TrimSpace(k))
			fields[last] = strings.TrimSpace(v)
		}
		if strings.EqualFold(fields["enabled"], "no") {
			continue
		}
		if !hasWord(fields["types"], "deb") || !hasWord(fields["suites"], suite) {
			continue
		}
		for _, uri := range strings.Fields(fields["uris"]) {
			if image.CheckMirrorURL(uri) == nil {
				return uri
			}
		}
	}
	return ""
}

// mirrorFromOneLine scans "deb [opts] URI suite comp..." lines.
func mirrorFromOneLine(data []byte, suite string) string {
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		f := strings.Fields(line)
		if len(f) < 3 || f[0] != "deb" {
			continue
		}
		f = f[1:]
		if strings.HasPrefix(f[0], "[") { // options, possibly with spaces
			for len(f) > 0 && !strings.HasSuffix(f[0], "]") {
				f = f[1:]
			}
			if len(f) > 0 {
				f = f[1:]
			}
		}
		if len(f) >= 2 && f[1] == suite && image.CheckMirrorURL(f[0]) == nil {
			return f[0]
		}
	}
	return ""
}

func hasWord(list, w string) bool {
	for _, x := range strings.Fields(list) {
		if x == w {
			return true
		}
	}
	return false
}
