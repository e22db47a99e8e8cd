package cloudinit

import (
	"fmt"
	"os"

	"github.com/galevm/gale/pkg/errdefs"
)

// Sentinel errors. Functions in this package wrap them with context; callers
// match them with errors.Is.
var (
	// ErrInvalidConfig: a Config field failed validation. Validate joins one
	// such error per problem found.
	ErrInvalidConfig = errdefs.New(errdefs.Invalid, "invalid cloud-init config")
	// ErrInvalidUserData: user-data is too large, or claims to be
	// #cloud-config but is not a YAML mapping. It wraps ErrInvalidConfig.
	ErrInvalidUserData = fmt.Errorf("%w: user-data", ErrInvalidConfig)
	// ErrExists: the seed path already exists. It wraps os.ErrExist.
	ErrExists = fmt.Errorf("seed already exists: %w", os.ErrExist)
)

// invalid returns an error wrapping ErrInvalidConfig for field.
func invalid(field, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrInvalidConfig, field, fmt.Sprintf(format, args...))
}
