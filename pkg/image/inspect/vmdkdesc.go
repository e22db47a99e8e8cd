package inspect

import (
	"bufio"
	"bytes"
	"regexp"
	"strings"
)

// vmdkDescriptor is what the checks need from a VMDK text descriptor.
type vmdkDescriptor struct {
	createType string
	parentCID  string
	extents    []vmdkExtent
}

// vmdkExtent is one extent line: ACCESS SECTORS TYPE ["FILE" [OFFSET]].
type vmdkExtent struct {
	access, typ, name string
}

var extentLine = regexp.MustCompile(`^(RW|RDONLY|NOACCESS)\s+\d+\s+(\S+)(?:\s+"([^"]*)")?`)

// parseVMDKDescriptor reads a descriptor's text, which ends at the first
// NUL. Unknown lines are ignored.
func parseVMDKDescriptor(b []byte) vmdkDescriptor {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	var d vmdkDescriptor
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, len(b)+1)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if m := extentLine.FindStringSubmatch(line); m != nil {
			d.extents = append(d.extents, vmdkExtent{access: m[1], typ: m[2], name: m[3]})
			continue
		}
		key, val, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		val = strings.Trim(strings.TrimSpace(val), `"`)
		switch strings.TrimSpace(key) {
		case "createType":
			d.createType = val
		case "parentCID":
			d.parentCID = strings.ToLower(val)
		}
	}
	return d
}

// extentNames returns the extents' file names, or their types for extents
// without a file (ZERO).
func (d vmdkDescriptor) extentNames() []string {
	names := make([]string, len(d.extents))
	for i, e := range d.extents {
		names[i] = e.name
		if e.name == "" {
			names[i] = e.typ + " extent"
		}
	}
	return names
}

// descriptorValue finds key anywhere in b the way qemu does (a substring
// match, not a line match) and returns the quoted value after it.
func descriptorValue(b []byte, key string) (string, bool) {
	i := bytes.Index(b, []byte(key))
	if i < 0 {
		return "", false
	}
	rest := b[i+len(key):]
	if j := bytes.IndexByte(rest, '"'); j >= 0 {
		rest = rest[j+1:]
		if k := bytes.IndexByte(rest, '"'); k >= 0 {
			rest = rest[:k]
		}
	}
	return sanitize(rest), true
}

// isBareName reports whether name is a plain file name: no directory part,
// not "." or "..", no control characters.
func isBareName(name string) bool {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\\") {
		return false
	}
	return sanitize([]byte(name)) == name
}
