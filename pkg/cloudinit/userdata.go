package cloudinit

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"

	"gopkg.in/yaml.v3"
)

// MaxUserDataBytes bounds user-data. NoCloud on an ISO has no hard limit,
// but user-data is meant for a cloud-config or a short script (clouds cap it
// at 16..64 KiB), and anything bigger is almost certainly a mistake, such as
// passing a disk image. The bound keeps seeds small and YAML checking cheap;
// larger payloads belong in the image or are fetched by the guest.
const MaxUserDataBytes = 64 * 1024

// DefaultUserData is the user-data of a seed whose Config has none: an
// empty cloud-config, so cloud-init still runs its default modules
// (host name, SSH keys from meta-data, growpart).
var DefaultUserData = []byte("#cloud-config\n{}\n")

const cloudConfigHeader = "#cloud-config"

// isCloudConfig reports whether cloud-init treats ud as a cloud-config. It
// picks the handler by the longest matching prefix, so "#cloud-config-archive"
// and "#cloud-config-jsonp" are other formats.
func isCloudConfig(ud []byte) bool {
	return bytes.HasPrefix(ud, []byte(cloudConfigHeader)) &&
		!bytes.HasPrefix(ud, []byte("#cloud-config-archive")) &&
		!bytes.HasPrefix(ud, []byte("#cloud-config-jsonp"))
}

// ValidateUserData checks ud without changing it. ud may be empty (the seed
// then carries DefaultUserData) and may hold at most MaxUserDataBytes. If
// it is a "#cloud-config" it must be one YAML document whose top level is a
// mapping (or empty); errors name the YAML line. Every other format (shell
// scripts, MIME multipart, #include, jinja templates, gzip) is not checked.
// Errors wrap ErrInvalidUserData.
func ValidateUserData(ud []byte) error {
	if len(ud) > MaxUserDataBytes {
		return fmt.Errorf("%w: %d bytes, at most %d (MaxUserDataBytes) allowed", ErrInvalidUserData, len(ud), MaxUserDataBytes)
	}
	if !isCloudConfig(ud) {
		return nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(ud))
	var doc yaml.Node
	switch err := dec.Decode(&doc); {
	case errors.Is(err, io.EOF):
		return nil // only the header and comments: an empty cloud-config
	case err != nil:
		return yamlError(ud, err)
	}
	if top := doc.Content[0]; top.Kind != yaml.MappingNode && top.Tag != "!!null" {
		return fmt.Errorf("%w: #cloud-config line %d: top level must be a mapping (key: value), found %s",
			ErrInvalidUserData, top.Line, kindName(top))
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case errors.Is(err, io.EOF):
		return nil
	case err != nil:
		return yamlError(ud, err)
	default:
		return fmt.Errorf("%w: #cloud-config line %d: a second YAML document; cloud-init reads exactly one",
			ErrInvalidUserData, next.Line)
	}
}

// yamlError wraps a YAML syntax error in ud. The yaml package often reports
// the line where the enclosing construct starts (counted from zero), not
// the line at fault, so the line is located again: it is the last line
// whose removal, with everything after it, leaves a document that parses.
func yamlError(ud []byte, err error) error {
	msg := yamlLinePrefix.ReplaceAllString(err.Error(), "")
	if line, ok := firstBadLine(ud); ok {
		return fmt.Errorf("%w: #cloud-config line %d: invalid YAML: %s", ErrInvalidUserData, line, msg)
	}
	return fmt.Errorf("%w: #cloud-config is not valid YAML: %v", ErrInvalidUserData, err)
}

var yamlLinePrefix = regexp.MustCompile(`^yaml: (line \d+: )?`)

// maxLocateBytes bounds the bytes firstBadLine may parse in total, so a
// long broken document cannot make validation slow; past it the yaml
// package's own message is used.
const maxLocateBytes = 4 << 20

// firstBadLine returns the 1-based number of the line after which no
// prefix of ud (cut at line ends) parses as YAML.
func firstBadLine(ud []byte) (int, bool) {
	var ends []int // ends[i] is the offset just past line i+1
	for i, b := range ud {
		if b == '\n' {
			ends = append(ends, i+1)
		}
	}
	if len(ends) == 0 || ends[len(ends)-1] != len(ud) {
		ends = append(ends, len(ud))
	}
	budget := maxLocateBytes
	for n := len(ends) - 1; n >= 1; n-- { // try the first n lines
		prefix := ud[:ends[n-1]]
		if budget -= len(prefix); budget < 0 {
			return 0, false
		}
		if parsesAll(prefix) {
			return n + 1, true
		}
	}
	return 0, false
}

// parsesAll reports whether every YAML document in b parses.
func parsesAll(b []byte) bool {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			return true
		}
		if err != nil {
			return false
		}
	}
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("the scalar %.40q", n.Value)
	case yaml.AliasNode:
		return "an alias"
	default:
		return "something else"
	}
}

// userData returns what the seed's user-data file holds for ud.
func userData(ud []byte) []byte {
	if len(ud) == 0 {
		return DefaultUserData
	}
	return ud
}
