package libvirt

import (
	"testing"
	"time"

	"github.com/galevm/gale/pkg/hypervisor"
)

func TestMetadataRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		in   hypervisor.Metadata
	}{
		{"full", hypervisor.Metadata{ID: "vm-1", Image: "debian-12", Set: "web", CreatedAt: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)}},
		{"clone", hypervisor.Metadata{ID: "vm-2", Image: "debian-12", Parent: "gale-parent-0123456789ab"}},
		{"id only", hypervisor.Metadata{ID: "vm-2"}},
		{"escaping", hypervisor.Metadata{ID: "a<b>&\"c\""}},
		{"empty", hypervisor.Metadata{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc, err := marshalMetadata(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			got, err := parseMetadata("\n  " + doc + "\n")
			if err != nil {
				t.Fatal(err)
			}
			if got == nil || *got != tt.in {
				t.Fatalf("got %+v, want %+v (xml %s)", got, tt.in, doc)
			}
		})
	}
}

func TestParseMetadata(t *testing.T) {
	tests := []struct {
		name   string
		inner  string
		wantID string // "" means nil metadata
		err    bool
	}{
		{name: "empty", inner: ""},
		{name: "whitespace", inner: "\n   "},
		{name: "other application only", inner: `<app xmlns="http://example.com/app"><id>x</id></app>`},
		{name: "same local name other namespace", inner: `<vm xmlns="http://example.com/other"><id>x</id></vm>`},
		{name: "ours after another", inner: `<app xmlns="http://example.com/app"><vm><id>no</id></vm></app><vm xmlns="` + hypervisor.MetadataNamespace + `"><id>yes</id></vm>`, wantID: "yes"},
		{name: "prefixed", inner: `<gale:vm xmlns:gale="` + hypervisor.MetadataNamespace + `"><gale:id>p</gale:id></gale:vm>`, wantID: "p"},
		{name: "bad time", inner: `<vm xmlns="` + hypervisor.MetadataNamespace + `"><created>yesterday</created></vm>`, err: true},
		{name: "malformed", inner: `<vm xmlns="` + hypervisor.MetadataNamespace + `"><id>`, err: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseMetadata(tt.inner)
			if tt.err {
				if err == nil {
					t.Fatalf("want error, got %+v", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.wantID == "" {
				if got != nil {
					t.Fatalf("got %+v, want nil", got)
				}
				return
			}
			if got == nil || got.ID != tt.wantID {
				t.Fatalf("got %+v, want ID %q", got, tt.wantID)
			}
		})
	}
}
