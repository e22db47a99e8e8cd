package disk

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestCreateOverlayArgs(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "base.img")
	tests := []struct {
		name      string
		backFmt   string
		size      int64
		backSize  int64
		wantCalls []string
		wantErr   error
	}{
		{
			name: "explicit size", backFmt: "raw", size: 20 * GiB, backSize: 2 * GiB,
			wantCalls: []string{
				"qemu-img info --output=json -U -f raw " + base,
				"qemu-img create -q -f qcow2 -F raw -b " + base + " " + filepath.Join(dir, "explicit size.qcow2") + " 21474836480",
			},
		},
		{
			name: "size of backing", backFmt: "qcow2", size: 0, backSize: 2 * GiB,
			wantCalls: []string{
				"qemu-img info --output=json -U -f qcow2 " + base,
				"qemu-img create -q -f qcow2 -F qcow2 -b " + base + " " + filepath.Join(dir, "size of backing.qcow2"),
			},
		},
		{
			name: "equal size", backFmt: "qcow2", size: 2 * GiB, backSize: 2 * GiB,
			wantCalls: []string{
				"qemu-img info --output=json -U -f qcow2 " + base,
				"qemu-img create -q -f qcow2 -F qcow2 -b " + base + " " + filepath.Join(dir, "equal size.qcow2") + " 2147483648",
			},
		},
		{
			name: "smaller than backing", backFmt: "qcow2", size: 1 * GiB, backSize: 2 * GiB,
			wantCalls: []string{"qemu-img info --output=json -U -f qcow2 " + base},
			wantErr:   ErrShrink,
		},
		{
			name: "negative size", backFmt: "qcow2", size: -1, backSize: 2 * GiB,
			wantErr: ErrInvalidSize,
		},
		{
			name: "unknown backing format", backFmt: "-o", size: 0, backSize: 2 * GiB,
			wantErr: ErrInvalidArgument,
		},
		{
			name: "empty backing format", backFmt: "", size: 0, backSize: 2 * GiB,
			wantErr: ErrInvalidArgument,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeRunner{replies: map[string]fakeReply{
				"info":   infoReply(tt.backFmt, tt.backSize),
				"create": {},
			}}
			q := NewQemuImg(f)
			dst := filepath.Join(dir, tt.name+".qcow2")
			err := q.CreateOverlay(context.Background(), dst, base, tt.backFmt, tt.size)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("CreateOverlay() error = %v, want %v", err, tt.wantErr)
			}
			if got := f.commandLines(); !slices.Equal(got, tt.wantCalls) {
				t.Errorf("calls:\n got %q\nwant %q", got, tt.wantCalls)
			}
			_, statErr := os.Stat(dst)
			if exists := statErr == nil; exists != (err == nil) {
				t.Errorf("after error %v: overlay exists = %v", err, exists)
			}
		})
	}
}

func TestCreateOverlayRefusesExisting(t *testing.T) {
	dir := t.TempDir()
	dst := filepath.Join(dir, "vm.qcow2")
	if err := os.WriteFile(dst, []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	f := &fakeRunner{replies: map[string]fakeReply{"info": infoReply("raw", GiB), "create": {}}}
	err := NewQemuImg(f).CreateOverlay(context.Background(), dst, filepath.Join(dir, "base"), "raw", 0)
	if !errors.Is(err, ErrExists) || !errors.Is(err, os.ErrExist) {
		t.Fatalf("CreateOverlay() error = %v, want ErrExists and os.ErrExist", err)
	}
	if got, _ := os.ReadFile(dst); string(got) != "precious" {
		t.Errorf("existing file changed to %q", got)
	}
	for _, c := range f.calls {
		if c[1] == "create" {
			t.Errorf("qemu-img create ran: %q", c)
		}
	}
}

func TestCreateOverlayCleansUpOnFailure(t *testing.T) {
	dir := t.TempDir()
	dst := filepath.Join(dir, "vm.qcow2")
	f := &fakeRunner{replies: map[string]fakeReply{
		"info": infoReply("raw", GiB),
		"create": {stderr: "qemu-img: boom\n", err: errors.New("exit status 1"), hook: func(args []string) {
			// qemu-img wrote part of the image before failing.
			_ = os.WriteFile(args[len(args)-1], []byte("QFI\xfb"), 0o600)
		}},
	}}
	err := NewQemuImg(f).CreateOverlay(context.Background(), dst, filepath.Join(dir, "base"), "raw", 0)
	var ce *CommandError
	if !errors.As(err, &ce) || ce.Stderr != "qemu-img: boom" {
		t.Fatalf("CreateOverlay() error = %v, want CommandError with stderr", err)
	}
	if _, err := os.Stat(dst); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("overlay left behind after failure: stat error %v", err)
	}
}

func TestInfoParse(t *testing.T) {
	tests := []struct {
		name    string
		format  string
		stdout  string
		want    Info
		wantErr bool
	}{
		{
			name:   "overlay",
			format: "qcow2",
			stdout: `{"backing-filename-format": "raw", "virtual-size": 2097152, "filename": "ov.qcow2",
				"format": "qcow2", "actual-size": 200704, "full-backing-filename": "/b/base.raw",
				"backing-filename": "/b/base.raw", "format-specific": {"type": "qcow2", "data": {"compat": "1.1"}}}`,
			want: Info{Format: "qcow2", VirtualSize: 2097152, ActualSize: 200704,
				BackingFilename: "/b/base.raw", BackingFormat: "raw"},
		},
		{
			name:   "external data file",
			format: "qcow2",
			stdout: `{"virtual-size": 1048576, "format": "qcow2", "actual-size": 266240,
				"format-specific": {"type": "qcow2", "data": {"data-file": "/etc/shadow", "data-file-raw": true}}}`,
			want: Info{Format: "qcow2", VirtualSize: 1048576, ActualSize: 266240,
				DataFile: "/etc/shadow", HasDataFile: true},
		},
		{name: "raw", format: "raw", stdout: `{"virtual-size": 512, "format": "raw", "actual-size": 0}`,
			want: Info{Format: "raw", VirtualSize: 512}},
		{name: "format mismatch", format: "raw", stdout: `{"virtual-size": 512, "format": "qcow2"}`, wantErr: true},
		{name: "no virtual size", format: "raw", stdout: `{"format": "raw"}`, wantErr: true},
		{name: "not json", format: "raw", stdout: `image: x`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeRunner{replies: map[string]fakeReply{"info": {stdout: tt.stdout}}}
			got, err := NewQemuImg(f).Info(context.Background(), "/img/x", tt.format)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Info() error = %v, wantErr %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("Info() = %+v, want %+v", got, tt.want)
			}
			want := "qemu-img info --output=json -U -f " + tt.format + " /img/x"
			if calls := f.commandLines(); len(calls) != 1 || calls[0] != want {
				t.Errorf("calls = %q, want [%q]", calls, want)
			}
		})
	}
}

func TestPathsNeverLookLikeOptionsOrProtocols(t *testing.T) {
	t.Chdir(t.TempDir())
	cwd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"-o", "json:{}", "nbd:localhost:10809"} {
		t.Run(p, func(t *testing.T) {
			f := &fakeRunner{replies: map[string]fakeReply{"info": infoReply("raw", 1)}}
			if _, err := NewQemuImg(f).Info(context.Background(), p, "raw"); err != nil {
				t.Fatal(err)
			}
			calls := f.commandLines()
			want := "qemu-img info --output=json -U -f raw " + filepath.Join(cwd, p)
			if len(calls) != 1 || calls[0] != want {
				t.Errorf("calls = %q, want [%q]", calls, want)
			}
		})
	}
}
