package builder

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/galevm/gale/pkg/image"
)

func TestHostMirror(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string // relative to the apt dir
		suite string
		want  string
		err   error
	}{
		{
			name: "deb822",
			files: map[string]string{"sources.list.d/debian.sources": `Types: deb
# comment
URIs: http://deb.example.org/debian
Suites: bookworm bookworm-updates
Components: main

Types: deb
URIs: http://deb.example.org/debian-security
Suites: bookworm-security
Components: main
`},
			suite: "bookworm",
			want:  "http://deb.example.org/debian",
		},
		{
			name: "deb822 disabled and deb-src skipped",
			files: map[string]string{"sources.list.d/a.sources": `Types: deb
URIs: http://disabled.example.org/debian
Suites: bookworm
Enabled: no

Types: deb-src
URIs: http://src.example.org/debian
Suites: bookworm

Types: deb deb-src
URIs: http://ok.example.org/debian
Suites: bookworm
`},
			suite: "bookworm",
			want:  "http://ok.example.org/debian",
		},
		{
			name: "disabled-by suffix ignored, one-line used",
			files: map[string]string{
				"sources.list.d/other.list.disabled": "deb http://no.example.org/debian bookworm main\n",
				"sources.list":                       "# deb http://commented.example.org/debian bookworm main\ndeb [arch=amd64 signed-by=/k.gpg] http://one.example.org/debian bookworm main\n",
			},
			suite: "bookworm",
			want:  "http://one.example.org/debian",
		},
		{
			name:  "security suite does not match",
			files: map[string]string{"sources.list": "deb http://sec.example.org/debian-security bookworm-security main\n"},
			suite: "bookworm",
			err:   ErrNoMirror,
		},
		{
			name:  "nothing configured",
			files: nil,
			suite: "bookworm",
			err:   ErrNoMirror,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, content := range tc.files {
				p := filepath.Join(dir, name)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			got, err := HostMirror(dir, tc.suite)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("HostMirror = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestResolveMirror(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "sources.list"), []byte("deb http://host.example.org/debian bookworm main\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tmpl := &image.Template{Build: image.BuildSpec{Suite: "bookworm"}}
	tests := []struct {
		name, env, field, want string
		wantErr                bool
	}{
		{name: "host", want: "http://host.example.org/debian"},
		{name: "template", field: "http://tmpl.example.org/debian", want: "http://tmpl.example.org/debian"},
		{name: "env wins", env: "http://env.example.org/debian", field: "http://tmpl.example.org/debian", want: "http://env.example.org/debian"},
		{name: "bad env", env: "not a url", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(MirrorEnv, tc.env)
			tmpl.Build.Mirror = tc.field
			got, err := ResolveMirror(tmpl, dir)
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Fatalf("ResolveMirror = %q, %v; want %q (error %v)", got, err, tc.want, tc.wantErr)
			}
		})
	}
}
