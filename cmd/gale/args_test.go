package main

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestReorderArgs(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string // "" means an error is expected
		err  string // substring of the error
	}{
		{"flags after name", "gale vm create web --image debian-12", "gale vm create --image debian-12 -- web", ""},
		{"flags before name unchanged meaning", "gale vm create --image debian-12 web", "gale vm create --image debian-12 -- web", ""},
		{"inline value", "gale vm create web --cpus=2 --image debian-12", "gale vm create --cpus=2 --image debian-12 -- web", ""},
		{"single dash long flag", "gale vm create web -image debian-12", "gale vm create -image debian-12 -- web", ""},
		{"short output at end", "gale vm list -o json", "gale vm list -o json", ""},
		{"short output after name", "gale vm show web -o json", "gale vm show -o json -- web", ""},
		{"short output inline", "gale vm show web -o=yaml", "gale vm show -o=yaml -- web", ""},
		{"alias command", "gale vm ls -o json", "gale vm ls -o json", ""},
		{"exec keeps everything after --", "gale vm exec web -- ls -la --color", "gale vm exec -- web ls -la --color", ""},
		{"exec flag before --", "gale vm exec web --timeout 10s -- ls -la", "gale vm exec --timeout 10s -- web ls -la", ""},
		{"exec bool flag short", "gale vm exec -i web -- cat", "gale vm exec -i -- web cat", ""},
		{"bool flag does not eat the next arg", "gale vm create --force web --image x", "gale vm create --force --image x -- web", ""},
		{"bool flag inline false", "gale vm create web --wait=false --image x", "gale vm create --wait=false --image x -- web", ""},
		{"repeatable flag", "gale vm create web --ssh-key a.pub --image x --ssh-key b.pub", "gale vm create --ssh-key a.pub --image x --ssh-key b.pub -- web", ""},
		{"dash value is a value", "gale vm create web --cloud-init - --image x", "gale vm create --cloud-init - --image x -- web", ""},
		{"dash alone is positional", "gale completion -", "gale completion -- -", ""},
		{"global flag after command is lifted", "gale vm list --socket /tmp/s -o json", "gale --socket /tmp/s vm list -o json", ""},
		{"global flag after positional is lifted", "gale vm show web --debug", "gale --debug vm show -- web", ""},
		{"global flag before command", "gale --socket=/tmp/s vm show web", "gale --socket=/tmp/s vm show -- web", ""},
		{"global bool before command", "gale --debug vm list", "gale --debug vm list", ""},
		{"help flag after name", "gale vm create web --help", "gale vm create --help -- web", ""},
		{"stop flags", "gale vm stop web --force --timeout 30s", "gale vm stop --force --timeout 30s -- web", ""},
		{"delete keep disk", "gale vm delete web --keep-disk", "gale vm delete --keep-disk -- web", ""},
		{"network create", "gale network create lab --mode isolated --cidr 10.0.0.1/24", "gale network create --mode isolated --cidr 10.0.0.1/24 -- lab", ""},
		{"network alias", "gale net create lab --mode nat", "gale net create --mode nat -- lab", ""},
		{"ssh args after --", "gale vm ssh web --identity k -- -L 80:localhost:80", "gale vm ssh --identity k -- web -L 80:localhost:80", ""},
		{"double dash with nothing after", "gale vm list --", "gale vm list", ""},
		{"noun alone untouched", "gale vm", "gale vm", ""},
		{"unknown command untouched", "gale vm frobnicate web --x", "gale vm frobnicate web --x", ""},
		{"help command untouched", "gale help vm", "gale help vm", ""},
		{"root help untouched", "gale --help", "gale --help", ""},
		{"completion request untouched", "gale vm create web --generate-bash-completion", "gale vm create web --generate-bash-completion", ""},
		{"no arguments", "gale", "gale", ""},

		{"unknown flag after positional", "gale vm create web --imag debian-12", "", "unknown flag --imag for 'gale vm create'"},
		{"unknown flag before positional", "gale vm list --all", "", "unknown flag --all for 'gale vm list'"},
		{"unknown short flag", "gale vm show web -x", "", "unknown flag -x"},
		{"exec without --", "gale vm exec web ls -la", "", `put the command for the guest after "--"`},
		{"missing value", "gale vm create web --image", "", "flag --image needs a value"},
		{"value would be --", "gale vm exec web --timeout -- ls", "", "flag --timeout needs a value"},
		{"command flag before command", "gale -o json vm list", "", "unknown flag -o before the command"},
		{"global flag missing value", "gale vm list --socket", "", "flag --socket needs a value"},
	}
	app := newApp(deps{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := reorderArgs(app, strings.Fields(tt.in))
			if tt.want == "" {
				var ue *usageError
				if err == nil || !errors.As(err, &ue) || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("reorderArgs(%q) = %q, %v; want usage error containing %q", tt.in, got, err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("reorderArgs(%q): %v", tt.in, err)
			}
			if want := strings.Fields(tt.want); !reflect.DeepEqual(got, want) {
				t.Fatalf("reorderArgs(%q)\n got %q\nwant %q", tt.in, got, want)
			}
		})
	}
}

// TestReorderEquivalence checks that flag placement does not change what
// the command receives.
func TestReorderEquivalence(t *testing.T) {
	app := newApp(deps{})
	pairs := [][2]string{
		{"gale vm create web --image debian-12", "gale vm create --image debian-12 web"},
		{"gale vm create web --cpus=2 --memory 1G", "gale vm create --memory 1G web --cpus=2"},
		{"gale vm show web -o json", "gale vm show -o json web"},
		{"gale vm stop web --force", "gale vm stop --force web"},
	}
	for _, p := range pairs {
		a, err1 := reorderArgs(app, strings.Fields(p[0]))
		b, err2 := reorderArgs(app, strings.Fields(p[1]))
		if err1 != nil || err2 != nil {
			t.Fatalf("%q: %v; %q: %v", p[0], err1, p[1], err2)
		}
		if strings.Join(a, " ") == strings.Join(b, " ") {
			continue
		}
		// Same flags (in any order) and the same positionals.
		if !sameMultiset(a, b) {
			t.Errorf("%q -> %q\n%q -> %q", p[0], a, p[1], b)
		}
	}
}

// sameMultiset reports whether a and b hold the same strings, any order.
func sameMultiset(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	n := map[string]int{}
	for _, s := range a {
		n[s]++
	}
	for _, s := range b {
		n[s]--
	}
	for _, v := range n {
		if v != 0 {
			return false
		}
	}
	return true
}
