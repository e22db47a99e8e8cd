package hypervisor

import "fmt"

// maxNameLen is the longest DNS label.
const maxNameLen = 63

// ValidateName checks that name is usable as a domain or network name: a DNS
// label of 1 to 63 characters from a-z, 0-9 and '-', not starting or ending
// with '-'. The error wraps ErrInvalidSpec and says what is allowed.
func ValidateName(name string) error {
	const allowed = "names are DNS labels: 1-63 characters of lowercase a-z, 0-9 and '-', not starting or ending with '-'"
	if name == "" {
		return fmt.Errorf("empty name (%s): %w", allowed, ErrInvalidSpec)
	}
	if len(name) > maxNameLen {
		return fmt.Errorf("name %q is %d characters long (%s): %w", name, len(name), allowed, ErrInvalidSpec)
	}
	if name[0] == '-' || name[len(name)-1] == '-' {
		return fmt.Errorf("name %q starts or ends with '-' (%s): %w", name, allowed, ErrInvalidSpec)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' {
			continue
		}
		return fmt.Errorf("name %q has invalid character %q at offset %d (%s): %w", name, c, i, allowed, ErrInvalidSpec)
	}
	return nil
}
