package preflight

import (
	"regexp"
	"strconv"
	"strings"
)

// devNameRE matches, at the start of a string, a disk device name that
// changes when the disk moves to a virtio-blk controller. Groups: 1 sd/hd/xvd
// letters, 2 their partition; 3 NVMe controller, 4 namespace, 5 partition;
// 6 cciss disk, 7 partition; a /dev/disk/by-id or by-path name has none.
var devNameRE = regexp.MustCompile(`^/dev/(?:` +
	`(?:sd|hd|xvd)([a-z]{1,3})([0-9]*)` +
	`|nvme([0-9]+)n([0-9]+)(?:p([0-9]+))?` +
	`|cciss/c[0-9]+d([0-9]+)(?:p([0-9]+))?` +
	`|disk/by-(?:id|path)/[^\s"',;)]+` +
	`)`)

// devRef is one unstable device name in a file.
type devRef struct {
	Line int    // 1-based
	Name string // as written, e.g. /dev/sda1
	// Virtio is the name the device gets under virtio-blk (/dev/vda1),
	// "" when there is no mechanical answer (by-id, by-path, NVMe
	// namespaces other than 1).
	Virtio string
}

// findDeviceNames returns the unstable device names in data, a config
// file; lines whose first non-blank character is '#' are comments and are
// skipped.
func findDeviceNames(data []byte) []devRef {
	var refs []devRef
	for i, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		for _, m := range matchDevices(line) {
			refs = append(refs, devRef{Line: i + 1, Name: line[m[0]:m[1]], Virtio: virtioName(line[m[0]:m[1]])})
		}
	}
	return refs
}

// matchDevices returns the [start, end) spans of unstable device names in
// line. A name counts only when it stands alone: not preceded by a
// character of a longer path or word, and not followed by a letter or
// digit (/dev/sdaX1 is not /dev/sda).
func matchDevices(line string) [][2]int {
	var spans [][2]int
	for from := 0; ; {
		i := strings.Index(line[from:], "/dev/")
		if i < 0 {
			return spans
		}
		start := from + i
		from = start + len("/dev/")
		if start > 0 && isNameByte(line[start-1]) {
			continue
		}
		loc := devNameRE.FindStringIndex(line[start:])
		if loc == nil {
			continue
		}
		end := start + loc[1]
		if end < len(line) && isAlnum(line[end]) {
			continue
		}
		spans = append(spans, [2]int{start, end})
		from = end
	}
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func isNameByte(c byte) bool { return isAlnum(c) || c == '_' || c == '.' || c == '-' || c == '/' }

// virtioName maps an unstable device name to its virtio-blk name, keeping
// the disk's position: sdb2 and hdb2 and xvdb2 become vdb2, nvme1n1p2
// becomes vdb2, cciss/c0d1p2 becomes vdb2.
func virtioName(name string) string {
	m := devNameRE.FindStringSubmatch(name)
	if m == nil || len(m[0]) != len(name) {
		return ""
	}
	switch {
	case m[1] != "":
		return "/dev/vd" + m[1] + m[2]
	case m[3] != "":
		if m[4] != "1" {
			return ""
		}
		return diskLetter(m[3], m[5])
	case m[6] != "":
		return diskLetter(m[6], m[7])
	}
	return ""
}

// diskLetter returns /dev/vd<letters for 0-based index idx><part>.
func diskLetter(idx, part string) string {
	n, err := strconv.Atoi(idx)
	if err != nil || n < 0 || n > 701 {
		return ""
	}
	letters := string(rune('a' + n%26))
	if n >= 26 {
		letters = string(rune('a'+n/26-1)) + letters
	}
	return "/dev/vd" + letters + part
}

// rewriteDeviceNames replaces every unstable device name in data that has
// a virtio name with it, leaving comment lines alone, and returns the new
// data and the replacements made ("old -> new", once each, in order).
func rewriteDeviceNames(data []byte) ([]byte, []string) {
	lines := strings.Split(string(data), "\n")
	var done []string
	seen := map[string]bool{}
	for i, line := range lines {
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		spans := matchDevices(line)
		var b strings.Builder
		last := 0
		for _, s := range spans {
			old := line[s[0]:s[1]]
			repl := virtioName(old)
			if repl == "" {
				continue
			}
			b.WriteString(line[last:s[0]])
			b.WriteString(repl)
			last = s[1]
			if pair := old + " -> " + repl; !seen[pair] {
				seen[pair] = true
				done = append(done, pair)
			}
		}
		if last > 0 {
			b.WriteString(line[last:])
			lines[i] = b.String()
		}
	}
	return []byte(strings.Join(lines, "\n")), done
}
