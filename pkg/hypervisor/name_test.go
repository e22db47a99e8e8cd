package hypervisor

import (
	"errors"
	"strings"
	"testing"
)

func TestValidateName(t *testing.T) {
	tests := []struct {
		name  string
		input string
		ok    bool
	}{
		{"simple", "web", true},
		{"digits and dash", "web-01", true},
		{"single char", "a", true},
		{"leading digit", "1vm", true},
		{"max length", strings.Repeat("a", 63), true},
		{"empty", "", false},
		{"too long", strings.Repeat("a", 64), false},
		{"uppercase", "Web", false},
		{"underscore", "web_1", false},
		{"dot", "web.1", false},
		{"leading dash", "-web", false},
		{"trailing dash", "web-", false},
		{"space", "web 1", false},
		{"slash", "a/b", false},
		{"non-ascii", "wéb", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateName(tt.input)
			if tt.ok && err != nil {
				t.Fatalf("ValidateName(%q) = %v, want nil", tt.input, err)
			}
			if !tt.ok {
				if !errors.Is(err, ErrInvalidSpec) {
					t.Fatalf("ValidateName(%q) = %v, want ErrInvalidSpec", tt.input, err)
				}
				if !strings.Contains(err.Error(), "DNS label") {
					t.Errorf("error %q does not say what is allowed", err)
				}
			}
		})
	}
}
